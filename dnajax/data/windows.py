"""Fixed windows for evaluation and prediction: tiling sequences (optionally overlapping), the windows of a corpus
split, and seeded all-[MASK] evaluation masks."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from dnajax.data import masking, tokens
from dnajax.data.corpus import Corpus


@dataclasses.dataclass
class Windows:
  """Fixed windows tiled over sequences, for evaluation and prediction."""

  ids: np.ndarray  # uint8[W, L]
  soft: np.ndarray  # bool[W, L] (or the dtype of the labels given to `tile`)
  seq_index: np.ndarray  # int64[W]: which input sequence
  start: np.ndarray  # int64[W]: position of column 0 in that sequence


def tile(seqs: Sequence[np.ndarray], softs: Sequence[np.ndarray], seq_len: int, stride: int | None = None) -> Windows:
  """Cover every position of every sequence with windows of `seq_len` (the last one padded), `stride` apart."""
  stride = stride or seq_len
  ids, soft, si, st = [], [], [], []
  for i, (s, m) in enumerate(zip(seqs, softs)):
    starts = list(range(0, max(len(s) - seq_len, 0) + 1, stride))
    if starts[-1] + seq_len < len(s):
      starts.append(len(s) - seq_len)
    for a in starts:
      w = np.full(seq_len, tokens.PAD, dtype=np.uint8)
      f = np.zeros(seq_len, dtype=np.asarray(m).dtype)  # any per-base label rides along (soft mask: bool)
      piece = s[a:a + seq_len]
      w[:len(piece)] = piece
      f[:len(piece)] = m[a:a + seq_len]
      ids.append(w), soft.append(f), si.append(i), st.append(a)
  if not ids:
    return Windows(np.zeros((0, seq_len), np.uint8), np.zeros((0, seq_len), bool), np.zeros(0, np.int64),
                   np.zeros(0, np.int64))
  return Windows(np.stack(ids), np.stack(soft), np.array(si), np.array(st))


def split_windows(corpus: Corpus, split: str, seq_len: int, max_windows: int | None = None) -> Windows:
  """Non-overlapping windows over one split (`tile` of each segment); at most `max_windows`, evenly spaced over
  all of them (deterministic). Only the windows kept are cut, so the cost is bounded by `max_windows` whatever the
  split's size."""
  segs = corpus.split(split)
  lengths = np.array([s["length"] for s in segs], np.int64)
  regular = np.maximum(lengths - seq_len, 0) // seq_len + 1  # tile's windows seq_len apart ...
  count = regular + ((regular - 1) * seq_len + seq_len < lengths)  # ... and one flush with the end where needed
  total = int(count.sum())
  keep = (np.linspace(0, total - 1, max_windows).round().astype(np.int64) if max_windows and total > max_windows
          else np.arange(total))
  seg = np.searchsorted(np.cumsum(count), keep, side="right")
  j = keep - (np.cumsum(count) - count)[seg]
  start = np.where(j < regular[seg], j * seq_len, lengths[seg] - seq_len)
  ids = np.full((len(keep), seq_len), tokens.PAD, np.uint8)
  soft = np.zeros((len(keep), seq_len), bool)
  for w, (k, a) in enumerate(zip(seg.tolist(), start.tolist())):
    lo, hi = segs[k]["offset"] + a, segs[k]["offset"] + min(a + seq_len, int(lengths[k]))
    ids[w, :hi - lo] = corpus.tokens[lo:hi]
    soft[w, :hi - lo] = corpus.softmask[lo:hi]
  return Windows(ids, soft, seg.astype(np.int64), start.astype(np.int64))


def eval_masks(ids_WxL: np.ndarray, rate: float, seed: int):
  """Fixed evaluation masks: window w is masked from (seed, w) only.

  Returns (inputs uint8[W, L] with MASK at the selected bases, targets uint8[W, L], weights float32[W, L])."""
  rows = [masking.mask_for_eval(ids_WxL[w], rate, np.random.default_rng([seed, w])) for w in range(len(ids_WxL))]
  if not rows:
    z = np.zeros_like(ids_WxL)
    return z, z, z.astype(np.float32)
  return tuple(np.stack(x) for x in zip(*rows))


def num_windows(length: int, seq_len: int) -> int:
  """Windows `sequence_windows` gives a sequence of `length` bases (half a window apart; at least 1)."""
  stride = max(1, seq_len // 2)
  return 1 if length <= seq_len else 1 + -(-(length - seq_len) // stride)


def sequence_windows(seqs: Sequence[np.ndarray], seq_len: int,
                     windows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Whole sequences as windows for a per-sequence model: (ids uint8[S, W, L], weights float32[S, W, L]), W =
  `windows` or else the largest number of windows any sequence needs (`num_windows`: windows half a window apart;
  the unused ones all PAD). Each position has weight 1 in exactly one window - the one where it sits farthest from
  an edge, the first on a tie - so pooling over the weights counts every base once; padding has weight 0.

  Raises ValueError when a sequence needs more than `windows` windows."""
  w = tile(seqs, [np.zeros(len(s), bool) for s in seqs], seq_len, max(1, seq_len // 2))
  owned = owned_columns(w, [len(s) for s in seqs], seq_len)
  per = np.bincount(w.seq_index, minlength=len(seqs)) if len(w.ids) else np.zeros(len(seqs), np.int64)
  W = max(1, int(per.max()) if len(per) else 1)
  if windows is not None:
    if W > windows:
      raise ValueError(f"a sequence needs {W} windows of {seq_len}, more than {windows}")
    W = windows
  ids = np.full((len(seqs), W, seq_len), tokens.PAD, np.uint8)
  weights = np.zeros((len(seqs), W, seq_len), np.float32)
  slot = np.zeros(len(seqs), np.int64)
  for j in range(len(w.ids)):
    i = int(w.seq_index[j])
    ids[i, slot[i]] = w.ids[j]
    weights[i, slot[i]] = owned[j]
    slot[i] += 1
  return ids, weights


def owned_columns(w: Windows, lengths: Sequence[int], seq_len: int) -> np.ndarray:
  """bool[W, L]: the columns of each window that give their positions' values - the window in which a position sits
  farthest from an edge, the first such window on a tie (the one rule for whole sequences: log-probabilities,
  hidden states and pooled models alike)."""
  best = [np.full(n, -1, np.int64) for n in lengths]  # distance to the nearest window edge
  owner = [np.full(n, -1, np.int64) for n in lengths]
  for j in range(len(w.ids)):
    i, start = int(w.seq_index[j]), int(w.start[j])
    col = np.arange(min(seq_len, lengths[i] - start))
    edge = np.minimum(col, len(col) - 1 - col)
    pos = start + col
    better = edge > best[i][pos]
    best[i][pos[better]] = edge[better]
    owner[i][pos[better]] = j
  owned = np.zeros(w.ids.shape, bool)
  for i, n in enumerate(lengths):
    owned[owner[i], np.arange(n) - w.start[owner[i]]] = True
  return owned
