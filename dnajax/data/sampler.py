"""Training windows: random windows of a corpus's training split (token ids; the train step masks them,
`masking.mask_for_training`), and the sequence-length curriculum that decides their length at each step.

Row r of step t depends only on (seed, t, r): each process builds its own rows of the global batch, all processes
together build the same batch whatever their number, and a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dnajax.data import tokens
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
  """Random training windows of one length over a corpus split, cut on the host as uint8 token ids (the train step
  masks them); row r of step t depends only on (seed, t, r)."""

  TRIES = 10  # windows drawn for a row before one with too many N is kept anyway

  def __init__(self, corpus: Corpus, seq_len: int, seed: int, max_n_fraction: float = 0.5,
               reverse_complement: bool = False, split: str = "train"):
    self.corpus, self.seq_len, self.seed = corpus, seq_len, seed
    self.max_n_fraction, self.rc = max_n_fraction, reverse_complement
    segs = corpus.split(split)
    if not segs:
      raise UserError(f"{corpus.path}: the {split} split is empty; add data or change data.val_fraction")
    self.tokens = np.asarray(corpus.tokens)  # the memory map as a plain array view (no copy)
    # A codon-aligned corpus (coding sequences) starts windows only where the record's reading frame does.
    self.align = 3 if corpus.index.get("codon_aligned") else 1
    self.first = np.array([(-s["start"]) % self.align for s in segs], dtype=np.int64)  # first aligned position
    self.offsets = np.array([s["offset"] for s in segs], dtype=np.int64)
    self.lengths = np.array([s["length"] for s in segs], dtype=np.int64)
    n_starts = np.maximum((self.lengths - self.first - seq_len) // self.align + 1, 1)
    self.cum_starts = np.cumsum(n_starts)
    self.first_k = self.cum_starts - n_starts  # the start index k of each segment's first window
    # Every whole window of the corpus as a row of a strided view (no copy): cutting R windows is one gather.
    self.whole = (np.lib.stride_tricks.sliding_window_view(self.tokens, seq_len) if len(self.tokens) >= seq_len
                  else None)

  def _cut(self, u_R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Windows at uniform draws u_R float64[R] in [0, 1) over every allowed start: (ids uint8[R, L] with PAD after
    the segment's end, n int64[R] the bases before it)."""
    L = self.seq_len
    k_R = np.minimum((u_R * self.cum_starts[-1]).astype(np.int64), self.cum_starts[-1] - 1)
    seg_R = np.searchsorted(self.cum_starts, k_R, side="right")
    at_R = self.offsets[seg_R] + self.first[seg_R] + self.align * (k_R - self.first_k[seg_R])  # in corpus.tokens
    n_R = np.minimum(self.offsets[seg_R] + self.lengths[seg_R] - at_R, L)
    short = np.flatnonzero(n_R < L)  # windows that run past their segment's end (short segments)
    if self.whole is None:
      ids_RxL = np.empty((len(u_R), L), np.uint8)
    else:
      ids_RxL = self.whole[np.minimum(at_R, len(self.whole) - 1)]
    if len(short):
      n_R[short] = np.maximum(n_R[short], 0)
      col_L = np.arange(L)
      pos_SxL = np.minimum(at_R[short, None] + col_L, len(self.tokens) - 1)
      ids_RxL[short] = np.where(col_L < n_R[short, None], self.tokens[pos_SxL], np.uint8(tokens.PAD))
    return ids_RxL, n_R

  def rows(self, step: int, row_ids: Sequence[int]) -> dict[str, np.ndarray]:
    """Rows `row_ids` of the global batch of `step`: {"ids": uint8[R, L] token ids, PAD after a segment's end}.

    Each row is a random window of the split with at most `max_n_fraction` N when `TRIES` draws allow,
    reverse-complemented with p=0.5 when so configured. Its draws are row r of one (seed, step) stream, so the rows
    of any process are those of the whole batch."""
    rows_R = np.asarray(row_ids, dtype=np.int64)
    if not len(rows_R):
      return {"ids": np.zeros((0, self.seq_len), np.uint8)}
    u_RxD = np.random.default_rng([self.seed, step]).random((int(rows_R.max()) + 1, self.TRIES + 1))[rows_R]
    ids_RxL, n_R = self._cut(u_RxD[:, 0])
    for t in range(1, self.TRIES):
      n_RxL = ids_RxL == tokens.N
      redo = np.flatnonzero(n_RxL.sum(1) > self.max_n_fraction * n_R) if n_RxL.any() else ()
      if not len(redo):
        break
      ids_RxL[redo], n_R[redo] = self._cut(u_RxD[redo, t])
    if self.rc:
      flip = np.flatnonzero(u_RxD[:, self.TRIES] < 0.5)  # the first n bases reversed and complemented; PAD stays
      col_L = np.arange(self.seq_len)
      src_RxL = np.where(col_L < n_R[flip, None], n_R[flip, None] - 1 - col_L, col_L)
      ids_RxL[flip] = tokens.COMPLEMENT[np.take_along_axis(ids_RxL[flip], src_RxL, axis=1)]
    return {"ids": ids_RxL}
