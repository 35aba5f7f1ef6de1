"""The one masked-sums kernel, and its reduction to the reported numbers.

Every masked-base quality number in dnajax - the model's in training validation and `dnajax evaluate`, the k-mer
context model's, the base-composition (majority base) baseline's and the exact Bayes limit's - is computed by
`masked_sums` from log-probabilities over A/C/G/T and reduced by `summarize`. Sums plus a count are additive over
batches, devices and processes, so results do not depend on the batch size or the device count.

The kernel runs on NumPy arrays (host, float64 accumulation) and on JAX arrays (inside a jitted step, float32)
alike. Accuracy is argmax over A/C/G/T; the loss is the negative log-likelihood of the true base in nats per
masked base, with the distribution renormalised over A/C/G/T (a masked base is always one of them) - the quantity
the Bayes limit's cross-entropy is comparable to. (The training objective is a different quantity: see
`dnajax.training.steps.mlm_cross_entropy`.)

Letters: B batch (or windows), L length.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from dnajax.data import tokens


def _xp(x):
  return jnp if isinstance(x, jax.Array) or isinstance(x, jax.core.Tracer) else np


def base_log_probs(logits_BxLxV: jax.Array) -> jax.Array:
  """Log-probabilities over A, C, G, T only (renormalised), float32[B, L, 4], from logits [B, L, V]."""
  return jax.nn.log_softmax(logits_BxLxV[..., tokens.A:tokens.T + 1].astype(jnp.float32), axis=-1)


def position_scores(logp_BxLx4, targets_BxL):
  """(nll [B, L], correct [B, L]) of the true base at every position: -log p(target) in nats and 1.0 where the
  argmax over A/C/G/T is the target. Targets are token ids; positions that are not A/C/G/T get arbitrary values
  (callers weight them 0)."""
  xp = _xp(logp_BxLx4)
  t = xp.clip(targets_BxL.astype(xp.int32) - tokens.A, 0, 3)
  nll = -xp.take_along_axis(logp_BxLx4, t[..., None], axis=-1)[..., 0]
  correct = (xp.argmax(logp_BxLx4, -1) == t).astype(logp_BxLx4.dtype)
  return nll, correct


def masked_sums(logp_BxLx4, targets_BxL, weights_BxL, selections: Mapping[str, object] | None = None) -> dict:
  """Weighted sums over the masked positions (weight > 0; padding and unmasked bases have weight 0).

  Args:
    logp_BxLx4: log-probabilities over A, C, G, T (float; NumPy or JAX), or [4] for one distribution everywhere.
    targets_BxL: true token ids (uint8/int).
    weights_BxL: float weights, 1 at masked bases.
    selections: optional {stratum name: bool/float [B, L]}; each gets its own sums (strata may overlap).
  Returns:
    {"nll", "correct", "count": scalars; "base_correct", "base_count": [4] per true base A/C/G/T;
     "strata": {name: {"nll", "correct", "count"}}}, arrays of the input's kind (float64 on the host).
  """
  xp = _xp(logp_BxLx4)
  if xp is np:
    logp_BxLx4 = np.asarray(logp_BxLx4, np.float64)
  if logp_BxLx4.ndim == 1:
    logp_BxLx4 = xp.broadcast_to(logp_BxLx4, tuple(targets_BxL.shape) + (4,))
  nll, correct = position_scores(logp_BxLx4, targets_BxL)
  w = weights_BxL.astype(logp_BxLx4.dtype)
  nll = xp.where(w > 0, nll, 0.0)  # unweighted positions (padding, unmasked bases) may hold anything, even -inf
  t = xp.clip(targets_BxL.astype(xp.int32) - tokens.A, 0, 3)
  base_w = (t[..., None] == xp.arange(4)).astype(w.dtype) * w[..., None]
  axes = tuple(range(w.ndim))
  out = {"nll": (nll * w).sum(), "correct": (correct * w).sum(), "count": w.sum(),
         "base_correct": (base_w * correct[..., None]).sum(axes), "base_count": base_w.sum(axes), "strata": {}}
  for name, sel in (selections or {}).items():
    ws = w * sel.astype(w.dtype)
    out["strata"][name] = {"nll": (nll * ws).sum(), "correct": (correct * ws).sum(), "count": ws.sum()}
  return out


def add_sums(a: dict | None, b: dict) -> dict:
  """Two `masked_sums` results added (None is the empty sum)."""
  return b if a is None else jax.tree.map(lambda x, y: x + y, a, b)


def summary(nll: float, correct: float, count: float) -> dict:
  """{masked_accuracy, loss (nats per masked base), perplexity, num_masked}; values over zero bases are None."""
  if count <= 0:
    return {"masked_accuracy": None, "loss": None, "perplexity": None, "num_masked": 0}
  loss = nll / count
  return {"masked_accuracy": correct / count, "loss": loss, "perplexity": math.exp(min(loss, 700.0)),
          "num_masked": int(round(count))}


def summarize(sums: dict) -> dict:
  """`masked_sums` (host or device arrays) -> the reported result: summary numbers, `per_base_accuracy` (None for
  a base never masked) and `strata` (strata with no masked base are left out)."""
  s = jax.tree.map(lambda x: np.asarray(x, np.float64), jax.device_get(sums))
  out = summary(float(s["nll"]), float(s["correct"]), float(s["count"]))
  out["per_base_accuracy"] = {b: (float(s["base_correct"][i] / s["base_count"][i]) if s["base_count"][i] else None)
                              for i, b in enumerate(tokens.BASES)}
  out["strata"] = {name: summary(float(v["nll"]), float(v["correct"]), float(v["count"]))
                   for name, v in s["strata"].items() if v["count"] > 0}
  return out


def pll_totals(logp_L) -> dict:
  """{scored_bases, pll, pll_per_base} of per-position log-probabilities (NaN where a position was not scored,
  e.g. N): the sum and the mean over the scored positions, both None when none was scored (a sum or mean over
  nothing is not a likelihood: it would be 0.0, probability 1, and rank first)."""
  lp = np.asarray(logp_L, np.float64)
  scored = lp[~np.isnan(lp)]
  if not len(scored):
    return {"scored_bases": 0, "pll": None, "pll_per_base": None}
  total = float(scored.sum())
  return {"scored_bases": int(len(scored)), "pll": total, "pll_per_base": total / len(scored)}
