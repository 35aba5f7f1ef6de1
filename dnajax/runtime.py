"""Runtime set-up, done first: multi-process initialisation, JAX flags, logging, the one start-up log line."""

from __future__ import annotations

import logging
import os

import jax

log = logging.getLogger("dnajax")

_MULTIPROCESS_ENV = ("JAX_COORDINATOR_ADDRESS", "SLURM_NTASKS", "TPU_WORKER_HOSTNAMES", "CLOUD_TPU_TASK_ID")


def setup_logging(verbose: bool = False) -> None:
  logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                      datefmt="%H:%M:%S")
  for noisy in ("absl", "orbax", "jax._src", "etils"):
    logging.getLogger(noisy).setLevel(logging.WARNING)


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> None:
  """`jax.distributed.initialize()` when this run spans several processes (explicit flags, or an environment
  that JAX detects itself: Cloud TPU, SLURM, JAX_COORDINATOR_ADDRESS); otherwise nothing."""
  explicit = coordinator is not None or (num_processes or 1) > 1
  detected = any(os.environ.get(v) for v in _MULTIPROCESS_ENV) and int(os.environ.get("SLURM_NTASKS", "2")) > 1
  if explicit:
    jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)
  elif detected:
    jax.distributed.initialize()


def describe(mesh=None) -> str:
  devs = jax.devices()
  kinds = sorted({d.device_kind for d in devs})
  mesh_s = f", mesh {dict(mesh.shape)}" if mesh is not None else ""
  return (f"process {jax.process_index()}/{jax.process_count()}, {jax.local_device_count()} local / "
          f"{jax.device_count()} global devices ({', '.join(kinds)}, backend {jax.default_backend()}){mesh_s}")


def is_main() -> bool:
  return jax.process_index() == 0
