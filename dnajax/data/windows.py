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
  """Non-overlapping windows over one split; at most `max_windows`, evenly spaced (deterministic)."""
  segs = corpus.split(split)
  seqs = [corpus.tokens[s["offset"]:s["offset"] + s["length"]] for s in segs]
  softs = [corpus.softmask[s["offset"]:s["offset"] + s["length"]].astype(bool) for s in segs]
  w = tile(seqs, softs, seq_len)
  if max_windows and len(w.ids) > max_windows:
    keep = np.linspace(0, len(w.ids) - 1, max_windows).round().astype(np.int64)
    w = Windows(w.ids[keep], w.soft[keep], w.seq_index[keep], w.start[keep])
  return w


def eval_masks(ids_WxL: np.ndarray, rate: float, seed: int):
  """Fixed evaluation masks: window w is masked from (seed, w) only.

  Returns (inputs uint8[W, L] with MASK at the selected bases, targets uint8[W, L], weights float32[W, L])."""
  rows = [masking.mask_for_eval(ids_WxL[w], rate, np.random.default_rng([seed, w])) for w in range(len(ids_WxL))]
  if not rows:
    z = np.zeros_like(ids_WxL)
    return z, z, z.astype(np.float32)
  return tuple(np.stack(x) for x in zip(*rows))
