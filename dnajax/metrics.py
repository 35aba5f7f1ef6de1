"""Masked metrics as sums plus denominators (so results do not depend on batch size or device count), their
reduction to reported numbers, and the simple baselines reported beside the model.

Accuracy and evaluation loss use the model's distribution renormalised over A/C/G/T (a masked base is always one of
them), which makes the loss directly comparable to the Bayes limit's cross-entropy. Letters: B, L as in model.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from dnajax import tokens

STRATA = ("non_repeat", "repeat")


def base_log_probs(logits_BxLxV: jax.Array) -> jax.Array:
  """log p over A, C, G, T only, float32[B, L, 4]."""
  return jax.nn.log_softmax(logits_BxLxV[..., tokens.A:tokens.T + 1].astype(jnp.float32), axis=-1)


def eval_sums(logits_BxLxV, targets_BxL, weights_BxL, strata_BxL) -> dict[str, jax.Array]:
  logp_BxLx4 = base_log_probs(logits_BxLxV)
  t_BxL = jnp.clip(targets_BxL.astype(jnp.int32) - tokens.A, 0, 3)
  nll_BxL = -jnp.take_along_axis(logp_BxLx4, t_BxL[..., None], axis=-1)[..., 0]
  correct_BxL = (jnp.argmax(logp_BxLx4, -1) == t_BxL).astype(jnp.float32)
  w = weights_BxL.astype(jnp.float32)
  base_1h = jax.nn.one_hot(t_BxL, 4) * w[..., None]
  strat_1h = jax.nn.one_hot(strata_BxL, len(STRATA)) * w[..., None]
  return {
      "nll": (nll_BxL * w).sum(), "correct": (correct_BxL * w).sum(), "count": w.sum(),
      "base_correct": (base_1h * correct_BxL[..., None]).sum((0, 1)), "base_count": base_1h.sum((0, 1)),
      "strat_nll": (strat_1h * nll_BxL[..., None]).sum((0, 1)),
      "strat_correct": (strat_1h * correct_BxL[..., None]).sum((0, 1)), "strat_count": strat_1h.sum((0, 1)),
  }


def _summary(nll: float, correct: float, count: float) -> dict:
  if count <= 0:
    return {"masked_accuracy": float("nan"), "loss": float("nan"), "perplexity": float("nan"), "num_masked": 0}
  loss = nll / count
  return {"masked_accuracy": correct / count, "loss": loss, "perplexity": math.exp(loss), "num_masked": int(count)}


def report(sums: dict[str, np.ndarray], soft_masked: bool = False) -> dict:
  """Host sums -> the reported metrics (accuracy, nats per masked base, perplexity, per base, strata)."""
  s = {k: np.asarray(v, dtype=np.float64) for k, v in sums.items()}
  out = _summary(float(s["nll"]), float(s["correct"]), float(s["count"]))
  out["per_base_accuracy"] = {b: (float(s["base_correct"][i] / s["base_count"][i]) if s["base_count"][i] else None)
                              for i, b in enumerate(tokens.BASES)}
  if soft_masked:
    for i, name in enumerate(STRATA):
      out[name] = _summary(float(s["strat_nll"][i]), float(s["strat_correct"][i]), float(s["strat_count"][i]))
  return out


def majority_base_accuracy(base_counts_train: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> dict:
  """Always predicting the training split's most frequent base."""
  majority = tokens.A + int(np.argmax(base_counts_train))
  w = weights > 0
  acc = float((targets[w] == majority).mean()) if w.any() else float("nan")
  return {"base": tokens.BASES[majority - tokens.A], "masked_accuracy": acc}
