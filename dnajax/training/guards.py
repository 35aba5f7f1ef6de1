"""Guards of a training run: resources checked before anything is written, finiteness checked before anything is
saved, and SIGTERM/SIGINT turned into a checkpoint and a clean exit."""

from __future__ import annotations

import math
import os
import shutil
import signal
import threading

import jax
import jax.numpy as jnp
import numpy as np
import psutil
from jax.experimental import multihost_utils

from dnajax import checkpoint
from dnajax.data import rundir
from dnajax.errors import UserError
from dnajax.model import encoder
from dnajax.training.program import TrainProgram


class TrainingDiverged(UserError):
  """Non-finite loss, gradients or parameters: the run stops and nothing non-finite is ever checkpointed."""


@jax.jit
def all_finite(tree) -> jax.Array:
  """True (a device bool) when every leaf of `tree` is finite."""
  return jnp.all(jnp.array([jnp.isfinite(x).all() for x in jax.tree.leaves(tree)]))


def last_good(ckpt: checkpoint.Checkpointer) -> str:
  """Where the last good checkpoint is, for a divergence message."""
  step = ckpt.latest_step()
  return (f"last good checkpoint: step {step} in {ckpt.directory} (kept)" if step is not None
          else "no checkpoint was saved before it")


class StopRequest:
  """SIGTERM/SIGINT -> finish the current step, checkpoint, exit 0. A second SIGINT interrupts at once."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.signum, self._previous = None, {}

  @property
  def name(self) -> str:
    """The signal's name (SIGTERM, SIGINT) or an empty string."""
    return signal.Signals(self.signum).name if self.signum else ""

  def _handle(self, signum, frame):
    if self.signum == signal.SIGINT and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.signum = signum

  def install(self) -> None:
    """Handle SIGTERM and SIGINT (main thread only) until `uninstall`."""
    if threading.current_thread() is threading.main_thread():
      for s in self.SIGNALS:
        self._previous[s] = signal.signal(s, self._handle)

  def uninstall(self) -> None:
    """Restore the previous handlers."""
    for s, h in self._previous.items():
      signal.signal(s, h)
    self._previous = {}

  def requested_everywhere(self, at_sync_point: bool) -> bool:
    """Whether to stop after this step. With several processes they agree (an allgather) only at sync points, so
    every process stops after the same step."""
    if jax.process_count() == 1:
      return self.signum is not None
    if not at_sync_point:
      return False
    flags = multihost_utils.process_allgather(np.array([self.signum or 0], np.int32))
    if self.signum is None and flags.any():
      self.signum = int(flags[flags > 0][0])
    return bool(flags.any())


def check_finite_config(cfg) -> None:
  """Every number of the config is finite (config.json and the checkpoints' metadata are strict JSON, and no
  setting means anything at NaN or infinity); UserError naming the first key that is not."""
  def walk(node, prefix):
    for k, v in node.items():
      if isinstance(v, dict):
        walk(v, f"{prefix}{k}.")
      elif isinstance(v, float) and not math.isfinite(v):
        raise UserError(f"--config.{prefix}{k}={v}: not a finite number; pass a finite value")
  walk(cfg.to_dict(), "")


def _existing_ancestor(path: str) -> str:
  path = os.path.abspath(path)
  while not os.path.exists(path):
    path = os.path.dirname(path)
  return path


def check_resources(cfg, program: TrainProgram, workdir: str) -> dict:
  """Before anything is written or compiled: the workdir is writable and the disk holds a checkpoint (from the
  parameter count). One line each, exit 2. (Whether the step fits the device's memory is checked once it is
  compiled: `aot.plan_step`, against `device_memory_limit`.) Returns {state_bytes: one checkpoint, bytes}."""
  n_params = encoder.count_params(program.abstract_state["params"])
  state_bytes = 3 * 4 * n_params  # float32 parameters and two Adam moments
  place = _existing_ancestor(workdir)
  if not os.path.isdir(place) or not os.access(place, os.W_OK | os.X_OK):
    raise UserError(f"{workdir}: cannot write here ({place} is not a writable directory); pass another --workdir")
  ckpt_dir = rundir.checkpoints_dir(workdir, cfg)
  if "://" not in ckpt_dir:
    free = shutil.disk_usage(_existing_ancestor(ckpt_dir)).free
    if free < 1.1 * state_bytes + 2**20:
      raise UserError(f"{ckpt_dir}: {free / 2**30:.2f} GiB free, but one checkpoint needs about "
                      f"{state_bytes / 2**30:.2f} GiB; free disk space or set --config.ckpt.dir")
  return {"state_bytes": state_bytes}


def device_memory_limit(cfg) -> tuple[int | None, str]:
  """(bytes one device holds, where that number comes from) for the training step's memory check.

  train.memory_limit_gib (GiB) when set above 0; else on GPU/TPU the first local device's
  `memory_stats()["bytes_limit"]` (what XLA's allocator may take); on CPU the host's available memory (psutil)
  shared by the local devices; None where the backend reports no limit. With several processes, the smallest of
  their limits (every process then plans the same step)."""
  if cfg.train.memory_limit_gib > 0:
    return int(cfg.train.memory_limit_gib * 2**30), "train.memory_limit_gib"
  dev = jax.local_devices()[0]
  if dev.platform == "cpu":
    limit = psutil.virtual_memory().available // jax.local_device_count()
    source = "host memory available" + (f" over {jax.local_device_count()} devices"
                                        if jax.local_device_count() > 1 else "")
  else:
    limit = (dev.memory_stats() or {}).get("bytes_limit")
    source = f"{dev.device_kind} bytes_limit"
  if jax.process_count() > 1:
    limits = multihost_utils.process_allgather(np.array([-1 if limit is None else limit], np.int64))
    limit = None if (limits < 0).any() else int(limits.min())
  if limit is None:
    return None, f"{dev.platform} reports no memory limit; set train.memory_limit_gib to check"
  return int(limit), source
