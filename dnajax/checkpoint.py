"""Orbax checkpoints in `workdir/checkpoints`: the train state plus JSON metadata (step, config, data position).

A base module (below data/, model/, training/ and evaluation/): training saves and resumes the whole state, the
inference engine restores only the parameters, into whatever sharding the local devices give them.

A save is written to a temporary directory and renamed when complete, so a process killed mid-save leaves only an
uncommitted temporary directory, which orbax ignores: the next start resumes from the last complete step.

Resume order: (1) read the config saved in the workdir, (2) build the abstract sharded state, (3) restore the
latest step into it, (4) the data sampler continues at that step (its rows depend only on seed and step).
"""

from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp

from dnajax.errors import UserError

# The model-config keys that name a model in messages (the ones that set parameter shapes).
SHAPE_KEYS = ("d_model", "num_heads", "num_layers", "d_ff", "mlp", "pos_encoding", "max_len", "tie_embeddings")


def param_shapes(tree) -> dict[str, tuple]:
  """{"layer_0/attn/q": shape} of every leaf of a parameter tree (arrays, ShapeDtypeStructs or orbax metadata)."""
  def name(path):
    return "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)
  return {name(p): tuple(x.shape) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]}


class Checkpointer:
  """An orbax CheckpointManager over `directory` (default WORKDIR/checkpoints; may be gs://...).

  Raises UserError when `create` is False and the directory does not exist."""

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
    """The newest complete step, or None."""
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    """Every complete step on disk, ascending."""
    return list(self.manager.all_steps())

  def save(self, step: int, state, meta: dict, force: bool = False) -> bool:
    """Save the state pytree (arrays) and JSON metadata as `step` (asynchronously when so configured)."""
    return self.manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                                           meta=ocp.args.JsonSave(meta)), force=force)

  def restore_meta(self, step: int) -> dict:
    """The JSON metadata (step, config, data position) saved with `step`."""
    return self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

  def restore(self, step: int, abstract_state):
    """(state, meta) of `step`. A step that cannot be read (corrupt, foreign or from another model) is one line
    naming it and the steps that can be."""
    try:
      out = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state),
                                                               meta=ocp.args.JsonRestore()))
    except Exception as e:  # orbax/tensorstore raise many types for unreadable or mismatched data
      params = abstract_state.get("params") if isinstance(abstract_state, dict) else None
      foreign = self._another_model(step, params) if params is not None else None
      raise (foreign or self._unreadable(step, e)) from None
    return out["state"], out["meta"]

  def restore_params(self, step: int, abstract_params):
    """Only the parameters of `step` (the state's "params" subtree), placed as `abstract_params` says: a tree of
    jax.ShapeDtypeStruct with shardings. The optimizer moments are not read, so a checkpoint of any training mesh
    restores onto any devices (orbax reshards). Raises UserError as `restore` does."""
    foreign = self._another_model(step, abstract_params)  # checked first: a partial restore would not notice
    if foreign:
      raise foreign
    restore_args = jax.tree.map(lambda x: ocp.ArrayRestoreArgs(sharding=x.sharding), abstract_params)
    try:
      out = self.manager.restore(step, args=ocp.args.Composite(state=ocp.args.PyTreeRestore(
          item={"params": abstract_params}, restore_args={"params": restore_args}, partial_restore=True)))
    except Exception as e:  # orbax/tensorstore raise many types for unreadable or mismatched data
      raise self._unreadable(step, e) from None
    return out["state"]["params"]

  def saved_param_shapes(self, step: int) -> dict[str, tuple] | None:
    """`param_shapes` of the parameters saved as `step`, from orbax's metadata (no array is read); None when the
    metadata cannot be read."""
    try:
      handler = ocp.StandardCheckpointHandler()
      meta = handler.metadata(self.manager.directory / str(step) / "state")
      return param_shapes((meta.tree if hasattr(meta, "tree") else meta)["params"])
    except Exception:  # unreadable metadata: the restore itself says what is wrong
      return None

  def _another_model(self, step: int, abstract_params) -> UserError | None:
    """A one-line error when `step` holds parameters of other shapes than `abstract_params` (another model's
    checkpoint), else None."""
    saved = self.saved_param_shapes(step)
    want = param_shapes(abstract_params)
    if saved is None or saved == want:
      return None
    key = next(k for k in sorted(saved.keys() | want.keys()) if saved.get(k) != want.get(k))

    def show(shape):
      return "absent" if shape is None else f"shape {shape}"
    try:
      model = self.restore_meta(step)["config"]["model"]
      by = "; saved by model " + ", ".join(f"{k}={model[k]}" for k in SHAPE_KEYS if k in model)
    except Exception:
      by = ""
    return UserError(f"{os.path.join(self.directory, str(step))}: another model's checkpoint (parameter {key}: "
                     f"{show(saved.get(key))} there, {show(want.get(key))} in this config{by}); use a new --workdir "
                     "(or --config.ckpt.dir), or the same --config.model.* values as the run that saved it")

  def _unreadable(self, step: int, e: Exception) -> UserError:
    usable = [s for s in self.all_steps() if s != step and self._readable(s)]
    msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    return UserError(f"{os.path.join(self.directory, str(step))}: cannot restore this checkpoint ({msg}); usable "
                     f"steps: {', '.join(map(str, usable)) or 'none'}; delete the bad step directory (or pass "
                     "--step) and rerun")

  def _readable(self, step: int) -> bool:
    try:
      self.restore_meta(step)
      return True
    except Exception:
      return False

  def resolve_step(self, step: int | None) -> int:
    """`step` if a complete checkpoint has it, the latest when None; UserError otherwise."""
    steps = self.all_steps()
    if not steps:
      raise UserError(f"{self.directory}: holds no complete checkpoint; train first")
    if step is None:
      return max(steps)
    if step not in steps:
      raise UserError(f"{self.directory}: no checkpoint at step {step}; available: {', '.join(map(str, steps))}")
    return step

  def close(self) -> None:
    """Wait for pending asynchronous saves, then release the manager."""
    self.manager.wait_until_finished()
    self.manager.close()
