"""`FinetuneProgram`: a pretrained encoder + a sequence head, the trainable part chosen by the method, and the jitted
initialisation and fine-tuning step.

Methods: `head` trains the head on a frozen encoder; `full` trains everything; `lora` trains low-rank adapters
(Flax's `nnx.LoRA`, Hu et al. 2021) on every attention and MLP projection plus the head. The train state is a plain
dict {step, trainable, frozen, opt_state}: the gradient is taken with respect to `trainable` only (no backward pass
through frozen weights, no optimizer moments for them). The encoder's own vocabulary projection (`encoder/head`) is
never trained: the sequence head reads the final normalised hidden states.

Objective: cross-entropy of the class logits (classification) or the squared error of the standardised target
(regression), averaged over the real rows of the batch (padding rows have weight 0).

Letters: B batch rows (sequences), W windows per sequence, L window length, K outputs.
"""

from __future__ import annotations

import functools
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from dnajax import sharding
from dnajax.data import windows
from dnajax.model import encoder, heads
from dnajax.training import optim, steps
from dnajax.training import program as program_lib

METHODS = ("auto", "head", "full", "lora", "trees")  # trees: finetune_trees; auto: finetune_job.finetune_config


def _trainable(path: tuple[str, ...], method: str) -> bool:
  if path[0] == "encoder" and len(path) > 1 and path[1] in ("head", "head_bias"):
    return False  # the masked-token projection: unused by the sequence head
  if method == "full":
    return True
  return path[0] != "encoder" or (method == "lora" and any(p.startswith("lora_") for p in path))


def partition(params: dict, method: str) -> tuple[dict, dict]:
  """(trainable, frozen): the leaves of the nested dict `params` that `method` trains, and the rest (each a nested
  dict holding only its leaves)."""
  def split(node, path):
    a, b = {}, {}
    for k, v in node.items():
      if isinstance(v, dict):
        x, y = split(v, path + (k,))
        if x:
          a[k] = x
        if y:
          b[k] = y
      else:
        (a if _trainable(path + (k,), method) else b)[k] = v
    return a, b
  return split(params, ())


def combine(a: dict, b: dict) -> dict:
  """The nested dicts `a` and `b` (disjoint leaves) as one."""
  out = dict(a)
  for k, v in b.items():
    out[k] = combine(out[k], v) if k in out else v
  return out


def row_losses(outputs_BxK, targets_B, task: str):
  """(loss float32[B], correct float32[B]): cross-entropy of the logits and argmax == target (classification), or
  the squared error of output 0 and 0 (regression)."""
  if task == "classification":
    t = targets_B.astype(jnp.int32)
    return (optax.softmax_cross_entropy_with_integer_labels(outputs_BxK, t),
            (outputs_BxK.argmax(-1) == t).astype(jnp.float32))
  return jnp.square(outputs_BxK[:, 0] - targets_B.astype(jnp.float32)), jnp.zeros_like(outputs_BxK[:, 0])


def finetune_step(state: dict, batch: dict, *, graphdef, tx, schedule, seed: int, task: str, dropout: bool,
                  grad_accum: int = 1, skip_nonfinite: bool = False):
  """One update of the trainable parameters: state -> (state, metrics on the device: loss_sum, correct, rows,
  grad_norm, lr, skipped). Dropout keys are `fold_in(key(seed), step)`, so results do not depend on the mesh;
  gradient accumulation and skipping non-finite updates as `steps.apply_gradients` (the pretraining step's)."""
  step = state["step"]
  key = jax.random.fold_in(jax.random.key(seed), step) if dropout else None
  rows = batch["row_weights"].astype(jnp.float32).sum()

  def loss_fn(trainable, b, k):
    rw_B = b["row_weights"].astype(jnp.float32)
    model = nnx.merge(graphdef, combine(trainable, state["frozen"]))
    out_BxK = model(b["tokens"].astype(jnp.int32), b["weights"].astype(jnp.float32), b.get("features"),
                    dropout_key=k)
    loss_B, correct_B = row_losses(out_BxK, b["targets"], task)
    loss_sum = (loss_B * rw_B).sum()
    return loss_sum / jnp.maximum(rows, 1.0), (loss_sum, (correct_B * rw_B).sum())

  trainable, opt_state, (loss_sum, correct), grad_norm, skipped = steps.apply_gradients(
      jax.grad(loss_fn, has_aux=True), state["trainable"], state["opt_state"], batch, key, tx=tx,
      grad_accum=grad_accum, skip_nonfinite=skip_nonfinite)
  new = {"step": step + 1, "trainable": trainable, "frozen": state["frozen"], "opt_state": opt_state}
  return new, {"loss_sum": loss_sum, "correct": correct, "rows": jnp.where(skipped, 0.0, rows),
               "grad_norm": grad_norm, "lr": schedule(step), "skipped": skipped}


