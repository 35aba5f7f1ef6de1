"""Training windows: random windows of a corpus's training split, masked 80/10/10, and the sequence-length
curriculum that decides their length at each step.

Row r of step t depends only on (seed, t, r): each process builds its own rows of the global batch, all processes
together build the same batch whatever their number, and a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dnajax.data import masking, tokens
from dnajax.data.corpus import Corpus
from dnajax.errors import UserError


def curriculum(text: str, steps: int, seq_len: int) -> list[tuple[int, int]]:
  """`data.curriculum` -> [(first step after the stage, window length)], the last stage ending at `steps`.

  "128:0.8" with seq_len 512 and 1000 steps -> [(800, 128), (1000, 512)]. Raises UserError on a malformed text,
  fractions that do not rise within (0, 1), or a length outside 1..seq_len."""
  text = str(text).strip()
  stages, last = [], 0.0
  for part in filter(None, (p.strip() for p in text.split(","))):
    try:
      length, frac = part.split(":")
      length, frac = int(length), float(frac)
    except ValueError:
      raise UserError(f"config: data.curriculum={text!r}: write LENGTH:FRACTION[,LENGTH:FRACTION...], "
                      "e.g. 128:0.8") from None
    if not (last < frac < 1.0) or not 0 < length <= seq_len:
      raise UserError(f"config: data.curriculum={text!r}: fractions must rise within (0, 1) and lengths lie in "
                      f"1..data.seq_len={seq_len}")
    stages.append((round(frac * steps), length))
    last = frac
  return [(end, length) for end, length in stages if end > 0] + [(steps, seq_len)]


def seq_len_at(stages: list[tuple[int, int]], step: int) -> int:
  """The window length of `step` (0-based) under `curriculum` stages."""
  return next((length for end, length in stages if step < end), stages[-1][1])


class WindowSampler:
  """Random masked training windows of one length over a corpus split; rows depend only on (seed, step, row)."""

  def __init__(self, corpus: Corpus, seq_len: int, mask_rate: float, seed: int, max_n_fraction: float = 0.5,
               reverse_complement: bool = False, split: str = "train", mask_rate_max: float = 0.0):
    """`mask_rate_max` > `mask_rate`: each window draws its own rate uniformly from [mask_rate, mask_rate_max]
    (a model then serves evaluation at any rate in that range)."""
    self.corpus, self.seq_len, self.mask_rate, self.seed = corpus, seq_len, mask_rate, seed
    self.mask_rate_max = mask_rate_max
    self.max_n_fraction, self.rc = max_n_fraction, reverse_complement
    segs = corpus.split(split)
    if not segs:
      raise UserError(f"{corpus.path}: the {split} split is empty; add data or change data.val_fraction")
    # A codon-aligned corpus (coding sequences) starts windows only where the record's reading frame does.
    self.align = 3 if corpus.index.get("codon_aligned") else 1
    self.first = np.array([(-s["start"]) % self.align for s in segs], dtype=np.int64)  # first aligned position
    self.offsets = np.array([s["offset"] for s in segs], dtype=np.int64)
    self.lengths = np.array([s["length"] for s in segs], dtype=np.int64)
    n_starts = np.maximum((self.lengths - self.first - seq_len) // self.align + 1, 1)
    self.cum_starts = np.cumsum(n_starts)

  def window(self, rng: np.random.Generator) -> np.ndarray:
    """One window of token ids uint8[L] (PAD after a segment's end), at most `max_n_fraction` N when ten
    tries allow, reverse-complemented with p=0.5 when so configured."""
    L = self.seq_len
    for _ in range(10):
      k = int(rng.integers(self.cum_starts[-1]))
      seg = int(np.searchsorted(self.cum_starts, k, side="right"))
      start = int(self.first[seg]) + self.align * (k - (int(self.cum_starts[seg - 1]) if seg else 0))
      n = max(0, min(L, int(self.lengths[seg]) - start))
      ids = np.full(L, tokens.PAD, dtype=np.uint8)
      ids[:n] = self.corpus.tokens[self.offsets[seg] + start:self.offsets[seg] + start + n]
      if (ids[:n] == tokens.N).mean() <= self.max_n_fraction:
        break
    if self.rc and rng.random() < 0.5:
      ids[:n] = tokens.reverse_complement(ids[:n])
    return ids

  def rows(self, step: int, row_ids: Sequence[int]) -> dict[str, np.ndarray]:
    """Masked training rows for `row_ids` of the global batch of `step`: {"inputs": uint8[R, L] token ids with
    80/10/10 masking, "targets": uint8[R, L] the true tokens, "weights": float32[R, L] 1 at the masked bases}."""
    out = {"inputs": [], "targets": [], "weights": []}
    for r in row_ids:
      rng = np.random.default_rng([self.seed, step, r])
      ids = self.window(rng)
      rate = rng.uniform(self.mask_rate, self.mask_rate_max) if self.mask_rate_max > self.mask_rate else self.mask_rate
      inputs, targets, weights = masking.mask_for_training(ids, rate, rng)
      out["inputs"].append(inputs)
      out["targets"].append(targets)
      out["weights"].append(weights)
    return {k: np.stack(v) for k, v in out.items()}
