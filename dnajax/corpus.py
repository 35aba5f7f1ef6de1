"""A prepared corpus on disk, its train/validation split, and the samplers that read it.

Layout of a corpus directory:
  tokens.u8     all kept segments back to back, one uint8 token id per base (memory-mapped when read)
  softmask.u8   1 where the base was lowercase (soft-masked repeat) in the source, else 0
  index.json    sources with sha256, segments (name, record, offset, length, split) and the preparation settings

The split is by whole records, or, when there are too few records, by a held-out block at the end of each record:
every segment is wholly train or wholly validation and windows never cross segments, so no validation base is ever
in a training window.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence

import numpy as np

from dnajax import masking, tokens
from dnajax.errors import UserError
from dnajax.io import Record, split_segments

FORMAT_VERSION = 1
MIN_RECORDS_FOR_RECORD_SPLIT = 5


def sha256_file(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class SplitSettings:
  val_fraction: float = 0.2
  mode: str = "auto"  # auto | records | blocks
  n_run: int = 10  # split records at runs of at least this many N
  min_len: int = 64  # drop segments shorter than this
  seed: int = 0


def _assign_split(records: list[Record], pieces: list[list[tuple[int, int]]], s: SplitSettings):
  """-> list of (record index, start, end, split)."""
  n_kept = sum(1 for p in pieces if p)
  mode = s.mode
  if mode == "auto":
    mode = "records" if n_kept >= MIN_RECORDS_FOR_RECORD_SPLIT else "blocks"
  out = []
  if s.val_fraction <= 0:
    return [(r, a, b, "train") for r, p in enumerate(pieces) for a, b in p], mode
  if mode == "records":
    lengths = np.array([sum(b - a for a, b in p) for p in pieces], dtype=np.float64)
    order = np.random.default_rng(s.seed).permutation(len(records))
    val, acc, total = set(), 0.0, lengths.sum()
    for r in order:
      if lengths[r] == 0:
        continue
      if acc >= s.val_fraction * total:
        break
      val.add(int(r))
      acc += lengths[r]
    if not val or len(val) == n_kept:
      raise UserError(f"cannot split {n_kept} records into train and validation at val_fraction={s.val_fraction}; "
                      "use --split blocks or add records")
    return [(r, a, b, "val" if r in val else "train") for r, p in enumerate(pieces) for a, b in p], mode
  if mode != "blocks":
    raise UserError(f"unknown split mode {s.mode!r}; use auto, records or blocks")
  for r, p in enumerate(pieces):
    for a, b in p:
      cut = b - int(round((b - a) * s.val_fraction))
      if cut - a >= s.min_len:
        out.append((r, a, cut, "train"))
      if b - cut >= s.min_len:
        out.append((r, cut, b, "val"))
  return out, mode


def prepare(records: Sequence[Record], out_dir: str, settings: SplitSettings, sources: Sequence[str] = (),
            force: bool = False, extra: dict | None = None, quiet: bool = False) -> "Corpus":
  """Write a corpus atomically (into a temporary sibling, then renamed). Returns the loaded corpus.

  An existing corpus made from the same content and settings is reused; a different one is refused unless
  `force`.
  """
  source_info = [{"path": os.path.abspath(p), "sha256": sha256_file(p), "bytes": os.path.getsize(p)}
                 for p in sources]
  content = hashlib.sha256()
  for r in records:
    content.update(r.name.encode() + b"\0")
    content.update(np.ascontiguousarray(r.ids))  # hashed in place: no copy of a long record
    content.update(np.packbits(r.soft_masked).tobytes())
  fingerprint = hashlib.sha256(json.dumps(
      {"sources": [x["sha256"] for x in source_info], "settings": dataclasses.asdict(settings),
       "extra": extra or {}, "content": content.hexdigest()}, sort_keys=True).encode()).hexdigest()
  index_path = os.path.join(out_dir, "index.json")
  if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
    existing = None
    if os.path.isfile(index_path):
      try:
        with open(index_path) as f:
          existing = json.load(f).get("fingerprint")
      except (OSError, ValueError):
        existing = None
    if existing == fingerprint:
      return Corpus(out_dir)
    if not force:
      what = "a different corpus" if existing else "files that are not a dnajax corpus"
      raise UserError(f"{out_dir}: already holds {what}; choose another --output or pass --force to replace it")
  pieces = [split_segments(r, settings.n_run, settings.min_len) for r in records]
  segments, mode = _assign_split(list(records), pieces, settings)
  if not segments:
    raise UserError(f"no segment of at least {settings.min_len} bases between N-runs in "
                    f"{', '.join(sources) or 'the input'}; lower data.min_len or check the input")
  parent = os.path.dirname(os.path.abspath(out_dir)) or "."
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=".corpus-", dir=parent)
  try:
    index_segments, offset = [], 0
    with open(os.path.join(tmp, "tokens.u8"), "wb") as ft, open(os.path.join(tmp, "softmask.u8"), "wb") as fs:
      for r, a, b, split in segments:
        rec = records[r]
        ft.write(rec.ids[a:b].tobytes())
        fs.write(rec.soft_masked[a:b].astype(np.uint8).tobytes())
        index_segments.append({"name": rec.name, "record": r, "start": a, "offset": offset, "length": b - a,
                               "split": split, "source": rec.source})
        offset += b - a
    index = {"format_version": FORMAT_VERSION, "fingerprint": fingerprint, "vocab": tokens.decode(np.arange(8)),
             "settings": dataclasses.asdict(settings), "split_mode": mode, "sources": source_info,
             "num_records": len(records), "segments": index_segments, "total_bases": offset, **(extra or {})}
    with open(os.path.join(tmp, "index.json"), "w") as f:
      json.dump(index, f, indent=1)
    if os.path.exists(out_dir):
      shutil.rmtree(out_dir) if os.path.isdir(out_dir) else os.remove(out_dir)
    os.replace(tmp, out_dir)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return Corpus(out_dir)


class Corpus:
  """A prepared corpus opened read-only (tokens memory-mapped)."""

  def __init__(self, path: str):
    index_path = os.path.join(path, "index.json")
    try:
      with open(index_path) as f:
        self.index = json.load(f)
    except (OSError, ValueError):
      raise UserError(f"{path}: not a prepared dnajax corpus (no readable index.json); "
                      "run `dnajax prepare` or pass FASTA/GenBank files") from None
    if self.index.get("format_version") != FORMAT_VERSION:
      raise UserError(f"{path}: corpus format {self.index.get('format_version')} is not {FORMAT_VERSION}; "
                      "prepare it again with this dnajax")
    self.path = path
    total = self.index["total_bases"]
    self.tokens = np.memmap(os.path.join(path, "tokens.u8"), dtype=np.uint8, mode="r", shape=(total,))
    self.softmask = np.memmap(os.path.join(path, "softmask.u8"), dtype=np.uint8, mode="r", shape=(total,))
    self.segments = self.index["segments"]

  def split(self, name: str) -> list[dict]:
    return [s for s in self.segments if s["split"] == name]

  @property
  def synthetic(self) -> str | None:
    return self.index.get("synthetic")

  def base_counts(self, split: str = "train") -> np.ndarray:
    """Counts of A, C, G, T in a split (for the majority-base baseline)."""
    counts = np.zeros(tokens.VOCAB_SIZE, dtype=np.int64)
    for s in self.split(split):
      counts += np.bincount(self.tokens[s["offset"]:s["offset"] + s["length"]], minlength=tokens.VOCAB_SIZE)
    return counts[tokens.A:tokens.T + 1]


class WindowSampler:
  """Random training windows; row r of step t depends only on (seed, t, r), never on the process.

  Each process asks for its own rows of the global batch; all of them together are the same global batch whatever
  the process count, and a resumed run sees exactly the batches it would have seen.
  """

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
    """Masked training rows for `row_ids` of the global batch of `step`."""
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
  """Fixed evaluation masks: window w is masked from (seed, w) only. -> inputs, targets, weights."""
  rows = [masking.mask_for_eval(ids_WxL[w], rate, np.random.default_rng([seed, w])) for w in range(len(ids_WxL))]
  if not rows:
    z = np.zeros_like(ids_WxL)
    return z, z, z.astype(np.float32)
  return tuple(np.stack(x) for x in zip(*rows))
