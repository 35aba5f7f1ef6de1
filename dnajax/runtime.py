"""Runtime set-up, done first: multi-process initialisation, JAX flags, logging, the one start-up log line."""

from __future__ import annotations

import logging
import os
import sys

import jax

from dnajax.errors import UserError

log = logging.getLogger("dnajax")

_DETECTED_BY_JAX = ("SLURM_NTASKS", "TPU_WORKER_HOSTNAMES", "CLOUD_TPU_TASK_ID")  # JAX configures these itself


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
