"""dnajax: masked-nucleotide language models in JAX/Flax, from a laptop smoke run to a pod.

`dnajax.open(path_or_shipped_name)` returns a trained model for evaluation scripts (see `dnajax.api`); importing
dnajax itself loads nothing heavy (`open` imports JAX on first use).
"""

import os as _os

__version__ = "0.1.0"

# XLA flags dnajax runs with, appended to XLA_FLAGS when dnajax is imported (backends start later, at the first
# device use); a flag already in XLA_FLAGS is left as the user set it. On GPUs, matmuls go to cuBLAS rather than
# XLA's Triton GEMMs: measured on one NVIDIA H200 (JAX 0.11.2, configs/base.py as shipped, batch 256 in two
# micro-batches), 578k -> 600k tokens/s, MFU 42.5% -> 44.1%. Ignored by the CPU and TPU backends.
XLA_FLAGS = ("--xla_gpu_enable_triton_gemm=false",)


def _add_xla_flags() -> None:
  flags = _os.environ.get("XLA_FLAGS", "")
  for flag in XLA_FLAGS:
    if flag.split("=")[0] not in flags:
      flags = f"{flags} {flag}".strip()
  _os.environ["XLA_FLAGS"] = flags


_add_xla_flags()


def __getattr__(name: str):
  """`dnajax.open` (PEP 562): the API module is imported on first use, so `import dnajax` stays light."""
  if name == "open":
    from dnajax import api

    return api.open
  raise AttributeError(f"module 'dnajax' has no attribute {name!r}")
