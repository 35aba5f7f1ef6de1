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
  masks them); row r of step t depends only on (seed, t, r).

  Without `weights` a window starts anywhere in the split with equal probability (sources in proportion to their
  length); with `weights` (one number >= 0 per source of the corpus, `Corpus.sources()`, in its order) each row
  first draws its source in those proportions, then a start uniformly within that source. With `soft` the rows
  also carry the windows' soft-mask flags (for `data.softmask_weight`)."""

  TRIES = 10  # windows drawn for a row before one with too many N is kept anyway

  def __init__(self, corpus: Corpus, seq_len: int, seed: int, max_n_fraction: float = 0.5,
               reverse_complement: bool = False, split: str = "train", weights: Sequence[float] = (),
               soft: bool = False):
    self.corpus, self.seq_len, self.seed = corpus, seq_len, seed
    self.max_n_fraction, self.rc = max_n_fraction, reverse_complement
    segs = corpus.split(split)
    if not segs:
      raise UserError(f"{corpus.path}: the {split} split is empty; add data or change data.val_fraction")
    self.tokens = np.asarray(corpus.tokens)  # the memory map as a plain array view (no copy)
    # A codon-aligned corpus (coding sequences) starts windows only where the record's reading frame does.
    self.align = 3 if corpus.index.get("codon_aligned") else 1
    source = corpus.segment_sources(split)
    self.weights = mixture_weights(corpus, weights, np.bincount(source, minlength=len(corpus.sources())) > 0)
    order = np.argsort(source, kind="stable") if self.weights is not None else np.arange(len(segs))
    segs = [segs[i] for i in order]  # with weights: each source's segments together
    self.first = np.array([(-s["start"]) % self.align for s in segs], dtype=np.int64)  # first aligned position
    self.offsets = np.array([s["offset"] for s in segs], dtype=np.int64)
    self.lengths = np.array([s["length"] for s in segs], dtype=np.int64)
    n_starts = np.maximum((self.lengths - self.first - seq_len) // self.align + 1, 1)
    self.cum_starts = np.cumsum(n_starts)
    self.first_k = self.cum_starts - n_starts  # the start index k of each segment's first window
    if self.weights is not None:  # each source's starts: k in [source_k0, source_k0 + source_n)
      self.source_n = np.bincount(source[order], weights=n_starts, minlength=len(self.weights)).astype(np.int64)
      self.source_k0 = np.cumsum(self.source_n) - self.source_n
      self.weights_cum = np.cumsum(self.weights)
    # Every whole window of the corpus as a row of a strided view (no copy): cutting R windows is one gather.
    self.whole = (np.lib.stride_tricks.sliding_window_view(self.tokens, seq_len) if len(self.tokens) >= seq_len
                  else None)
    self.soft = soft
    if soft:  # the soft-mask flags, cut the same way
      self.softmask = np.asarray(corpus.softmask)
      self.whole_soft = None if self.whole is None else np.lib.stride_tricks.sliding_window_view(self.softmask,
                                                                                                  seq_len)

  def _starts(self, u_R: np.ndarray, src_R: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Window starts at uniform draws u_R float64[R] in [0, 1) over every allowed start (of source src_R int64[R]
    when weighted): (at int64[R] positions in the corpus, n int64[R] the window's bases before its segment ends)."""
    if src_R is None:
      k_R = np.minimum((u_R * self.cum_starts[-1]).astype(np.int64), self.cum_starts[-1] - 1)
    else:
      n_R = self.source_n[src_R]
      k_R = self.source_k0[src_R] + np.minimum((u_R * n_R).astype(np.int64), n_R - 1)
    seg_R = np.searchsorted(self.cum_starts, k_R, side="right")
    at_R = self.offsets[seg_R] + self.first[seg_R] + self.align * (k_R - self.first_k[seg_R])  # in corpus.tokens
    n_R = np.maximum(np.minimum(self.offsets[seg_R] + self.lengths[seg_R] - at_R, self.seq_len), 0)
    return at_R, n_R

  def _cut(self, array: np.ndarray, whole, at_R: np.ndarray, n_R: np.ndarray, pad: int) -> np.ndarray:
    """uint8[R, L]: the windows of `array` (the corpus's tokens or soft-mask flags; `whole` its strided view of
    every window) at `at_R`, `pad` after each window's `n_R` bases."""
    L = self.seq_len
    out_RxL = np.empty((len(at_R), L), np.uint8) if whole is None else whole[np.minimum(at_R, len(whole) - 1)]
    short = np.flatnonzero(n_R < L)  # windows that run past their segment's end (short segments)
    if len(short):
      col_L = np.arange(L)
      pos_SxL = np.minimum(at_R[short, None] + col_L, len(array) - 1)
      out_RxL[short] = np.where(col_L < n_R[short, None], array[pos_SxL], np.uint8(pad))
    return out_RxL

  def rows(self, step: int, row_ids: Sequence[int]) -> dict[str, np.ndarray]:
    """Rows `row_ids` of the global batch of `step`: {"ids": uint8[R, L] token ids, PAD after a segment's end}, and
    with `soft` {"soft": uint8[R, L]} 1 at soft-masked (lowercase: repeat) bases.

    Each row is a random window of the split with at most `max_n_fraction` N when `TRIES` draws allow,
    reverse-complemented with p=0.5 when so configured. Its draws are row r of one (seed, step) stream, so the rows
    of any process are those of the whole batch."""
    rows_R = np.asarray(row_ids, dtype=np.int64)
    if not len(rows_R):
      empty = np.zeros((0, self.seq_len), np.uint8)
      return {"ids": empty, "soft": empty} if self.soft else {"ids": empty}
    u_RxD = np.random.default_rng([self.seed, step]).random((int(rows_R.max()) + 1, self.TRIES + 1))[rows_R]
    src_R = None
    if self.weights is not None:  # the row's source, from a stream of its own (unweighted draws stay as they were)
      u_R = np.random.default_rng([self.seed, step, 1]).random(int(rows_R.max()) + 1)[rows_R]
      src_R = np.minimum(np.searchsorted(self.weights_cum, u_R, side="right"), len(self.weights) - 1)
    at_R, n_R = self._starts(u_RxD[:, 0], src_R)
    ids_RxL = self._cut(self.tokens, self.whole, at_R, n_R, tokens.PAD)
    for t in range(1, self.TRIES):
      n_RxL = ids_RxL == tokens.N
      redo = np.flatnonzero(n_RxL.sum(1) > self.max_n_fraction * n_R) if n_RxL.any() else ()
      if not len(redo):
        break
      at_R[redo], n_R[redo] = self._starts(u_RxD[redo, t], None if src_R is None else src_R[redo])
      ids_RxL[redo] = self._cut(self.tokens, self.whole, at_R[redo], n_R[redo], tokens.PAD)
    out = {"ids": ids_RxL}
    if self.soft:
      out["soft"] = self._cut(self.softmask, self.whole_soft, at_R, n_R, 0)
    if self.rc:
      flip = np.flatnonzero(u_RxD[:, self.TRIES] < 0.5)  # the first n bases reversed and complemented; PAD stays
      col_L = np.arange(self.seq_len)
      src_RxL = np.where(col_L < n_R[flip, None], n_R[flip, None] - 1 - col_L, col_L)
      for key, table in (("ids", tokens.COMPLEMENT), ("soft", None)):
        if key in out:
          moved = np.take_along_axis(out[key][flip], src_RxL, axis=1)
          out[key][flip] = moved if table is None else table[moved]
    return out


def mixture_weights(corpus: Corpus, weights: Sequence, has_train: np.ndarray) -> np.ndarray | None:
  """`data.weights` as sampling probabilities float64[sources] (summing to 1), or None for none given (windows in
  proportion to length). Raises UserError for a count other than the corpus's sources, a value that is not a
  finite number >= 0, all zero, or weight on a source without training segments."""
  if not len(weights):
    return None
  names = corpus.sources()
  if len(weights) != len(names):
    raise UserError(f"data.weights: {len(weights)} values for the {len(names)} sources of {corpus.path} "
                    f"({', '.join(names)}); give one weight per source, in that order")
  try:
    w = np.array([float(x) for x in weights], np.float64)
  except (TypeError, ValueError):
    raise UserError(f"data.weights={','.join(map(str, weights))}: not numbers; e.g. --config.data.weights=0.5,0.5"
                    ) from None
  if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
    raise UserError(f"data.weights={','.join(map(str, weights))}: each must be a finite number >= 0, not all 0")
  empty = [n for n, wi, ok in zip(names, w, has_train) if wi > 0 and not ok]
  if empty:
    raise UserError(f"data.weights: source {empty[0]} has weight but no training segment in {corpus.path}; give it "
                    "weight 0 or prepare the corpus with more of it in the training split")
  return w / w.sum()
