"""Orbax checkpoints in `workdir/checkpoints`: the train state plus JSON metadata (step, config, data position).

A save is written to a temporary directory and renamed when complete, so a process killed mid-save leaves only an
uncommitted temporary directory, which orbax ignores: the next start resumes from the last complete step.

Resume order: (1) read the config saved in the workdir, (2) build the abstract sharded state, (3) restore the
latest step into it, (4) the data sampler continues at that step (its rows depend only on seed and step).
"""

from __future__ import annotations

import os

import orbax.checkpoint as ocp

from dnajax.errors import UserError


class Checkpointer:
  def __init__(self, workdir: str, keep: int = 3, async_save: bool = True, create: bool = True,
               directory: str = ""):
    if directory and "://" in directory:
      self.directory = directory  # e.g. gs://bucket/run/checkpoints
    else:
      self.directory = os.path.abspath(directory or os.path.join(workdir, "checkpoints"))
    if not create and "://" not in self.directory and not os.path.isdir(self.directory):
      raise UserError(f"{workdir}: no checkpoints directory; train first with `dnajax train --workdir {workdir}`")
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=async_save, create=create)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return list(self.manager.all_steps())

  def save(self, step: int, state, meta: dict, force: bool = False) -> bool:
    return self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                           meta=ocp.args.JsonSave(meta)), force=force)

  def restore_meta(self, step: int) -> dict:
    return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

  def restore(self, step: int, abstract_state):
    """(state, meta) of `step`. A step that cannot be read (corrupt, foreign or from another model) is one line
    naming it and the steps that can be."""
    try:
      out = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                                               meta=ocp.args.JsonRestore()))
    except Exception as e:  # orbax/tensorstore raise many types for unreadable or mismatched data
      usable = [s for s in self.all_steps() if s != step and self._readable(s)]
      msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
      raise UserError(f"{os.path.join(self.directory, str(step))}: cannot restore this checkpoint ({msg}); usable "
                      f"steps: {', '.join(map(str, usable)) or 'none'}; delete the bad step directory (or pass "
                      "--step) and rerun") from None
    return out["state"], out["meta"]

  def _readable(self, step: int) -> bool:
    try:
      self.restore_meta(step)
      return True
    except Exception:
      return False

  def resolve_step(self, step: int | None) -> int:
    steps = self.all_steps()
    if not steps:
      raise UserError(f"{self.directory}: holds no complete checkpoint; train first")
    if step is None:
      return max(steps)
    if step not in steps:
      raise UserError(f"{self.directory}: no checkpoint at step {step}; available: {', '.join(map(str, steps))}")
    return step

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()
