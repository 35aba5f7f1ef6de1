"""Runtime set-up, done first: multi-process initialisation, JAX flags, logging, the one start-up log line."""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import logging
import os
import platform
import sys

import jax

from dnajax.errors import UserError

log = logging.getLogger("dnajax")

_DETECTED_BY_JAX = ("SLURM_NTASKS", "TPU_WORKER_HOSTNAMES", "CLOUD_TPU_TASK_ID")  # JAX configures these itself

# ---------------------------------------------------------------------------------------------- CPU host set-up
# XLA's CPU runtime allocates each step's temporaries afresh as one block (157 MB for configs/default.py, ~510 MB for
# configs/cpu.py, 1.5 GB for configs/small.py) and frees it after the step. glibc serves a block that size with mmap
# and unmaps it on free, so every step page-faulted all of it in again (40,000 minor faults per default step, ~30%
# of its time). With one malloc arena (a thread's own arena mmaps any block above 64 MB) and mmap/trim thresholds of
# HOST_ALLOCATOR_BYTES, the block is reused from the heap. That alone let the heap grow to one block per step in
# flight, because JAX's CPU client dispatches asynchronously (cpu.py: 2.5-3.0 GiB peak RSS); with synchronous dispatch
# one block is reused. Measured on a 2-core AMD EPYC with AVX-512 (docs/verbs/bench.md), tokens/s and peak RSS:
# default.py 34.8k -> 51-56k, 0.70 -> 0.66 GiB; cpu.py 12.2k -> 13.9k, 1.14 -> 1.03 GiB; small.py 2.8k -> 3.2k,
# 2.17 -> 2.06 GiB. Both must be set before the CPU backend starts (its threads, its client): this module does it at
# import, and `dnajax.sharding`, through which every compiled program goes, imports it. mallopt(3) is glibc's
# documented interface. DNAJAX_HOST_ALLOCATOR=system leaves malloc and dispatch as they are.
HOST_ALLOCATOR_BYTES = 2**31 - 1  # mallopt's value is a C int: the largest it takes
HOST_ALLOCATOR_VALUES = ("", "tuned", "system")  # DNAJAX_HOST_ALLOCATOR: unset/"tuned" (the set-up), "system"
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8


def cpu_backend_expected() -> bool:
  """Whether JAX's default backend will be the CPU: JAX_PLATFORMS names cpu first, or no GPU/TPU plugin is
  installed (`jax_plugins`, `jax_cuda12_plugin`, `jax_cuda13_plugin`, `libtpu`)."""
  platforms = os.environ.get("JAX_PLATFORMS", "").strip()
  if platforms:
    return platforms.split(",")[0].strip() == "cpu"
  return not any(importlib.util.find_spec(m) for m in ("jax_plugins", "jax_cuda12_plugin", "jax_cuda13_plugin",
                                                       "libtpu"))


def host_allocator_mode() -> str:
  """DNAJAX_HOST_ALLOCATOR as set ("" when unset)."""
  return os.environ.get("DNAJAX_HOST_ALLOCATOR", "")


def check_environment() -> None:
  """UserError (one line) for a DNAJAX_HOST_ALLOCATOR value other than HOST_ALLOCATOR_VALUES; the CLI checks it
  first, so a misspelt value never runs silently in the other mode."""
  value = host_allocator_mode()
  if value not in HOST_ALLOCATOR_VALUES:
    raise UserError(f"DNAJAX_HOST_ALLOCATOR={value!r} is not a mode; use `system` (glibc's malloc and JAX's "
                    "asynchronous CPU dispatch as they are) or `tuned` / unset (dnajax's CPU host set-up)")


def tune_cpu_host() -> bool:
  """On Linux with glibc, when the CPU backend will run and DNAJAX_HOST_ALLOCATOR is not `system`: malloc with one
  arena and mmap/trim thresholds of HOST_ALLOCATOR_BYTES (mallopt(3)), and JAX's CPU dispatch synchronous
  (`jax_cpu_enable_async_dispatch` False). Returns True when applied. Has its full effect only before the CPU
  backend starts (see the measurement above)."""
  if (host_allocator_mode() == "system" or not sys.platform.startswith("linux")
          or platform.libc_ver()[0] != "glibc" or not cpu_backend_expected()):
    return False
  try:
    mallopt = ctypes.CDLL(None).mallopt
  except (OSError, AttributeError):
    return False
  settings = ((_M_ARENA_MAX, 1), (_M_MMAP_THRESHOLD, HOST_ALLOCATOR_BYTES), (_M_TRIM_THRESHOLD, HOST_ALLOCATOR_BYTES))
  if not all(mallopt(option, value) == 1 for option, value in settings):
    return False
  jax.config.update("jax_cpu_enable_async_dispatch", False)
  return True


