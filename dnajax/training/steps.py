"""The training objective and the pure training step (jitted once by `TrainProgram`, the state donated).

The objective, `mlm_cross_entropy`, is the cross-entropy over the whole vocabulary at the masked positions of
80/10/10-masked inputs (BERT's masked-language-model loss, Devlin et al. 2019). It is logged as
`train/mlm_cross_entropy` and is not the evaluation loss: that is the negative log-likelihood over A/C/G/T of bases
hidden by [MASK] (`dnajax.evaluation.metrics`), which is what validation, `evaluate` and the Bayes limit report.

Letters: B batch, L length, V vocabulary.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from dnajax.data import masking
from dnajax.evaluation import metrics


def mlm_cross_entropy(params, batch: dict, key, *, graphdef, denom):
  """(mean objective, (cross-entropy sum, correct count)) over the masked positions of one batch.

  Args:
    params: the encoder's parameters (pure dict); graphdef: its `nnx` graph definition.
    batch: {"inputs": uint8[B, L] masked tokens, "targets": uint8[B, L] true tokens, "weights": float[B, L] 1 at
      masked bases}.
    key: dropout PRNG key or None; denom: the masked-base count the mean divides by (the whole step's, so
      micro-batches add up to the full batch's gradient).
  The cross-entropy is in nats over the full vocabulary; `correct` counts argmax over A/C/G/T == target.
  """
  logits_BxLxV = nnx.merge(graphdef, params)(batch["inputs"].astype(jnp.int32), key)
  with jax.named_scope("loss"):
    targets_BxL = batch["targets"].astype(jnp.int32)
    w_BxL = batch["weights"].astype(jnp.float32)
    ce_BxL = optax.softmax_cross_entropy_with_integer_labels(logits_BxLxV, targets_BxL)
    ce_sum = (ce_BxL * w_BxL).sum()
    _, correct_BxL = metrics.position_scores(metrics.base_log_probs(logits_BxLxV), targets_BxL)
    return ce_sum / denom, (ce_sum, (correct_BxL * w_BxL).sum())


def apply_gradients(grad_fn, params, opt_state, batch: dict, key, *, tx, grad_accum: int = 1,
                    skip_nonfinite: bool = False):
  """One optimizer update, the part pretraining and fine-tuning share: (params, opt_state, sums, grad_norm, skipped).

  `grad_fn(params, batch, key)` -> (grads, sums: a tuple of float scalars, the loss sum first) over one batch whose
  loss is already divided by the whole step's denominator. With `grad_accum` > 1 every array of `batch` (leading axis
  B) is split into that many micro-batches scanned in sequence (key folded with the micro-batch index) and their
  gradients and sums added: the same update as one batch, in 1/grad_accum of the activation memory. With
  `skip_nonfinite` an update whose loss sum or gradient norm is not finite keeps the old params and moments, and its
  sums read 0 (`skipped` True)."""
  if grad_accum == 1:
    grads, sums = grad_fn(params, batch, key)
  else:
    micro = jax.tree.map(lambda x: x.reshape((grad_accum, -1) + x.shape[1:]), batch)

    def body(carry, inp):
      i, mb = inp
      k = None if key is None else jax.random.fold_in(key, i)
      return jax.tree.map(jnp.add, carry, grad_fn(params, mb, k)), None

    _, sums_shape = jax.eval_shape(grad_fn, params, jax.tree.map(lambda x: x[0], micro), key)
    zeros = (jax.tree.map(jnp.zeros_like, params), tuple(jnp.zeros(x.shape, x.dtype) for x in sums_shape))
    (grads, sums), _ = jax.lax.scan(body, zeros, (jnp.arange(grad_accum), micro))
  with jax.named_scope("optimizer_update"):
    updates, new_opt_state = tx.update(grads, opt_state, params)
    new_params = optax.apply_updates(params, updates)
    grad_norm = optax.tree.norm(grads)
  skipped = jnp.zeros((), jnp.bool_)
  if skip_nonfinite:  # keep the old params and moments; the step counter still advances (data stays in step)
    skipped = ~(jnp.isfinite(sums[0]) & jnp.isfinite(grad_norm))
    keep = lambda old, new: jnp.where(skipped, old, new)
    new_params = jax.tree.map(keep, params, new_params)
    new_opt_state = jax.tree.map(keep, opt_state, new_opt_state)
    sums = tuple(jnp.where(skipped, 0.0, x) for x in sums)
  return new_params, new_opt_state, sums, grad_norm, skipped


def train_step(state: dict, batch: dict, *, graphdef, tx, schedule, seed: int, dropout: float, grad_accum: int,
               mask_rate: float, mask_rate_max: float = 0.0, skip_nonfinite: bool = False,
               softmask_weight: float = 1.0) -> tuple[dict, dict]:
  """One optimizer update: state {step, params, opt_state}, batch {"ids": uint8[B, L] the global batch's windows,
  and with `softmask_weight` < 1 "soft": uint8[B, L] 1 at soft-masked bases} -> (new state, metrics on the device).

  A masked soft-masked (lowercase: repeat) base weighs `softmask_weight` in the loss and the training metrics
  (`data.softmask_weight`; GPN trains with 0.1 on repeats, Benegas et al. 2023, PNAS); the loss stays a weighted
  mean.

  The windows are masked here (`masking.mask_for_training` at `mask_rate`..`mask_rate_max`, from seed, step and
  row) and dropout keys are `fold_in(key(seed), step)` (then the micro-batch and layer), so results do not depend on
  the mesh. Gradient accumulation and skipping non-finite updates as `apply_gradients`. Metrics: mlm_ce_sum,
  correct, count (masked bases), grad_norm, lr, skipped.
  """
  step = state["step"]
  with jax.named_scope("masking"):
    masked = masking.mask_for_training(batch["ids"], seed, step, mask_rate, mask_rate_max)
    if "soft" in batch:
      masked["weights"] = masked["weights"] * jnp.where(batch["soft"] > 0, jnp.float32(softmask_weight), 1.0)
    batch = masked
  key = jax.random.fold_in(jax.random.key(seed), step) if dropout > 0 else None
  count = batch["weights"].astype(jnp.float32).sum()
  loss = functools.partial(mlm_cross_entropy, graphdef=graphdef, denom=jnp.maximum(count, 1.0))

  params, opt_state, (ce_sum, correct), grad_norm, skipped = apply_gradients(
      jax.grad(loss, has_aux=True), state["params"], state["opt_state"], batch, key, tx=tx, grad_accum=grad_accum,
      skip_nonfinite=skip_nonfinite)
  count = jnp.where(skipped, 0.0, count)
  out = {"step": step + 1, "params": params, "opt_state": opt_state}
  return out, {"mlm_ce_sum": ce_sum, "correct": correct, "count": count, "grad_norm": grad_norm,
               "lr": schedule(step), "skipped": skipped}
