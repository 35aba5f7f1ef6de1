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


# ---------------------------------------------------------------------------------- Per-position (host) metrics
# `dnajax evaluate` works from the model's probabilities at every position, so it can stratify by any per-base
# label the input carries and compare strands; training validation uses the device sums above.
GC_BINS = (0.0, 0.35, 0.45, 0.55, 0.65, 1.0001)


def position_scores(probs_WxLx4: np.ndarray, targets_WxL: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(negative log-likelihood, correct) of the true base at every position."""
  t = np.clip(targets_WxL.astype(np.int64) - tokens.A, 0, 3)
  p_true = np.take_along_axis(probs_WxLx4, t[..., None], axis=-1)[..., 0].astype(np.float64)
  return -np.log(np.maximum(p_true, 1e-30)), (probs_WxLx4.argmax(-1) == t).astype(np.float64)


def summarize(nll: np.ndarray, correct: np.ndarray, select: np.ndarray) -> dict:
  return _summary(float(nll[select].sum()), float(correct[select].sum()), float(select.sum()))


def position_report(nll, correct, targets, weights, strata: dict[str, np.ndarray]) -> dict:
  """Overall, per-base and per-stratum metrics over the masked positions; `strata` maps a name to a bool[W, L]
  selection. Strata with no masked base are left out."""
  masked = weights > 0
  out = summarize(nll, correct, masked)
  out["per_base_accuracy"] = {}
  for i, b in enumerate(tokens.BASES):
    sel = masked & (targets == tokens.A + i)
    out["per_base_accuracy"][b] = float(correct[sel].mean()) if sel.any() else None
  out["strata"] = {name: summarize(nll, correct, masked & sel) for name, sel in strata.items()
                   if (masked & sel).any()}
  return out


def gc_strata(ids_WxL: np.ndarray) -> dict[str, np.ndarray]:
  """Each window's G+C fraction (of its A/C/G/T bases) in bins: {"gc_0.35-0.45": bool[W, L], ...}."""
  acgt = (ids_WxL >= tokens.A) & (ids_WxL <= tokens.T)
  gc = ((ids_WxL == tokens.C) | (ids_WxL == tokens.G)).sum(1) / np.maximum(acgt.sum(1), 1)
  out = {}
  for lo, hi in zip(GC_BINS[:-1], GC_BINS[1:]):
    rows = (gc >= lo) & (gc < hi)
    out[f"gc_{lo:.2f}-{min(hi, 1.0):.2f}"] = np.broadcast_to(rows[:, None], ids_WxL.shape)
  return out


def codon_strata(codon_WxL: np.ndarray) -> dict[str, np.ndarray]:
  """Coding vs non-coding and codon positions 1/2/3 from `io.codon_positions` labels."""
  out = {"coding": codon_WxL > 0, "non_coding": codon_WxL == 0}
  for k in (1, 2, 3):
    out[f"codon_position_{k}"] = codon_WxL == k
  return out


def reverse_complement_windows(ids_WxL: np.ndarray) -> np.ndarray:
  """Each window's real (non-PAD, leading) part reverse-complemented in place; MASK and N stay as they are."""
  out = ids_WxL.copy()
  for w, n in enumerate((ids_WxL != tokens.PAD).sum(1)):
    out[w, :n] = tokens.reverse_complement(ids_WxL[w, :n])
  return out


def from_reverse_strand(probs_rc_WxLx4: np.ndarray, ids_WxL: np.ndarray) -> np.ndarray:
  """Probabilities predicted on `reverse_complement_windows(ids)` mapped back to the forward strand's positions and
  bases (position i <- n-1-i; A<->T, C<->G is the reversed base axis)."""
  out = np.zeros_like(probs_rc_WxLx4)
  for w, n in enumerate((ids_WxL != tokens.PAD).sum(1)):
    out[w, :n] = probs_rc_WxLx4[w, :n][::-1, ::-1]
  return out


def strand_consistency(probs_WxLx4, probs_back_WxLx4, targets, weights) -> dict:
  """Agreement between the predictions on a sequence and on its reverse complement (mapped back), at masked bases:
  the fraction with the same predicted base, the mean total-variation distance between the two distributions, and
  the accuracy of the reverse-strand predictions."""
  masked = weights > 0
  if not masked.any():
    return {}
  same = probs_WxLx4.argmax(-1) == probs_back_WxLx4.argmax(-1)
  tv = 0.5 * np.abs(probs_WxLx4 - probs_back_WxLx4).sum(-1)
  _, correct_back = position_scores(probs_back_WxLx4, targets)
  return {"agreement": float(same[masked].mean()), "mean_tv_distance": float(tv[masked].mean()),
          "masked_accuracy_from_reverse_strand": float(correct_back[masked].mean())}
