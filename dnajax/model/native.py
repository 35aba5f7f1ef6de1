"""dnajax's native CPU kernel (`cpu_attention.cc`, fused attention), built once per machine and registered with XLA.

The C++ source ships with the package; on first use it is compiled with the host's C++ compiler (`$CXX`, else
`c++`) for this CPU (`-O3 -march=native`) against the XLA FFI headers that jaxlib ships, and cached under
`$DNAJAX_CACHE_DIR` (default `$XDG_CACHE_HOME/dnajax`, else `~/.cache/dnajax`), keyed by the source, compiler,
flags, jaxlib version and CPU. Where it cannot be built (no compiler, say), `available()` is False with the reason
in `unavailable_reason()`, and `model.attention="auto"` keeps the XLA kernels. `DNAJAX_NATIVE=0` turns it off.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("cpu_attention.cc")
FORWARD, BACKWARD = "dnajax_attention_forward", "dnajax_attention_backward"
_COMPILE = ("-O3", "-march=native", "-ffast-math", "-fopenmp-simd", "-std=c++17", "-fPIC")
_reason: list[str] = []


def cache_dir() -> Path:
  """Where built kernels are kept: $DNAJAX_CACHE_DIR, else $XDG_CACHE_HOME/dnajax, else ~/.cache/dnajax."""
  if os.environ.get("DNAJAX_CACHE_DIR"):
    return Path(os.environ["DNAJAX_CACHE_DIR"])
  return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dnajax"


def _compiler() -> str | None:
  return shutil.which(os.environ.get("CXX", "c++")) or shutil.which("g++") or shutil.which("clang++")


def _build(compiler: str) -> Path:
  """The shared library for this machine: compiled into the cache unless already there. Raises RuntimeError with
  the compiler's first error line."""
  import jax.ffi
  import jaxlib

  # The compiler's verbose preprocessing names its version and what -march=native expands to on this CPU.
  probe = subprocess.run([compiler, "-march=native", "-E", "-v", "-x", "c++", os.devnull], capture_output=True,
                         text=True, check=False)
  key = hashlib.sha256("\0".join([SOURCE.read_text(), probe.stderr, " ".join(_COMPILE),
                                  jaxlib.__version__]).encode()).hexdigest()[:16]
  target = cache_dir() / f"cpu_attention-{key}.so"
  if target.exists():
    return target
  target.parent.mkdir(parents=True, exist_ok=True)
  with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
    obj, lib = Path(tmp) / "a.o", Path(tmp) / "a.so"
    # Compiled and linked in two steps: -ffast-math at link time would add crtfastmath.o, which sets flush-to-zero
    # for the whole process when the library loads.
    for cmd in ([compiler, *_COMPILE, "-I", jax.ffi.include_dir(), "-c", str(SOURCE), "-o", str(obj)],
                [compiler, "-shared", str(obj), "-o", str(lib), "-lm"]):
      done = subprocess.run(cmd, capture_output=True, text=True, check=False)
      if done.returncode != 0:
        first = next((line for line in done.stderr.splitlines() if "error" in line), done.stderr.strip()[:200])
        raise RuntimeError(f"{Path(compiler).name} failed: {first}")
    os.replace(lib, target)  # atomic: a concurrent build of the same key writes the same bytes
  return target


@functools.cache
def available() -> bool:
  """True where the fused CPU attention kernel is built (or cached) and registered with XLA for the CPU."""
  if os.environ.get("DNAJAX_NATIVE", "1") == "0":
    _reason.append("DNAJAX_NATIVE=0")
    return False
  compiler = _compiler()
  if compiler is None:
    _reason.append("no C++ compiler (set CXX)")
    return False
  try:
    lib = ctypes.cdll.LoadLibrary(str(_build(compiler)))
  except (OSError, RuntimeError) as e:
    _reason.append(str(e))
    return False
  import jax.ffi
  jax.ffi.register_ffi_target(FORWARD, jax.ffi.pycapsule(lib.DnajaxAttentionForward), platform="cpu")
  jax.ffi.register_ffi_target(BACKWARD, jax.ffi.pycapsule(lib.DnajaxAttentionBackward), platform="cpu")
  return True


def unavailable_reason() -> str:
  """Why `available()` is False (empty when it is True or was not asked)."""
  return "; ".join(_reason)