class FinetuneProgram(program_lib.Program):
  """The fine-tuning of one seed. `cfg` is the fine-tuned model's config (its `model` group already holding the
  method's adapters and dropout); `num_outputs` K; `num_train` rows; `windows_per_row` W and `window` L fix the
  batch shape; `positions` > 0 gives a position-wise head, `num_features` F > 0 a head that also reads F hand features
  per row (`heads.SequenceModel`).

  Attributes: mcfg, mesh, rules, graphdef, tx, schedule, steps_per_epoch, total_steps, state_sh, batch_sh, and the
  jitted `init(base_encoder_params) -> state` and `step(state, batch) -> (state, metrics)` (the state donated)."""

  def __init__(self, cfg, num_outputs: int, task: str, num_train: int, window: int, windows_per_row: int, seed: int,
               mesh=None, positions: int = 0, num_features: int = 0):
    f = cfg.finetune
    super().__init__(cfg, mesh)
    self.task, self.seed, self.num_outputs, self.positions = task, seed, num_outputs, int(positions)
    self.num_features = int(num_features)
    self.window, self.windows_per_row, self.num_train = int(window), int(windows_per_row), int(num_train)
    self.mcfg = encoder.config_from(cfg.model.to_dict())
    self.batch, accum = int(f.batch), int(f.grad_accum)
    self.check_batch("--config.finetune.batch", self.batch, "finetune.grad_accum", accum)
    self.steps_per_epoch = -(-self.num_train // self.batch)
    self.total_steps = self.steps_per_epoch * int(f.epochs)
    opt = types.SimpleNamespace(**{**cfg.opt.to_dict(), "learning_rate": f.learning_rate,
                                   "weight_decay": f.weight_decay,
                                   "warmup_steps": int(round(f.warmup_fraction * self.total_steps))})
    self.tx, self.schedule = optim.make_optimizer(opt, self.total_steps)
    self.graphdef, _ = heads.model_graph(self.mcfg, num_outputs, f.head_dropout, self.positions, self.num_features)
    abstract = heads.sharded_abstract_params(self.mcfg, num_outputs, self.mesh, self.rules, self.positions,
                                             self.num_features)
    self.param_sh = jax.tree.map(lambda a: a.sharding, abstract)
    train_sh, frozen_sh = partition(self.param_sh, f.method)
    train_abs, _ = partition(abstract, f.method)
    repl = sharding.replicated(self.mesh)
    opt_abs = jax.eval_shape(self.tx.init, train_abs)
    opt_sh = optax.tree_map_params(self.tx, lambda _, s: s, opt_abs, train_sh, transform_non_params=lambda _: repl)
    self.state_sh = {"step": repl, "trainable": train_sh, "frozen": frozen_sh, "opt_state": opt_sh}
    self.abstract_state = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                                       jax.eval_shape(self._create, self._base_abstract()), self.state_sh)
    self.batch_sh = {k: sharding.batch_sharding(self.mesh, n, self.rules)
                     for k, n in (("tokens", 3), ("weights", 3), ("targets", 1), ("row_weights", 1))
                     + ((("features", 2),) if self.num_features else ())}
    base_sh = jax.tree.map(lambda a: a.sharding, self._base_abstract())
    dropout = f.head_dropout > 0 or self.mcfg.dropout > 0
    step_fn = functools.partial(finetune_step, graphdef=self.graphdef, tx=self.tx, schedule=self.schedule,
                                seed=seed, task=task, dropout=dropout, grad_accum=accum,
                                skip_nonfinite=bool(f.skip_nonfinite))
    self.compile(self._create, (base_sh,), step_fn, self.batch_sh)

  def base_model_config(self) -> encoder.ModelConfig:
    """The pretrained encoder's own config (no adapters): the shapes its checkpoint holds."""
    return encoder.config_from({**self.cfg.model.to_dict(), "lora_rank": 0})

  def _base_abstract(self):
    return encoder.sharded_abstract_params(self.base_model_config(), self.mesh, self.rules)

  def _create(self, base_params: dict) -> dict:
    f = self.cfg.finetune
    params = heads.init_params(self.mcfg, self.num_outputs, f.head_dropout, self.seed, self.positions,
                               self.num_features)
    params["encoder"] = overlay(base_params, params["encoder"])
    trainable, frozen = partition(params, f.method)
    return {"step": jnp.zeros((), jnp.int32), "trainable": trainable, "frozen": frozen,
            "opt_state": self.tx.init(trainable)}

  def params(self, state: dict) -> dict:
    """The full parameter dict of a state (what the predictor and the best checkpoint take)."""
    return combine(state["trainable"], state["frozen"])

  def batch_rows(self, step: int) -> np.ndarray:
    """Training row ids int64[B] of `step`'s batch (-1: a padding row): epoch e = step // steps_per_epoch visits
    every row once in the order of a permutation seeded by (seed, e); the epoch's last batch is padded."""
    epoch, i = divmod(step, self.steps_per_epoch)
    order = np.random.default_rng([self.seed, epoch]).permutation(self.num_train)
    rows = np.full(self.batch, -1, np.int64)
    part = order[i * self.batch:(i + 1) * self.batch]
    rows[:len(part)] = part
    return rows

  def make_batch(self, step: int, seqs, targets: np.ndarray, features: np.ndarray | None = None) -> dict:
    """This process's rows of `step`'s batch as global arrays: tokens uint8[B, W, L], weights float32[B, W, L]
    (1 where a base is pooled), targets [B], row_weights float32[B] (0 for padding rows) and, with `num_features`,
    features float32[B, F] (the rows of `features` float[N, F])."""
    rows = self.batch_rows(step)
    local = sharding.process_rows(self.batch)
    mine = rows[local.start:local.stop]
    real = mine[mine >= 0]
    ids, wts = windows.sequence_windows([seqs[i] for i in real], self.window, self.windows_per_row)
    n, shape = len(mine), (len(mine), self.windows_per_row, self.window)
    tok, wt = np.zeros(shape, np.uint8), np.zeros(shape, np.float32)
    tok[:len(real)], wt[:len(real)] = ids[:len(real)], wts[:len(real)]
    tgt = np.zeros(n, targets.dtype)
    tgt[:len(real)] = targets[real]
    rw = np.zeros(n, np.float32)
    rw[:len(real)] = 1.0
    arrays = {"tokens": tok, "weights": wt, "targets": tgt, "row_weights": rw}
    if self.num_features:
      arrays["features"] = np.zeros((n, self.num_features), np.float32)
      arrays["features"][:len(real)] = features[real]
    return {k: jax.make_array_from_process_local_data(self.batch_sh[k], v) for k, v in arrays.items()}


def overlay(base: dict, fresh: dict) -> dict:
  """The nested dict `fresh` with every leaf that `base` also has taken from `base` (the pretrained weights), the
  others (adapters, the new head) kept."""
  return {k: (overlay(base[k], v) if isinstance(v, dict) else base[k]) if k in base else v for k, v in fresh.items()}
