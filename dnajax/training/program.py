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


def check_accumulation(batch_name: str, batch: int, accum_name: str, grad_accum: int) -> None:
  """Raises UserError unless `batch` splits into `grad_accum` (>= 1) equal micro-batches (the names: config keys)."""
  if grad_accum < 1 or batch % grad_accum:
    raise UserError(f"{batch_name}={batch} is not divisible by {accum_name}={grad_accum}")


class Program:
  """What every training program shares (pretraining's `TrainProgram`, fine-tuning's `FinetuneProgram`): the mesh
  and its logical-axis rules, batch sizes checked against the batch shards and processes before anything compiles,
  and the jitted `init(*args) -> state` and `step(state, batch) -> (state, metrics)` with explicit shardings, the
  state donated. A subclass sets `state_sh` and calls `compile`."""

  def __init__(self, cfg, mesh=None):
    self.cfg = cfg
    self.mesh = mesh if mesh is not None else sharding.make_mesh(cfg.mesh)
    self.rules = sharding.rules_from_config(cfg.mesh.rules)

  def check_batch(self, batch_name: str, batch: int, accum_name: str, grad_accum: int) -> None:
    """Raises UserError unless `batch` splits into `grad_accum` micro-batches each divisible by the batch shards and
    the processes (`batch_name`, `accum_name`: the config keys, for the message)."""
    shards, n_proc = sharding.axis_size(self.mesh, self.rules.get("batch")), jax.process_count()
    check_accumulation(batch_name, batch, accum_name, grad_accum)
    micro = batch // grad_accum
    if micro % shards or micro % n_proc:
      name = f"{batch_name} / {accum_name}" if grad_accum > 1 else batch_name
      raise UserError(f"{name}={micro} is not divisible by the {shards} batch shards (mesh axes "
                      f"{self.rules.get('batch')}) and {n_proc} processes; change the batch or the mesh")

  def compile(self, init_fn, init_in_shardings, step_fn, batch_sh) -> None:
    """`self.init` and `self.step` jitted over the mesh (the logical-axis rules active while the step traces)."""
    self.init = jax.jit(init_fn, in_shardings=init_in_shardings, out_shardings=self.state_sh)
    self.step = jax.jit(sharding.traced_with_rules(step_fn, self.mesh, self.rules),
                        in_shardings=(self.state_sh, batch_sh),
                        out_shardings=(self.state_sh, sharding.replicated(self.mesh)), donate_argnums=0)


class TrainProgram(Program):
  """Pretraining's program. Attributes: cfg, mcfg (ModelConfig), mesh, rules, curriculum [(end step, window
  length)], graphdef, tx, schedule, abstract_state and state_sh (the state's shapes and NamedShardings), batch_sh, and
  the jitted `init() -> state` and `step(state, batch) -> (state, metrics)` (the state is donated).

  Raises UserError for a config that cannot run on the devices present."""

  def __init__(self, cfg, mesh=None):
    config_lib.check(cfg)  # every range, before anything else (also a config changed after `config.load`)
    sources.split_settings(cfg.data, cfg.train.seed)  # data.val_fraction, data.split, ...: the corpus's own check
    super().__init__(cfg, mesh)
    self.mcfg = encoder.config_from(cfg.model.to_dict())
    self.check_batch("train.global_batch", cfg.train.global_batch, "train.grad_accum", cfg.train.grad_accum)
    self.check_batch("eval.batch", cfg.eval.batch, "grad_accum", 1)
    self.curriculum = sampler.curriculum(cfg.data.curriculum, int(cfg.train.steps), int(cfg.data.seq_len))
    if self.mcfg.pos_encoding == "learned" and cfg.data.seq_len > self.mcfg.max_len:
      raise UserError(f"config: data.seq_len={cfg.data.seq_len} exceeds model.max_len={self.mcfg.max_len}, the "
                      "longest learned position; raise model.max_len or use model.pos_encoding=rope")
    self.graphdef, _ = encoder.model_graph(self.mcfg)
    self.tx, self.schedule = optim.make_optimizer(cfg.opt, cfg.train.steps)
    self.abstract_state, self.state_sh = state_lib.state_shardings(self.mcfg, self.tx, self.mesh, self.rules)
    self.batch_sh = sharding.batch_sharding(self.mesh, 2, self.rules)
    step_fn = functools.partial(steps.train_step, graphdef=self.graphdef, tx=self.tx, schedule=self.schedule,
                                seed=cfg.train.seed, dropout=self.mcfg.dropout, grad_accum=cfg.train.grad_accum,
                                mask_rate=cfg.data.mask_rate, mask_rate_max=cfg.data.mask_rate_max,
                                skip_nonfinite=bool(cfg.opt.skip_nonfinite),
                                softmask_weight=float(cfg.data.softmask_weight))
    self.compile(functools.partial(state_lib.create_state, self.mcfg, self.tx, cfg.train.seed), (), step_fn,
                 self.batch_sh)

  def seq_len_at(self, step: int) -> int:
    """The training window length at `step` (the curriculum's)."""
    return sampler.seq_len_at(self.curriculum, step)

  def to_global(self, local: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """This process's rows of a batch ({"ids": uint8[R, L]}, `WindowSampler.rows`) -> global arrays sharded over
    the batch axes."""
    return sharding.to_global(self.mesh, local, self.rules)

  @property
  def soft_batches(self) -> bool:
    """Whether batches carry soft-mask flags ("soft": `data.softmask_weight` < 1; `WindowSampler(soft=...)`)."""
    return float(self.cfg.data.softmask_weight) < 1.0

  def abstract_batch(self, seq_len: int) -> dict[str, jax.ShapeDtypeStruct]:
    """The train step's batch as shapes ({"ids": uint8[global_batch, seq_len]}, and "soft" alike with
    `soft_batches`; sharded), for compiling ahead."""
    shape = jax.ShapeDtypeStruct((self.cfg.train.global_batch, seq_len), np.uint8, sharding=self.batch_sh)
    return {"ids": shape, "soft": shape} if self.soft_batches else {"ids": shape}

  def restore(self, ckpt: checkpoint.Checkpointer, step: int):
    """(state, meta) of checkpoint `step`, placed on this program's mesh."""
    return ckpt.restore(step, self.abstract_state)
