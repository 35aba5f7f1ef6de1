"""A prepared corpus on disk and its train/validation split.

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
import math
import os
import shutil
import tempfile
from collections.abc import Sequence

import numpy as np

from dnajax.data import tokens
from dnajax.data.readers import Record
from dnajax.errors import UserError

FORMAT_VERSION = 1
MIN_RECORDS_FOR_RECORD_SPLIT = 5


def sha256_file(path: str) -> str:
  """Hex SHA-256 of a file, read in 1 MiB pieces."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


@dataclasses.dataclass(frozen=True)
class SplitSettings:
  """How a corpus is split: validation fraction, mode (auto | records | blocks), N-run length that splits
  records, shortest kept segment, seed of the record shuffle.

  The one place these are range-checked, for `dnajax prepare` (--val-fraction, --split, --n-run, --min-len,
  --seed) and training (data.val_fraction, data.split, data.n_run, data.min_len, train.seed): UserError on
  construction for a value out of range."""
  val_fraction: float = 0.2  # finite, 0 <= val_fraction < 1 (0: no validation split)
  mode: str = "auto"  # auto | records | blocks
  n_run: int = 10  # split records at runs of at least this many N (0: never split at N runs)
  min_len: int = 64  # drop segments shorter than this (>= 1)
  seed: int = 0  # >= 0

  def __post_init__(self):
    def refuse(what: str, flags: str, value, allowed: str):
      raise UserError(f"{what} {value} ({flags}): must be {allowed}; pass a value in that range")

    v = self.val_fraction
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v < 1:
      refuse("validation fraction", "prepare --val-fraction, train --config.data.val_fraction", v,
             "a finite number with 0 <= fraction < 1 (e.g. 0.1; 0: no validation split)")
    if self.mode not in ("auto", "records", "blocks"):
      refuse("split mode", "prepare --split, train --config.data.split", repr(self.mode), "auto, records or blocks")
    if not _is_int(self.n_run) or self.n_run < 0:
      refuse("N-run length", "prepare --n-run, train --config.data.n_run", self.n_run,
             "an integer >= 0 (0: records are not split at runs of N)")
    if not _is_int(self.min_len) or self.min_len < 1:
      refuse("minimum segment length", "prepare --min-len, train --config.data.min_len", self.min_len,
             "an integer >= 1")
    if not _is_int(self.seed) or self.seed < 0:
      refuse("split seed", "prepare --seed, train --config.train.seed", self.seed, "an integer >= 0")


def _is_int(v) -> bool:
  return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def split_segments(rec: Record, n_run: int, min_len: int) -> list[tuple[int, int]]:
  """[start, end) pieces of `rec` between runs of >= n_run N's, keeping those of >= min_len bases."""
  is_n = rec.ids == tokens.N
  if n_run <= 0 or not is_n.any():
    return [(0, len(rec.ids))] if len(rec.ids) >= min_len else []
  # Boundaries of N runs.
  padded = np.concatenate([[False], is_n, [False]])
  edges = np.flatnonzero(padded[1:] != padded[:-1])
  starts, ends = edges[0::2], edges[1::2]
  long_runs = [(s, e) for s, e in zip(starts, ends) if e - s >= n_run]
  pieces, cur = [], 0
  for s, e in long_runs:
    pieces.append((cur, int(s)))
    cur = int(e)
  pieces.append((cur, len(rec.ids)))
  return [(s, e) for s, e in pieces if e - s >= min_len]


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
            force: bool = False, extra: dict | None = None, require_val: bool = False) -> Corpus:
  """Write a corpus atomically (into a temporary sibling, then renamed). Returns the loaded corpus.

  An existing corpus made from the same content and settings is reused; a different one is refused unless
  `force`. A split with no training segment is refused (UserError, nothing written), and so is one with no
  validation segment when `require_val` (training validates on it).
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
  index_path = os.path.join(out_dir, INDEX)
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
  where = ", ".join(sources) or (f"synthetic:{extra['synthetic']}" if (extra or {}).get("synthetic") else "the input")
  if not segments:
    raise UserError(f"no segment of at least {settings.min_len} bases between N-runs in {where}; lower the minimum "
                    "length (prepare --min-len, train --config.data.min_len) or check the input")
  if not any(split == "train" for *_, split in segments):
    raise UserError(f"{where}: the training split would be empty (validation fraction {settings.val_fraction}, "
                    f"split by {mode}, segments of at least {settings.min_len} bases); lower the validation fraction "
                    "(prepare --val-fraction, train --config.data.val_fraction) or the minimum length, or add records")
  if require_val and not any(split == "val" for *_, split in segments):
    raise UserError(f"{where}: the validation split would be empty (validation fraction {settings.val_fraction}, "
                    f"split by {mode}, segments of at least {settings.min_len} bases); raise "
                    "--config.data.val_fraction above 0 or lower --config.data.min_len")
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
    with open(os.path.join(tmp, INDEX), "w") as f:
      json.dump(index, f, indent=1)
    if os.path.exists(out_dir):
      shutil.rmtree(out_dir) if os.path.isdir(out_dir) else os.remove(out_dir)
    os.replace(tmp, out_dir)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return Corpus(out_dir)


INDEX = "index.json"


def is_corpus(path: str) -> bool:
  """Whether `path` is a prepared corpus directory (holds index.json)."""
  return os.path.isfile(os.path.join(path, INDEX))


class Corpus:
  """A prepared corpus opened read-only (tokens memory-mapped)."""

  def __init__(self, path: str):
    index_path = os.path.join(path, INDEX)
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
    """The segments (index.json entries) of split `name` (train | val)."""
    return [s for s in self.segments if s["split"] == name]

  @property
  def synthetic(self) -> str | None:
    """The synthetic generator's name for a synthetic corpus, else None."""
    return self.index.get("synthetic")

  def base_counts(self, split: str = "train") -> np.ndarray:
    """Counts of A, C, G, T in a split (for the majority-base baseline)."""
    counts = np.zeros(tokens.VOCAB_SIZE, dtype=np.int64)
    for s in self.split(split):
      counts += np.bincount(self.tokens[s["offset"]:s["offset"] + s["length"]], minlength=tokens.VOCAB_SIZE)
    return counts[tokens.A:tokens.T + 1]
