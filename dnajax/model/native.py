"""dnajax's native CPU kernel (`cpu_attention.cc`, fused attention), built once per machine and registered with XLA.

The C++ source ships with the package; on first use it is compiled with the host's C++ compiler (`$CXX`, else
`c++`) for this CPU (`-O3 -march=native`) against the XLA FFI headers that jaxlib ships, and cached under
`$DNAJAX_CACHE_DIR` (default `$XDG_CACHE_HOME/dnajax`, else `~/.cache/dnajax`), keyed by the source, compiler,
flags, jaxlib version and CPU (`$DNAJAX_NATIVE_MARCH` replaces `native`, e.g. `x86-64` for a build any x86-64 CPU
runs). Where it cannot be built (no compiler, say), `available()` is False with the reason
in `unavailable_reason()`, and `model.attention="auto"` keeps the XLA kernels. `DNAJAX_NATIVE=0` turns it off.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).with_name("cpu_attention.cc")
FORWARD, BACKWARD = "dnajax_attention_forward", "dnajax_attention_backward"
_COMPILE = ("-O3", "-ffast-math", "-fopenmp-simd", "-std=c++17", "-fPIC")


def _march() -> str:
  """-march=native, or $DNAJAX_NATIVE_MARCH (e.g. x86-64, to build and test the narrow-vector code path)."""
  return "-march=" + os.environ.get("DNAJAX_NATIVE_MARCH", "native")
_reason: list[str] = []
log = logging.getLogger("dnajax")


def cache_dir() -> Path:
  """Where built kernels are kept: $DNAJAX_CACHE_DIR, else $XDG_CACHE_HOME/dnajax, else ~/.cache/dnajax."""
  if os.environ.get("DNAJAX_CACHE_DIR"):
    return Path(os.environ["DNAJAX_CACHE_DIR"])
  return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dnajax"


def _compiler() -> str:
  """The C++ compiler: $CXX (which must exist), else c++, g++ or clang++ on the PATH. Raises RuntimeError."""
  if os.environ.get("CXX"):
    found = shutil.which(os.environ["CXX"])
    if found is None:
      raise RuntimeError(f"CXX={os.environ['CXX']} is not an executable compiler")
    return found
  found = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
  if found is None:
    raise RuntimeError("no C++ compiler found: install one (g++ or clang++) or set CXX")
  return found


def _digest(path: Path) -> str:
  return hashlib.sha256(path.read_bytes()).hexdigest()


def _build(compiler: str) -> Path:
  """The shared library for this machine, compiled into the cache unless a complete one is there: each library has
  a `.sha256` file beside it, written after it, and one that does not match (truncated, overwritten) is rebuilt,
  since loading a damaged library can kill the process. Raises RuntimeError with the compiler's first error line,
  OSError where the cache cannot be written."""
  import jax.ffi
  import jaxlib

  # The compiler's verbose preprocessing names its version and what -march=native expands to on this CPU.
  probe = subprocess.run([compiler, _march(), "-E", "-v", "-x", "c++", os.devnull], capture_output=True,
                         text=True, check=False)
  key = hashlib.sha256("\0".join([SOURCE.read_text(), probe.stderr, _march(), " ".join(_COMPILE),
                                  jaxlib.__version__]).encode()).hexdigest()[:16]
  target = cache_dir() / f"cpu_attention-{key}.so"
  stamp = target.with_name(target.name + ".sha256")
  try:
    if stamp.read_text().strip() == _digest(target):
      return target
  except OSError:
    pass
  target.parent.mkdir(parents=True, exist_ok=True)
  log.info("building the fused CPU attention kernel for this machine (once): %s", target)
  with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
    obj, lib, digest = Path(tmp) / "a.o", Path(tmp) / "a.so", Path(tmp) / "a.sha256"
    # Compiled and linked in two steps: -ffast-math at link time would add crtfastmath.o, which sets flush-to-zero
    # for the whole process when the library loads.
    for cmd in ([compiler, _march(), *_COMPILE, "-I", jax.ffi.include_dir(), "-c", str(SOURCE), "-o", str(obj)],
                [compiler, "-shared", str(obj), "-o", str(lib), "-lm"]):
      done = subprocess.run(cmd, capture_output=True, text=True, check=False)
      if done.returncode != 0:
        first = next((line for line in done.stderr.splitlines() if "error" in line), done.stderr.strip()[:200])
        raise RuntimeError(f"{Path(compiler).name} failed (exit {done.returncode})" + (f": {first}" if first else ""))
    digest.write_text(_digest(lib) + "\n")
    os.replace(lib, target)  # atomic; a concurrent build of the same key writes an equivalent library
    os.replace(digest, stamp)
  return target


@functools.cache
def available() -> bool:
  """True where the fused CPU attention kernel is built (or cached) and registered with XLA for the CPU. Where it
  is not, `unavailable_reason()` says why, and the first call logs it as a warning (`auto` then uses XLA's
  kernels)."""
  if os.environ.get("DNAJAX_NATIVE", "1") == "0":
    _reason.append("turned off by DNAJAX_NATIVE=0")
    return False
  try:
    lib = ctypes.cdll.LoadLibrary(str(_build(_compiler())))
    forward, backward = lib.DnajaxAttentionForward, lib.DnajaxAttentionBackward
  except (OSError, RuntimeError, AttributeError) as e:  # AttributeError: a library without the kernel's symbols
    _reason.append(str(e))
    log.warning("the fused CPU attention kernel is unavailable (%s); using XLA's attention", _reason[-1])
    return False
  import jax.ffi
  jax.ffi.register_ffi_target(FORWARD, jax.ffi.pycapsule(forward), platform="cpu")
  jax.ffi.register_ffi_target(BACKWARD, jax.ffi.pycapsule(backward), platform="cpu")
  return True


def unavailable_reason() -> str:
  """Why `available()` is False (empty when it is True or was not asked)."""
  return "; ".join(_reason)
