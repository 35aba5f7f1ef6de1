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

import numpy as np

from dnajax.data import readers, tokens
from dnajax.errors import UserError

FORMAT_VERSION = 1
MIN_RECORDS_FOR_RECORD_SPLIT = 5
# Above this many bases, what is fitted on a split (the k-mer and majority-base baselines) sees a seeded sample of
# stretches of SAMPLE_PIECE bases (`Corpus.sample`): start-up time and memory stay bounded at genome scale.
SAMPLE_BASES = 1 << 24
SAMPLE_PIECE = 1 << 20


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


def assign_split(pieces: list[list[tuple[int, int, int]]], s: SplitSettings):
  """Which kept pieces are training and which validation: pieces [(start, end, offset)] per record -> (segments
  [(record index, start, end, offset, split)] in record order, the split mode used: records | blocks). Records
  mode holds out whole records in a seeded order until `s.val_fraction` of the bases; blocks mode the last
  `val_fraction` of every piece (a part shorter than `s.min_len` is dropped). Raises UserError when records
  mode leaves no record on one side."""
  n_kept = sum(1 for p in pieces if p)
  mode = s.mode
  if mode == "auto":
    mode = "records" if n_kept >= MIN_RECORDS_FOR_RECORD_SPLIT else "blocks"
  if s.val_fraction <= 0:
    return [(r, a, b, o, "train") for r, p in enumerate(pieces) for a, b, o in p], mode
  if mode == "records":
    lengths = np.array([sum(b - a for a, b, _ in p) for p in pieces], dtype=np.float64)
    order = np.random.default_rng(s.seed).permutation(len(pieces))
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
    return [(r, a, b, o, "val" if r in val else "train") for r, p in enumerate(pieces) for a, b, o in p], mode
  out = []
  for r, p in enumerate(pieces):
    for a, b, o in p:
      cut = b - int(round((b - a) * s.val_fraction))
      if cut - a >= s.min_len:
        out.append((r, a, cut, o, "train"))
      if b - cut >= s.min_len:
        out.append((r, cut, b, o + cut - a, "val"))
  return out, mode


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

  def sources(self) -> list[str]:
    """The corpus's sources, in order: what mixtures weight (`data.weights`) and validation reports one by one.
    A source is one input entry: a file, or a directory or glob standing for its files (the `group` of
    index.json's sources; a corpus prepared before groups: each file). A corpus of records without files
    (synthetic data) has one source, its generator."""
    names = list(dict.fromkeys(s.get("group") or s["path"] for s in self.index["sources"]))
    return names or [f"synthetic:{self.synthetic}" if self.synthetic else "records"]

  def source_labels(self) -> list[str]:
    """Names of `sources()` in metrics and reports (`val/sources/NAME/...`): the basename of each entry (a glob's
    last part, e.g. `chr*.fa`), or where basenames repeat the entry as given with '/' written '_'; never a '/'."""
    return readers.short_names(self.sources(), slash="_")

  def segment_sources(self, split: str) -> np.ndarray:
    """int64[segments of `split`]: each segment's source, an index into `sources()`."""
    names = self.sources()
    by_path = {s["path"]: names.index(s.get("group") or s["path"]) for s in self.index["sources"]}
    return np.array([by_path.get(os.path.abspath(s["source"]), 0) for s in self.split(split)], np.int64)

  def source_weights(self) -> list[float] | None:
    """The sampling weight of each of `sources()` given at `prepare --weights` (None: none given)."""
    by_group = {s.get("group") or s["path"]: s.get("weight") for s in self.index["sources"]}
    weights = [by_group.get(name) for name in self.sources()]
    return None if any(w is None for w in weights) else weights

  def source_warnings(self, split_option: str) -> list[str]:
    """One line per problem of a mixture's sources (none for one source): sources that gave no segment, and
    sources without validation bases (`split_option`: how the caller's user asks for a block split, e.g.
    `--split blocks` or `--config.data.split=blocks`)."""
    if len(self.sources()) < 2:
      return []
    rows, out = self.source_table(), []
    empty = [r["source"] for r in rows if not r["train_bases"] + r["val_bases"]]
    if empty:
      out.append(f"{self.path}: {', '.join(empty)} gave no segment (all N, or records shorter than the minimum "
                 "length); training draws nothing from them: give them weight 0 or leave them out")
    missing = [r["source"] for r in rows if not r["val_bases"] and r["train_bases"]]
    if missing and self.split("val"):
      why = (f"whole records are held out across all sources: use {split_option} to validate every source"
             if self.index["split_mode"] == "records" else "its records are too short for a held-out block of "
             "the minimum length")
      out.append(f"{self.path}: no validation bases from {', '.join(missing)}; validation will not report them "
                 f"({why})")
    return out

  def source_table(self) -> list[dict]:
    """Per source (`source_labels`): files, records, train_bases, val_bases and weight (None: not given)."""
    names, labels = self.sources(), self.source_labels()
    rows = [{"source": label, "files": 0, "records": 0, "train_bases": 0, "val_bases": 0, "weight": None}
            for label in labels]
    for s in self.index["sources"]:
      row = rows[names.index(s.get("group") or s["path"])]
      row["files"] += 1
      row["weight"] = s.get("weight")
      for key in ("records", "train_bases", "val_bases"):
        row[key] += s.get(key, 0)
    return rows

  def sample(self, split: str = "train", max_bases: int = SAMPLE_BASES, seed: int = 0) -> list[np.ndarray]:
    """Token arrays (uint8, views of the memory map) standing for a split: its segments whole when they hold at most
    `max_bases` bases in all; else a seeded sample of `max_bases // SAMPLE_PIECE` stretches of `SAMPLE_PIECE`
    bases (a shorter segment whole), drawn uniformly over the split's bases, in corpus order. What the baselines
    fitted on training data see, so that their cost stays bounded whatever the corpus's size."""
    segs = self.split(split)
    lengths = np.array([s["length"] for s in segs], np.int64)
    if lengths.sum() <= max_bases:
      return [np.asarray(self.tokens[s["offset"]:s["offset"] + s["length"]]) for s in segs]
    ends = np.cumsum(lengths)
    at = np.sort(np.random.default_rng([seed, 1871]).integers(0, ends[-1], max(1, max_bases // SAMPLE_PIECE)))
    seg = np.searchsorted(ends, at, side="right")
    start = np.clip(at - (ends[seg] - lengths[seg]), 0, np.maximum(lengths[seg] - SAMPLE_PIECE, 0))
    return [np.asarray(self.tokens[segs[k]["offset"] + a:segs[k]["offset"] + min(a + SAMPLE_PIECE, lengths[k])])
            for k, a in zip(seg.tolist(), start.tolist())]

  def base_counts(self, split: str = "train", seed: int = 0) -> np.ndarray:
    """Counts of A, C, G, T in a split (for the majority-base baseline): int64[4], over `sample(split)`."""
    counts = np.zeros(tokens.VOCAB_SIZE, dtype=np.int64)
    for ids in self.sample(split, seed=seed):
      for a in range(0, len(ids), SAMPLE_PIECE):  # (bincount makes an intp copy: a bounded one)
        counts += np.bincount(ids[a:a + SAMPLE_PIECE], minlength=tokens.VOCAB_SIZE)
    return counts[tokens.A:tokens.T + 1]
