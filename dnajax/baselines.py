"""A bidirectional k-mer context count model: the simple baseline a masked-nucleotide model must beat.

p(base | l bases to the left, r bases to the right) from counts on the training split. At each position the model
uses the longest unmasked run on each side (up to `max_k`), backing off to shorter contexts (shortening the longer
side first, down to l = r = 0: base frequencies) where a context was seen fewer than `min_count` times. `max_k` and
`min_count` are chosen on a held-out slice of the training split, never on validation data.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dnajax import tokens

MAX_K = 4  # tables for every (l, r) with l, r <= 4: at most 4**8 contexts x 4 bases each


def _codes(ids: np.ndarray) -> np.ndarray:
  """Token ids -> 0..3 for A/C/G/T, -1 otherwise (masked, N, padding)."""
  c = ids.astype(np.int64) - tokens.A
  return np.where((c >= 0) & (c <= 3), c, -1)


def _context(codes_L: np.ndarray, left: int, right: int) -> tuple[np.ndarray, np.ndarray]:
  """(context index, all context bases observed) per position, for `left` and `right` bases around it."""
  L, pad = len(codes_L), max(left, right, 1)
  padded = np.concatenate([np.full(pad, -1), codes_L, np.full(pad, -1)])
  idx = np.zeros(L, np.int64)
  valid = np.ones(L, bool)
  for j in list(range(-left, 0)) + list(range(1, right + 1)):
    c = padded[pad + j:pad + j + L]
    valid &= c >= 0
    idx = idx * 4 + np.maximum(c, 0)
  return idx, valid


def backoff_order(max_k: int) -> list[tuple[int, int]]:
  """(left, right) context sizes from longest to shortest; ties prefer balanced contexts."""
  pairs = [(a, b) for a in range(max_k + 1) for b in range(max_k + 1)]
  return sorted(pairs, key=lambda p: (-(p[0] + p[1]), abs(p[0] - p[1]), p))


@dataclasses.dataclass
class KmerModel:
  max_k: int
  min_count: int
  counts: dict  # (left, right) -> int64[4**(left+right), 4]

  @classmethod
  def fit(cls, seqs, max_k: int, min_count: int = 1) -> "KmerModel":
    counts = {p: np.zeros((4 ** (p[0] + p[1]), 4), np.int64) for p in backoff_order(max_k)}
    for ids in seqs:
      codes = _codes(np.asarray(ids))
      centre = codes >= 0
      for (a, b), table in counts.items():
        idx, valid = _context(codes, a, b)
        keep = valid & centre
        table += np.bincount(idx[keep] * 4 + codes[keep], minlength=table.size).reshape(-1, 4)
    return cls(max_k, min_count, counts)

  def restricted(self, max_k: int, min_count: int) -> "KmerModel":
    """The same counts with shorter maximal contexts (no refit needed)."""
    return KmerModel(max_k, min_count, {p: t for p, t in self.counts.items() if max(p) <= max_k})

  def predict(self, ids_L: np.ndarray) -> np.ndarray:
    """p(A, C, G, T) at every position of one input row (MASK/N/PAD are unobserved context), float64[L, 4]."""
    codes = _codes(np.asarray(ids_L))
    probs = np.full((len(codes), 4), 0.25)
    todo = np.ones(len(codes), bool)
    for a, b in backoff_order(self.max_k):
      if not todo.any():
        break
      idx, valid = _context(codes, a, b)
      c = self.counts[(a, b)][idx]
      use = todo & valid & (c.sum(1) >= (self.min_count if a + b else 1))
      probs[use] = (c[use] + 0.5) / (c[use].sum(1, keepdims=True) + 2.0)
      todo &= ~use
    return probs

  def sums(self, inputs_WxL, targets_WxL, weights_WxL) -> dict[str, float]:
    """Correct predictions and -log p(target) summed over weighted positions, and their count."""
    correct = nll = 0.0
    for x, t, w in zip(inputs_WxL, targets_WxL, weights_WxL):
      sel = w > 0
      if not sel.any():
        continue
      p = self.predict(x)[sel]
      tc = t[sel].astype(np.int64) - tokens.A
      correct += float((p.argmax(1) == tc).sum())
      nll += float(-np.log(p[np.arange(len(tc)), tc]).sum())
    count = float((np.asarray(weights_WxL) > 0).sum())
    return {"correct": correct, "nll": nll, "count": count}


def select_and_fit(train_seqs, mask_rate: float, seq_len: int, seed: int = 0, holdout: float = 0.1) -> KmerModel:
  """Choose max_k and min_count by cross-entropy on the last `holdout` of each training sequence (masked like
  evaluation), then refit on all training sequences."""
  from dnajax import corpus as corpus_lib

  fit_part, held = [], []
  for s in train_seqs:
    cut = int(len(s) * (1 - holdout))
    fit_part.append(s[:cut])
    held.append(s[cut:])
  w = corpus_lib.tile(held, [np.zeros(len(h), bool) for h in held], seq_len)
  inputs, targets, weights = corpus_lib.eval_masks(w.ids[:256], mask_rate, seed)
  full = KmerModel.fit(fit_part, MAX_K)
  best, best_score = (0, 1), -np.inf
  for max_k in range(MAX_K + 1):
    for min_count in (1, 8):
      s = full.restricted(max_k, min_count).sums(inputs, targets, weights)
      score = -s["nll"] / max(s["count"], 1)
      if score > best_score:
        best, best_score = (max_k, min_count), score
  rest = KmerModel.fit(held, MAX_K)  # counts add up: fit part + held-out part = all training sequences
  tables = {p: t + rest.counts[p] for p, t in full.counts.items()}
  return KmerModel(MAX_K, 1, tables).restricted(*best)


def train_sequences(corpus) -> list[np.ndarray]:
  return [np.asarray(corpus.tokens[s["offset"]:s["offset"] + s["length"]]) for s in corpus.split("train")]


def kmer_report(model: KmerModel, inputs, targets, weights) -> dict:
  s = model.sums(inputs, targets, weights)
  n = max(s["count"], 1.0)
  return {"masked_accuracy": s["correct"] / n, "loss": s["nll"] / n, "max_k": model.max_k,
          "min_count": model.min_count}


def run(data: list[str], inputs: list[str], mask_rate: float, seed: int, seq_len: int, fmt: str | None) -> dict:
  """`dnajax baseline`: fit on the training split of `data` (files or a prepared corpus), evaluate on `inputs`."""
  import os
  import tempfile

  from dnajax import corpus as corpus_lib, io, metrics

  records = io.read_files(inputs, fmt)
  with tempfile.TemporaryDirectory() as tmp:
    if len(data) == 1 and os.path.isfile(os.path.join(data[0], "index.json")):
      corpus = corpus_lib.Corpus(data[0])
    else:
      files = io.expand_inputs(data)
      corpus = corpus_lib.prepare(io.read_files(files, fmt), os.path.join(tmp, "corpus"), corpus_lib.SplitSettings(),
                                  sources=files)
    model = select_and_fit(train_sequences(corpus), mask_rate, seq_len, seed)
    counts = corpus.base_counts("train")
  w = corpus_lib.tile([r.ids for r in records], [r.soft_masked for r in records], seq_len)
  x, t, wt = corpus_lib.eval_masks(w.ids, mask_rate, seed)
  out = {"kmer": kmer_report(model, x, t, wt),
         "majority_base_of_training_data": metrics.majority_base_accuracy(counts, t, wt), "uniform": 0.25,
         "num_masked": int(wt.sum()), "mask_rate": mask_rate, "seed": seed, "inputs": list(inputs)}
  return out
