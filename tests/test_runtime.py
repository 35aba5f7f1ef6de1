"""The CPU host set-up (dnajax/runtime.py): applied before the backend starts, and only where the CPU runs."""

import os
import subprocess
import sys

import pytest

from dnajax import runtime

PROBE = ("import jax, numpy as np; from dnajax import sharding, runtime; "
         "print(runtime.HOST_TUNED, jax.config.values['jax_cpu_enable_async_dispatch'], "
         "float(jax.jit(lambda x: (x @ x).sum())(np.ones((64, 64), np.float32))))")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's (Linux)")
@pytest.mark.parametrize("allocator, expected", [("", "True False 262144.0"), ("system", "False True 262144.0")])
def test_cpu_host_set_up_in_a_fresh_process(allocator, expected):
  env = {k: v for k, v in os.environ.items() if k not in ("JAX_PLATFORMS", "DNAJAX_HOST_ALLOCATOR")}
  env.update(JAX_PLATFORMS="cpu", DNAJAX_HOST_ALLOCATOR=allocator)
  out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True).stdout
  assert out.split("\n")[-2] == expected


def test_a_misspelt_host_allocator_mode_is_refused_in_one_line(monkeypatch, capsys):
  from dnajax import cli

  monkeypatch.setenv("DNAJAX_HOST_ALLOCATOR", "sytem")
  assert cli.main(["bench", "--config", "tiny"]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "DNAJAX_HOST_ALLOCATOR='sytem' is not a mode" in err


def test_cpu_backend_expected_follows_jax_platforms(monkeypatch):
  monkeypatch.setenv("JAX_PLATFORMS", "cuda,cpu")
  assert not runtime.cpu_backend_expected()
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  assert runtime.cpu_backend_expected()
  monkeypatch.setenv("DNAJAX_HOST_ALLOCATOR", "system")
  assert not runtime.tune_cpu_host()


def test_cpu_description_reads_model_and_isa_extensions(tmp_path):
  """Every figure says which machine it came from: x86 model name and flags, Arm features, nothing readable."""
  x86 = tmp_path / "x86"
  x86.write_text("processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512bw "
                 "avx512_bf16 avx512_vnni\n\nprocessor\t: 1\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu\n")
  assert runtime.cpu_description(str(x86)) == {
      "cpu_model": "AMD EPYC 9R14",
      "isa_extensions": ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16"]}
  arm = tmp_path / "arm"
  arm.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp sve sve2 bf16 i8mm\nCPU part\t: 0xd4f\n")
  assert runtime.cpu_description(str(arm))["isa_extensions"] == ["asimd", "asimddp", "sve", "sve2", "bf16", "i8mm"]
  missing = runtime.cpu_description(str(tmp_path / "absent"))
  assert missing["cpu_model"] and missing["isa_extensions"] == []
