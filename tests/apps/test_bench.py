"""`dnajax bench` runs end to end and reports what it promises (speed itself is never asserted)."""

import importlib.util
import json

import pytest

from dnajax import cli
from dnajax.apps import bench


def test_bench_jax_json(tmp_path, capsys):
  out = tmp_path / "b.json"
  assert cli.main(["bench", "--config", "configs/tiny.py", "--steps", "2", "--windows", "2", "--output", str(out)]) == 0
  table = capsys.readouterr().out
  assert "dnajax (JAX)" in table and "input pipeline" in table and "instruction-set extensions" in table
  r = json.loads(out.read_text())
  assert r["cpu_model"] and isinstance(r["isa_extensions"], list)
  j = r["jax"]
  for key in ("tokens_per_second", "tokens_per_second_min", "tokens_per_second_max", "steps_per_second",
              "compile_seconds", "flops_per_token", "achieved_flops", "peak_flops", "mfu", "peak_host_rss_gib",
              "input_pipeline_tokens_per_second", "parameters", "device_kind", "device_count"):
    assert key in j, key
  assert j["tokens_per_second_min"] <= j["tokens_per_second"] <= j["tokens_per_second_max"]
  assert 0 < j["mfu"] and r["input_pipeline_ratio"] > 0 and "measured" in j["peak_flops_source"]


def test_cpu_description_reads_model_and_isa_extensions(tmp_path):
  """Every figure says which machine it came from: x86 model name and flags, Arm features, nothing readable."""
  x86 = tmp_path / "x86"
  x86.write_text("processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw "
                 "avx512_bf16 avx512_vnni\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu\n")
  assert bench.cpu_description(str(x86)) == {
      "cpu_model": "AMD EPYC 9R14",
      "isa_extensions": ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16"]}
  arm = tmp_path / "arm"
  arm.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp sve sve2 bf16 i8mm\nCPU part\t: 0xd4f\n")
  assert bench.cpu_description(str(arm))["isa_extensions"] == ["asimd", "asimddp", "sve", "sve2", "bf16", "i8mm"]
  missing = bench.cpu_description(str(tmp_path / "absent"))
  assert missing["cpu_model"] and missing["isa_extensions"] == []


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch not installed (dnajax[bench])")
def test_compare_torch(tmp_path, capsys):
  """The PyTorch comparison runs from the source checkout (benchmarks/), not from the installed package."""
  from benchmarks import compare_torch

  out = tmp_path / "b.json"
  argv = ["--config", "configs/tiny.py", "--steps", "2", "--windows", "1", "--output", str(out)]
  assert compare_torch.main(argv) == 0
  r = json.loads(out.read_text())
  assert r["ratio_vs_torch"] > 0 and r["torch"]["parameters"] > 0 and "input_pipeline_ratio" in r
