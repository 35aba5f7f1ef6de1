"""`TrainProgram`: the model, mesh, optimiser and the jitted initialisation and training step for one config.

Everything is checked and placed before anything is written or compiled: the config's ranges (`config.check`, and
the corpus split settings), batch sizes against the batch mesh axes and the processes, learned positions against the
window length, parameter dimensions against their mesh axes.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from dnajax import checkpoint, sharding
from dnajax import config as config_lib
from dnajax.data import sampler, sources
from dnajax.errors import UserError
from dnajax.model import encoder
from dnajax.training import optim, steps
from dnajax.training import state as state_lib


class TrainProgram:
  """Attributes: cfg, mcfg (ModelConfig), mesh, rules, curriculum [(end step, window length)], graphdef, tx,
  schedule, abstract_state and state_sh (the state's shapes and NamedShardings), batch_sh, and the jitted
  `init() -> state` and `train_step(state, batch) -> (state, metrics)` (the state is donated).

  Raises UserError for a config that cannot run on the devices present."""

  def __init__(self, cfg, mesh=None):
    config_lib.check(cfg)  # every range, before anything else (also a config changed after `config.load`)
    sources.split_settings(cfg.data, cfg.train.seed)  # data.val_fraction, data.split, ...: the corpus's own check
    self.cfg = cfg
    self.mcfg = encoder.config_from(cfg.model.to_dict())
    self.mesh = mesh if mesh is not None else sharding.make_mesh(cfg.mesh)
    self.rules = sharding.rules_from_config(cfg.mesh.rules)
    self._check_batch_sizes()
    self.curriculum = sampler.curriculum(cfg.data.curriculum, int(cfg.train.steps), int(cfg.data.seq_len))
    if self.mcfg.pos_encoding == "learned" and cfg.data.seq_len > self.mcfg.max_len:
      raise UserError(f"config: data.seq_len={cfg.data.seq_len} exceeds model.max_len={self.mcfg.max_len}, the "
                      "longest learned position; raise model.max_len or use model.pos_encoding=rope")
    self.graphdef, _ = encoder.model_graph(self.mcfg)
    self.tx, self.schedule = optim.make_optimizer(cfg.opt, cfg.train.steps)
    self.abstract_state, self.state_sh = state_lib.state_shardings(self.mcfg, self.tx, self.mesh, self.rules)
    self.batch_sh = sharding.batch_sharding(self.mesh, 2, self.rules)
    self.init = jax.jit(functools.partial(state_lib.create_state, self.mcfg, self.tx, cfg.train.seed),
                        out_shardings=self.state_sh)
    step_fn = functools.partial(steps.train_step, graphdef=self.graphdef, tx=self.tx, schedule=self.schedule,
                                seed=cfg.train.seed, dropout=self.mcfg.dropout, grad_accum=cfg.train.grad_accum,
                                mask_rate=cfg.data.mask_rate, mask_rate_max=cfg.data.mask_rate_max,
                                skip_nonfinite=bool(cfg.opt.skip_nonfinite))
    self.train_step = jax.jit(sharding.traced_with_rules(step_fn, self.mesh, self.rules),
                              in_shardings=(self.state_sh, self.batch_sh),
                              out_shardings=(self.state_sh, sharding.replicated(self.mesh)), donate_argnums=0)

  def _check_batch_sizes(self) -> None:
    """Batch sizes must split evenly over the batch mesh axes and the processes (checked before compiling)."""
    shards = sharding.axis_size(self.mesh, self.rules.get("batch"))
    cfg, n_proc = self.cfg, jax.process_count()
    if cfg.train.grad_accum < 1 or cfg.train.global_batch % cfg.train.grad_accum:
      raise UserError(f"train.global_batch={cfg.train.global_batch} is not divisible by "
                      f"train.grad_accum={cfg.train.grad_accum}")
    for name, size in (("train.global_batch / train.grad_accum", cfg.train.global_batch // cfg.train.grad_accum),
                       ("eval.batch", cfg.eval.batch)):
      if size % shards or size % n_proc:
        raise UserError(f"{name}={size} is not divisible by the {shards} batch shards "
                        f"(mesh axes {self.rules.get('batch')}) and {n_proc} processes; change the batch or the mesh")

  def seq_len_at(self, step: int) -> int:
    """The training window length at `step` (the curriculum's)."""
    return sampler.seq_len_at(self.curriculum, step)

  def to_global(self, local: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """This process's rows of a batch ({"ids": uint8[R, L]}, `WindowSampler.rows`) -> global arrays sharded over
    the batch axes."""
    return sharding.to_global(self.mesh, local, self.rules)

  def abstract_batch(self, seq_len: int) -> dict[str, jax.ShapeDtypeStruct]:
    """The train step's batch as shapes ({"ids": uint8[global_batch, seq_len]}, sharded), for compiling ahead."""
    return {"ids": jax.ShapeDtypeStruct((self.cfg.train.global_batch, seq_len), np.uint8, sharding=self.batch_sh)}

  def restore(self, ckpt: checkpoint.Checkpointer, step: int):
    """(state, meta) of checkpoint `step`, placed on this program's mesh."""
    return ckpt.restore(step, self.abstract_state)
