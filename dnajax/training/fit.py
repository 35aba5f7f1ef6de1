"""The one fit loop of dnajax: pretraining (`loop`) and fine-tuning (`finetune_loop`) both step through `fit`, each
with a `Task` that says what differs (the batch, the step, how metrics are read, when to validate and save, what to
do at a validation, what a checkpoint's metadata holds).

What every task gets from it, the same way:
- the next batch is made in a worker thread while the step runs (prefetch);
- metrics stay on the device and are read one window late (`Task.log_every` steps, a window read after the next step
  has been dispatched), so the loop never waits on the device in between; every pending window is read before a
  validation or a save, so nothing is validated or saved past an update nobody has checked;
- before anything is validated or saved, every trained parameter is checked to be finite (one host sync; saves are
  rare): a diverged run stops with `guards.TrainingDiverged` and never checkpoints a non-finite state;
- SIGTERM/SIGINT (`guards.StopRequest`) ends the run after the current step with a checkpoint; rerunning resumes
  exactly there (every batch depends only on seed and step).
"""

from __future__ import annotations

import concurrent.futures
import math
from typing import Protocol

import jax

from dnajax import checkpoint
from dnajax.training import guards


class Task(Protocol):
  """What one kind of training supplies to `fit`."""

  log_every: int  # steps per metrics window

  def batch(self, step: int) -> dict:
    """This process's rows of `step`'s batch as global arrays (called in a worker thread)."""

  def step(self, state: dict, batch: dict) -> tuple[dict, dict]:
    """One jitted update: (new state, device metrics)."""

  def read(self, window: list[tuple[int, dict]]) -> None:
    """Read one window of (step after the update, device metrics): write its record, raise TrainingDiverged on a
    non-finite loss."""

  def evaluating(self, done: int, total: int) -> bool:
    """Whether to validate after `done` steps."""

  def saving(self, done: int, total: int) -> bool:
    """Whether to checkpoint after `done` steps (a stop request always saves)."""

  def evaluate(self, state: dict, done: int) -> bool:
    """Validate the state after `done` steps; True to stop early (after saving)."""

  def trained(self, state: dict):
    """The parameters the update changes (checked finite before every validation and save)."""

  def meta(self, done: int) -> dict:
    """The JSON metadata saved with the checkpoint of `done`."""

  def synced(self, state: dict, done: int) -> None:
    """Called after a validation or save (e.g. to restart a throughput clock)."""


def check_window(window: list[tuple[int, dict]], loss_key: str, skip_nonfinite: bool,
                 ckpt: checkpoint.Checkpointer, fix: str) -> tuple[list[dict], int]:
  """(the window's metrics read to the host, how many of its updates were skipped as non-finite). Raises
  guards.TrainingDiverged (naming the step, the last good checkpoint and `fix`) when an update's `loss_key` sum or
  gradient norm is not finite and was not skipped, or when every update of the window was skipped."""
  steps, vals = [s for s, _ in window], jax.device_get([m for _, m in window])
  skipped = sum(int(v["skipped"]) for v in vals)
  bad = [s for s, v in zip(steps, vals) if not (math.isfinite(float(v[loss_key]))
                                               and math.isfinite(float(v["grad_norm"])))]
  if (bad and not skip_nonfinite) or skipped == len(vals):
    raise guards.TrainingDiverged(
        f"training diverged: non-finite loss or gradients at step {bad[0] if bad else steps[0]} (steps {steps[0]}-"
        f"{steps[-1]}); {guards.last_good(ckpt)}; {fix}")
  return vals, skipped


def check_finite(task: Task, state: dict, done: int, ckpt: checkpoint.Checkpointer, fix: str) -> None:
  """Raises guards.TrainingDiverged (naming the last good checkpoint and `fix`) when a trained parameter is not
  finite after `done` steps."""
  if not bool(jax.device_get(guards.all_finite(task.trained(state)))):
    raise guards.TrainingDiverged(f"training diverged: non-finite parameters at step {done}, not saved; "
                                  f"{guards.last_good(ckpt)}; {fix}")


def fit(task: Task, state: dict, start: int, total: int, stop: guards.StopRequest, ckpt: checkpoint.Checkpointer,
        bar, fix: str) -> tuple[dict, int, dict | None]:
  """Steps `start`..`total` of `task` -> (state, steps done, {signal, checkpoint_step} after a stop request or None).
  Ends early after a validation for which `task.evaluate` says so. `fix` is what a divergence message advises."""
  le, pending, done = task.log_every, [], start
  with concurrent.futures.ThreadPoolExecutor(1) as pool:
    next_batch = pool.submit(task.batch, start) if start < total else None
    for step in range(start, total):
      batch = next_batch.result()
      if step + 1 < total:
        next_batch = pool.submit(task.batch, step + 1)
      state, m = task.step(state, batch)
      done = step + 1
      pending.append((done, m))
      # Windows end at multiples of log_every (the same grid after a resume); a window is read once the next step
      # has been dispatched, so the device never waits on the host.
      if len(pending) > 1 and pending[-2][0] % le == 0:
        task.read(pending[:-1])
        pending = pending[-1:]
      # With several processes they agree on a stop at window ends, where metrics are read anyway.
      stopping = stop.requested_everywhere(at_sync_point=done % le == 0)
      evaluating, saving = task.evaluating(done, total), task.saving(done, total) or stopping
      if pending and (evaluating or saving):
        task.read(pending)
        pending = []
      early = False
      if evaluating or saving:
        check_finite(task, state, done, ckpt, fix)
      if evaluating:
        early = task.evaluate(state, done)
      if saving or early:
        ckpt.save(done, state, task.meta(done), force=True)
      if evaluating or saving:
        task.synced(state, done)
      bar.update(1)
      if stopping:
        return state, done, {"signal": stop.name, "checkpoint_step": done}
      if early:
        break
  return state, done, None
