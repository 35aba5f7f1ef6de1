"""The baselines every model number stands beside, and the ceiling where one is known.

* The k-mer context model: a bidirectional count model, the simple baseline a masked-nucleotide model must beat.
* The base composition of the training data (majority base for accuracy, base frequencies for the loss).
* Uniform guessing (accuracy 0.25).
* The exact Bayes limit of the synthetic generators (not a baseline: the ceiling).
All are scored by the one kernel, `dnajax.evaluation.metrics.masked_sums`.

The k-mer context model: p(base | l bases to the left, r bases to the right) from counts on the training split. At
each position the model uses the longest unmasked run on each side (up to `max_k`), backing off to shorter contexts
(shortening the longer side first, down to l = r = 0: base frequencies) where a context was seen fewer than
`min_count` times. `max_k` and `min_count` are chosen on a held-out slice of the training split, never on validation
data.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dnajax.data import synthetic, tokens, windows
from dnajax.data.corpus import Corpus
from dnajax.evaluation import metrics

MAX_K = 4  # tables for every (l, r) with l, r <= 4: at most 4**8 contexts x 4 bases each
UNIFORM_ACCURACY = 0.25  # guessing: the chance masked accuracy (loss log 4)


def _codes(ids: np.ndarray) -> np.ndarray:
  """Token ids -> 0..3 for A/C/G/T, -1 otherwise (masked, N, padding)."""
  c = ids.astype(np.int64) - tokens.A
  return np.where((c >= 0) & (c <= 3), c, -1)


def _context(codes_WxL: np.ndarray, left: int, right: int) -> tuple[np.ndarray, np.ndarray]:
  """(context index, all context bases observed) per position of each row, int64[W, L] and bool[W, L], for `left`
  and `right` bases around it (rows are separate sequences: a context never crosses them)."""
  W, L = codes_WxL.shape
  pad = max(left, right, 1)
  padded = np.pad(codes_WxL, ((0, 0), (pad, pad)), constant_values=-1)
  idx = np.zeros((W, L), np.int64)
  valid = np.ones((W, L), bool)
  for j in list(range(-left, 0)) + list(range(1, right + 1)):
    c = padded[:, pad + j:pad + j + L]
    valid &= c >= 0
    idx = idx * 4 + np.maximum(c, 0)
  return idx, valid


def backoff_order(max_k: int) -> list[tuple[int, int]]:
  """(left, right) context sizes from longest to shortest; ties prefer balanced contexts."""
  pairs = [(a, b) for a in range(max_k + 1) for b in range(max_k + 1)]
  return sorted(pairs, key=lambda p: (-(p[0] + p[1]), abs(p[0] - p[1]), p))


@dataclasses.dataclass
class KmerModel:
  """Counts of the base at the centre of every (left, right) context up to `max_k` bases each side."""
  max_k: int
  min_count: int
  counts: dict  # (left, right) -> int64[4**(left+right), 4]

  @classmethod
  def fit(cls, seqs, max_k: int, min_count: int = 1) -> KmerModel:
    """Count every context of the token-id arrays `seqs` (unobserved bases break contexts)."""
    counts = {p: np.zeros((4 ** (p[0] + p[1]), 4), np.int64) for p in backoff_order(max_k)}
    for ids in seqs:
      codes = _codes(np.asarray(ids))[None]
      centre = codes >= 0
      for (a, b), table in counts.items():
        idx, valid = _context(codes, a, b)
        keep = valid & centre
        table += np.bincount(idx[keep] * 4 + codes[keep], minlength=table.size).reshape(-1, 4)
    return cls(max_k, min_count, counts)

  def restricted(self, max_k: int, min_count: int) -> KmerModel:
    """The same counts with shorter maximal contexts (no refit needed)."""
    return KmerModel(max_k, min_count, {p: t for p, t in self.counts.items() if max(p) <= max_k})

  def predict(self, ids: np.ndarray) -> np.ndarray:
    """p(A, C, G, T) at every position of input rows (token ids [..., L]; MASK/N/PAD are unobserved context, and
    each row is its own sequence), float64[..., L, 4]."""
    ids = np.asarray(ids)
    codes = _codes(ids.reshape(-1, ids.shape[-1]))
    probs = np.full(codes.shape + (4,), 0.25)
    flat_probs = probs.reshape(-1, 4)
    todo = np.ones(codes.size, bool)
    for a, b in backoff_order(self.max_k):
      if not todo.any():
        break
      idx, valid = _context(codes, a, b)
      cand = np.flatnonzero(todo & valid.reshape(-1))
      c = self.counts[(a, b)][idx.reshape(-1)[cand]]
      use = c.sum(1) >= (self.min_count if a + b else 1)
      flat_probs[cand[use]] = (c[use] + 0.5) / (c[use].sum(1, keepdims=True) + 2.0)
      todo[cand[use]] = False
    return probs.reshape(ids.shape + (4,))

  def sums(self, inputs_WxL, targets_WxL, weights_WxL, selections=None, chunk: int = 256) -> dict:
    """`metrics.masked_sums` of this model's predictions from `inputs_WxL` (MASK/N/PAD unobserved), with the
    strata of `selections` ({name: bool[W, L]}) where given."""
    total = None
    for a in range(0, len(inputs_WxL), chunk):
      logp = np.log(self.predict(inputs_WxL[a:a + chunk]))
      part = {name: sel[a:a + chunk] for name, sel in (selections or {}).items()}
      total = metrics.add_sums(total, metrics.masked_sums(logp, targets_WxL[a:a + chunk], weights_WxL[a:a + chunk],
                                                          part))
    return total if total is not None else metrics.masked_sums(np.zeros((0, 4)), np.zeros(0, np.uint8),
                                                                np.zeros(0, np.float32))


def select_and_fit(train_seqs, mask_rate: float, seq_len: int, seed: int = 0, holdout: float = 0.1) -> KmerModel:
  """Choose max_k and min_count by cross-entropy on the last `holdout` of each training sequence (masked like
  evaluation), then refit on all training sequences."""
  fit_part, held = [], []
  for s in train_seqs:
    cut = int(len(s) * (1 - holdout))
    fit_part.append(s[:cut])
    held.append(s[cut:])
  w = windows.tile(held, [np.zeros(len(h), bool) for h in held], seq_len)
  inputs, targets, weights = windows.eval_masks(w.ids[:256], mask_rate, seed)
  full = KmerModel.fit(fit_part, MAX_K)
  best, best_score = (0, 1), -np.inf
  for max_k in range(MAX_K + 1):
    for min_count in (1, 8):
      s = full.restricted(max_k, min_count).sums(inputs, targets, weights)
      score = -float(s["nll"]) / max(float(s["count"]), 1.0)
      if score > best_score:
        best, best_score = (max_k, min_count), score
  rest = KmerModel.fit(held, MAX_K)  # counts add up: fit part + held-out part = all training sequences
  tables = {p: t + rest.counts[p] for p, t in full.counts.items()}
  return KmerModel(MAX_K, 1, tables).restricted(*best)


def train_sequences(corpus: Corpus, seed: int = 0) -> list[np.ndarray]:
  """The training split as token arrays (views of the memory-mapped corpus): every segment, or above
  `corpus.SAMPLE_BASES` bases a seeded sample of stretches (`Corpus.sample`)."""
  return corpus.sample("train", seed=seed)


def _with_strata(r: dict, out: dict) -> dict:
  """`out` with {"strata": {name: {masked_accuracy, loss}}} from a summarised result `r` that has strata (those with
  nothing masked are left out, as `metrics.summarize` does)."""
  if r["strata"]:
    out["strata"] = {name: {"masked_accuracy": st["masked_accuracy"], "loss": st["loss"]}
                     for name, st in r["strata"].items()}
  return out


def kmer_result(model: KmerModel, inputs_WxL, targets_WxL, weights_WxL, selections=None) -> dict:
  """{masked_accuracy, loss, max_k, min_count} of the k-mer model on fixed masks; with `selections` ({name:
  bool[W, L]}) also "strata": {name: {masked_accuracy, loss}}."""
  r = metrics.summarize(model.sums(inputs_WxL, targets_WxL, weights_WxL, selections))
  return _with_strata(r, {"masked_accuracy": r["masked_accuracy"], "loss": r["loss"], "max_k": model.max_k,
                          "min_count": model.min_count})


def majority_base_result(base_counts: np.ndarray, targets_WxL, weights_WxL, selections=None) -> dict:
  """The base-composition model of the training data: always predicts its most frequent base (masked accuracy)
  with the training base frequencies as the distribution (loss: their cross-entropy, pseudo-count 0.5).

  Returns {base, masked_accuracy, loss}; with `selections` ({name: bool[W, L]}) also "strata": {name:
  {masked_accuracy, loss}}."""
  counts = np.asarray(base_counts, np.float64)
  logp = np.log((counts + 0.5) / (counts.sum() + 2.0))
  r = metrics.summarize(metrics.masked_sums(logp, targets_WxL, weights_WxL, selections))
  return _with_strata(r, {"base": tokens.BASES[int(np.argmax(counts))], "masked_accuracy": r["masked_accuracy"],
                          "loss": r["loss"]})


def bayes_result(hmm, inputs_WxL, targets_WxL, weights_WxL, chunk: int = 64) -> dict:
  """The exact Bayes-optimal predictor of a synthetic HMM on fixed masks (`synthetic.posterior_predictive`:
  forward-backward over each window, masked and N positions unobserved): {masked_accuracy, loss}."""
  total = None
  for a in range(0, len(inputs_WxL), chunk):
    ids = inputs_WxL[a:a + chunk]
    probs = synthetic.posterior_predictive(hmm, ids, (ids >= tokens.A) & (ids <= tokens.T))
    total = metrics.add_sums(total, metrics.masked_sums(np.log(np.maximum(probs, 1e-300)),
                                                        targets_WxL[a:a + chunk], weights_WxL[a:a + chunk]))
  r = metrics.summarize(total)
  return {"masked_accuracy": r["masked_accuracy"], "loss": r["loss"]}


class TrainingBaselines:
  """The baselines fitted on a corpus's training split, evaluated on any fixed masks: the k-mer context model (its
  sizes chosen on held-out training data, never on validation) and the base composition (majority base)."""

  def __init__(self, corpus: Corpus, mask_rate: float, seq_len: int, seed: int):
    self.kmer = select_and_fit(train_sequences(corpus, seed), mask_rate, seq_len, seed)
    self.base_counts = corpus.base_counts("train", seed)

  def evaluate(self, inputs_WxL, targets_WxL, weights_WxL, selections=None) -> dict:
    """The `baselines` part of the result schema: {"uniform": 0.25, "majority_base_of_training_data": {base,
    masked_accuracy, loss}, "kmer_of_training_data": {masked_accuracy, loss, max_k, min_count}}; with `selections`
    each has its per-stratum "strata" as well (`strata.attach_baselines` moves them beside the model's)."""
    return {"uniform": UNIFORM_ACCURACY,
            "majority_base_of_training_data": majority_base_result(self.base_counts, targets_WxL, weights_WxL,
                                                                   selections),
            "kmer_of_training_data": kmer_result(self.kmer, inputs_WxL, targets_WxL, weights_WxL, selections)}