HOST_TUNED = tune_cpu_host()


# The instruction-set extensions that decide how fast a CPU runs the model's matmuls (x86 SIMD widths, dot-product and
# bfloat16 instructions, AMX; Arm NEON/SVE), in the names Linux's /proc/cpuinfo gives them.
ISA_EXTENSIONS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512bw", "avx512vl",
                  "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
                  "asimd", "asimddp", "sve", "sve2", "bf16", "i8mm")


@functools.lru_cache
def cpu_description(cpuinfo: str = "/proc/cpuinfo") -> dict:
  """{"cpu_model": the first processor's model name, "isa_extensions": those of ISA_EXTENSIONS it has, in that
  order}. Reads Linux's `cpuinfo`: the model from `model name` (x86), `Model` or `cpu model`, the extensions from
  `flags` (x86) or `Features` (Arm). Without a model line (most Arm kernels) the model is `platform.processor()` or
  `platform.machine()`; when the file cannot be read, that and an empty list."""
  model, flags = "", set()
  try:
    with open(cpuinfo) as f:
      for line in f:
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "cpu model") and not model:
          model = value.strip()
        elif key in ("flags", "Features") and not flags:
          flags = set(value.split())
  except OSError:
    pass
  return {"cpu_model": model or platform.processor() or platform.machine(),
          "isa_extensions": [x for x in ISA_EXTENSIONS if x in flags]}


def _drop_closed_event_loop_reports() -> None:
  """Orbax's reader threads, when a checkpoint cannot be read, report 'Event loop is closed' as dozens of
  tracebacks through sys.excepthook, before and after dnajax's one-line error; exactly those are dropped (installed
  once per process; every other exception still prints)."""
  previous = sys.excepthook
  if getattr(previous, "_dnajax", False):
    return

  def hook(kind, value, tb):
    if not (kind is RuntimeError and str(value) == "Event loop is closed"):
      previous(kind, value, tb)

  hook._dnajax = True
  sys.excepthook = hook


def setup_logging(verbose: bool = False) -> None:
  """INFO (or DEBUG) logging as 'HH:MM:SS dnajax: message'; JAX, orbax and absl quietened to warnings."""
  logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                      datefmt="%H:%M:%S")
  for noisy in ("absl", "orbax", "jax._src", "etils"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  _drop_closed_event_loop_reports()


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
  """`jax.distributed.initialize()` when this run spans several processes: explicit flags, the variables
  JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID, or an environment JAX detects itself (Cloud TPU
  pods, SLURM with several tasks); otherwise nothing."""
  coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
  if num_processes is None and os.environ.get("JAX_NUM_PROCESSES"):
    num_processes = int(os.environ["JAX_NUM_PROCESSES"])
  if process_id is None and os.environ.get("JAX_PROCESS_ID"):
    process_id = int(os.environ["JAX_PROCESS_ID"])
  explicit = coordinator is not None or (num_processes or 1) > 1
  detected = (any(os.environ.get(v) for v in _DETECTED_BY_JAX)
              and int(os.environ.get("SLURM_NTASKS", "2")) > 1)
  try:
    if explicit:
      jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                 process_id=process_id)
    elif detected:
      jax.distributed.initialize()  # Cloud TPU and SLURM are detected by JAX itself
  except (ValueError, RuntimeError) as e:
    raise UserError(f"jax.distributed.initialize failed ({str(e).splitlines()[0]}); check --coordinator, "
                    "--num-processes and --process-id") from None


def quiet_unless_main() -> None:
  """Only process 0 logs below warnings (every process still reports problems)."""
  if jax.process_index() != 0:
    log.setLevel(logging.WARNING)


def describe(mesh=None) -> str:
  """The start-up line: process index and count, device counts and kinds, backend, mesh shape."""
  devs = jax.devices()
  kinds = sorted({d.device_kind for d in devs})
  mesh_s = f", mesh {dict(mesh.shape)}" if mesh is not None else ""
  return (f"process {jax.process_index()}/{jax.process_count()}, {jax.local_device_count()} local / "
          f"{jax.device_count()} global devices ({', '.join(kinds)}, backend {jax.default_backend()}){mesh_s}")


def is_main() -> bool:
  """True on process 0 (the one that writes logs, metrics and outputs)."""
  return jax.process_index() == 0
