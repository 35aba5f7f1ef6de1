"""`dnajax bench` runs end to end and reports what it promises (speed itself is never asserted)."""

import importlib.util
import json

import pytest

from dnajax import cli
from dnajax.model import native


def test_bench_jax_json(tmp_path, capsys):
  out = tmp_path / "b.json"
  assert cli.main(["bench", "--config", "configs/tiny.py", "--steps", "2", "--windows", "2", "--output", str(out)]) == 0
  table = capsys.readouterr().out
  assert "dnajax (JAX)" in table and "input pipeline" in table and "instruction-set extensions" in table
  r = json.loads(out.read_text())
  j = r["jax"]
  assert r["cpu_model"] and isinstance(r["isa_extensions"], list)
  assert j["attention_kernel"] == ("fused" if native.available() else "einsum")
  for key in ("tokens_per_second", "tokens_per_second_min", "tokens_per_second_max", "steps_per_second",
              "compile_seconds", "flops_per_token", "achieved_flops", "peak_flops", "mfu", "peak_host_rss_gib",
              "input_pipeline_tokens_per_second", "parameters", "device_kind", "device_count", "cpu_host_setup",
              "attention_kernel"):
    assert key in j, key
  assert j["tokens_per_second_min"] <= j["tokens_per_second"] <= j["tokens_per_second_max"]
  assert 0 < j["mfu"] and r["input_pipeline_ratio"] > 0 and "measured" in j["peak_flops_source"]


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch not installed (dnajax[bench])")
def test_compare_torch(tmp_path, capsys):
  """The PyTorch comparison runs from the source checkout (benchmarks/), not from the installed package."""
  from benchmarks import compare_torch

  out = tmp_path / "b.json"
  argv = ["--config", "configs/tiny.py", "--steps", "2", "--windows", "1", "--output", str(out)]
  assert compare_torch.main(argv) == 0
  r = json.loads(out.read_text())
  assert r["ratio_vs_torch"] > 0 and r["torch"]["parameters"] > 0 and "input_pipeline_ratio" in r
