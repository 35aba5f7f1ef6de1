"""Strata of masked bases (repeat, GC bin, coding / codon position) and the reverse-complement consistency of a
model's predictions. Strata are {name: bool[W, L]} selections for `metrics.masked_sums`.

Letters: W windows, L length.
"""

from __future__ import annotations

import numpy as np

from dnajax.data import tokens
from dnajax.evaluation import metrics

GC_BINS = (0.0, 0.35, 0.45, 0.55, 0.65, 1.0001)


def repeat_strata(soft_WxL: np.ndarray) -> dict[str, np.ndarray]:
  """Soft-masked (lowercase: repeat) and other bases; empty when nothing is soft-masked."""
  soft = np.asarray(soft_WxL, bool)
  return {"repeat": soft, "non_repeat": ~soft} if soft.any() else {}


def source_strata(source_W: np.ndarray, labels: list[str], length: int) -> dict[str, np.ndarray]:
  """Each source's windows (`source_W` int[W]: an index into `labels`) as selections {"source:LABEL": bool[W, L]},
  for `metrics.masked_sums`; `pop_sources` moves their results to the result's `sources`."""
  return {f"source:{label}": np.broadcast_to((source_W == k)[:, None], (len(source_W), length))
          for k, label in enumerate(labels)}


def pop_sources(result: dict, labels: list[str]) -> dict:
  """`result["strata"]`'s `source_strata` entries moved to `result["sources"]` ({label: {masked_accuracy, loss,
  perplexity, num_masked}}; a source with nothing masked has null values and num_masked 0). Returns `result`."""
  result["sources"] = {label: result["strata"].pop(f"source:{label}", None) or metrics.summary(0.0, 0.0, 0.0)
                       for label in labels}
  return result


def attach_baselines(result: dict) -> dict:
  """Each baseline's per-stratum numbers (`result["baselines"][NAME]["strata"]`, removed there) put beside the
  model's, as `result["strata"][S]["baselines"][NAME]` ({masked_accuracy, loss}), so that each stratum's and each
  source's number stands beside its baselines. Call before `pop_sources`. Returns `result`."""
  for name, b in result.get("baselines", {}).items():
    for stratum, r in (b.pop("strata", {}) if isinstance(b, dict) else {}).items():
      if stratum in result["strata"]:
        result["strata"][stratum].setdefault("baselines", {})[name] = r
  return result


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
  """Coding vs non-coding and codon positions 1/2/3, from int8 codon-position labels (0 outside a CDS, -1 where
  unknown: in neither; see `dnajax.data.features.codon_positions`)."""
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


def from_reverse_strand(logp_rc_WxLx4: np.ndarray, ids_WxL: np.ndarray) -> np.ndarray:
  """Predictions made on `reverse_complement_windows(ids)` mapped back to the forward strand's positions and bases
  (position i <- n-1-i; A<->T, C<->G is the reversed base axis)."""
  out = np.zeros_like(logp_rc_WxLx4)
  for w, n in enumerate((ids_WxL != tokens.PAD).sum(1)):
    out[w, :n] = logp_rc_WxLx4[w, :n][::-1, ::-1]
  return out


def strand_consistency(logp_WxLx4: np.ndarray, logp_back_WxLx4: np.ndarray, targets_WxL: np.ndarray,
                       weights_WxL: np.ndarray) -> dict:
  """Agreement between the predictions on a sequence and on its reverse complement (mapped back), at masked bases:
  the fraction with the same predicted base, the mean total-variation distance between the two distributions, and
  the masked accuracy of the reverse-strand predictions. Empty when nothing is masked."""
  masked = weights_WxL > 0
  if not masked.any():
    return {}
  same = logp_WxLx4.argmax(-1) == logp_back_WxLx4.argmax(-1)
  tv = 0.5 * np.abs(np.exp(logp_WxLx4) - np.exp(logp_back_WxLx4)).sum(-1)
  back = metrics.summarize(metrics.masked_sums(logp_back_WxLx4, targets_WxL, weights_WxL))
  return {"agreement": float(same[masked].mean()), "mean_tv_distance": float(tv[masked].mean()),
          "masked_accuracy_from_reverse_strand": back["masked_accuracy"]}
