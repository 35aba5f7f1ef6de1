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
  targets_BxL = batch["targets"].astype(jnp.int32)
  w_BxL = batch["weights"].astype(jnp.float32)
  ce_BxL = optax.softmax_cross_entropy_with_integer_labels(logits_BxLxV, targets_BxL)
  ce_sum = (ce_BxL * w_BxL).sum()
  _, correct_BxL = metrics.position_scores(metrics.base_log_probs(logits_BxLxV), targets_BxL)
  return ce_sum / denom, (ce_sum, (correct_BxL * w_BxL).sum())


def train_step(state: dict, batch: dict, *, graphdef, tx, schedule, seed: int, dropout: float, grad_accum: int,
               mask_rate: float, mask_rate_max: float = 0.0, skip_nonfinite: bool = False) -> tuple[dict, dict]:
  """One optimizer update: state {step, params, opt_state}, batch {"ids": uint8[B, L] the global batch's windows}
  -> (new state, metrics on the device).

  The windows are masked here (`masking.mask_for_training` at `mask_rate`..`mask_rate_max`, from seed, step and
  row) and dropout keys are `fold_in(key(seed), step)` (then the micro-batch and layer), so results do not depend on
  the mesh. With `grad_accum` > 1 the batch is split into that many micro-batches scanned in sequence. With
  `skip_nonfinite` an update whose loss or gradient norm is not finite leaves params and moments unchanged (the
  step counter still advances). Metrics: mlm_ce_sum, correct, count (masked bases), grad_norm, lr, skipped.
  """
  step = state["step"]
  batch = masking.mask_for_training(batch["ids"], seed, step, mask_rate, mask_rate_max)
  key = jax.random.fold_in(jax.random.key(seed), step) if dropout > 0 else None
  count = batch["weights"].astype(jnp.float32).sum()
  grad_fn = jax.grad(functools.partial(mlm_cross_entropy, graphdef=graphdef, denom=jnp.maximum(count, 1.0)),
                     has_aux=True)
  if grad_accum == 1:
    grads, (ce_sum, correct) = grad_fn(state["params"], batch, key)
  else:
    micro = jax.tree.map(lambda x: x.reshape((grad_accum, -1) + x.shape[1:]), batch)

    def body(carry, inp):
      i, mb = inp
      k = None if key is None else jax.random.fold_in(key, i)
      g, (ls, c) = grad_fn(state["params"], mb, k)
      return jax.tree.map(jnp.add, carry, (g, ls, c)), None

    zeros = (jax.tree.map(jnp.zeros_like, state["params"]), jnp.zeros(()), jnp.zeros(()))
    (grads, ce_sum, correct), _ = jax.lax.scan(body, zeros, (jnp.arange(grad_accum), micro))
  updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
  params = optax.apply_updates(state["params"], updates)
  grad_norm = optax.tree.norm(grads)
  skipped = jnp.zeros((), jnp.bool_)
  if skip_nonfinite:  # keep the old params and moments; the step counter still advances (data stays in step)
    skipped = ~(jnp.isfinite(ce_sum) & jnp.isfinite(grad_norm))
    keep = lambda old, new: jnp.where(skipped, old, new)
    params = jax.tree.map(keep, state["params"], params)
    opt_state = jax.tree.map(keep, state["opt_state"], opt_state)
    ce_sum, correct, count = (jnp.where(skipped, 0.0, x) for x in (ce_sum, correct, count))
  out = {"step": step + 1, "params": params, "opt_state": opt_state}
  return out, {"mlm_ce_sum": ce_sum, "correct": correct, "count": count, "grad_norm": grad_norm,
               "lr": schedule(step), "skipped": skipped}
