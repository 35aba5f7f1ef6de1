"""Writing corpora: FASTA/GenBank files (streamed) or records in memory -> a corpus directory (`dnajax.data.corpus`).

Records are read in pieces (`readers.stream_file`), cut at runs of N into segments, and written back to back
through a buffered writer into one part per input (parts of several files in parallel processes); the split is
assigned once every record's length is known, and the parts' kept bytes are joined into tokens.u8/softmask.u8.
Memory stays bounded by a piece whatever the input's size.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from dnajax.data import readers, tokens
from dnajax.data.corpus import FORMAT_VERSION, INDEX, Corpus, SplitSettings, assign_split, sha256_file
from dnajax.data.readers import Record
from dnajax.errors import UserError

PARALLEL_MIN_BYTES = 64 << 20  # input files smaller than this in all are prepared in one process


class _Output:
  """tokens.u8 and softmask.u8 being written: appended through an in-memory buffer of up to `FLUSH` bytes, and cut
  back (`truncate`) when a piece turns out to be dropped. Without paths it only counts (`offset`)."""

  FLUSH = 1 << 23

  def __init__(self, tokens_path: str | None = None, softmask_path: str | None = None):
    self.files = [open(p, "wb") for p in (tokens_path, softmask_path)] if tokens_path else None
    self.buffers = [bytearray(), bytearray()]
    self.flushed = 0  # bytes already in the files
    self.offset = 0  # bytes written so far (files and buffers)

  def write(self, ids: np.ndarray, soft: np.ndarray) -> None:
    self.offset += len(ids)
    if self.files is None:
      return
    self.buffers[0] += ids.tobytes()
    self.buffers[1] += soft.view(np.uint8).tobytes()
    if len(self.buffers[0]) >= self.FLUSH:
      self.flush()

  def truncate(self, offset: int) -> None:
    self.offset = offset
    if self.files is None:
      return
    if offset >= self.flushed:
      for b in self.buffers:
        del b[offset - self.flushed:]
      return
    for f, b in zip(self.files, self.buffers):
      b.clear()
      f.flush()
      f.truncate(offset)
      f.seek(offset)
    self.flushed = offset

  def flush(self) -> None:
    for f, b in zip(self.files or (), self.buffers):
      f.write(b)
      b.clear()
    self.flushed = self.offset

  def close(self) -> None:
    self.flush()
    for f in self.files or ():
      f.close()


class _Cutter:
  """Cuts records, fed piece by piece, at runs of at least `n_run` N (never when 0) into segments of at least
  `min_len` bases, written to `out` back to back; what is dropped (long N runs, short segments) is never kept.
  `end()` gives a record's kept segments as [(start, end, offset in out)]."""

  def __init__(self, out: _Output, n_run: int, min_len: int):
    self.out, self.n_run, self.min_len = out, n_run, min_len

  def begin(self) -> None:
    self.pos, self.pieces = 0, []  # pos: record position of the next base
    self.in_gap, self.trail = False, 0  # inside a long N run; N's ending what is written of the current segment
    self.seg_start, self.seg_offset = 0, self.out.offset

  def _open(self, at: int) -> None:
    self.in_gap, self.trail, self.seg_start, self.seg_offset = False, 0, at, self.out.offset

  def _close(self, end: int) -> None:
    if end - self.seg_start >= self.min_len:
      self.pieces.append((self.seg_start, end, self.seg_offset))
    else:
      self.out.truncate(self.seg_offset)
    self.in_gap, self.trail = True, 0

  def feed(self, ids: np.ndarray, soft: np.ndarray) -> None:
    n, pos = len(ids), self.pos
    self.pos += n
    is_n = ids == tokens.N if self.n_run > 0 else None
    if is_n is None or not is_n.any():
      if self.in_gap and n:
        self._open(pos)
      self.trail = 0
      self.out.write(ids, soft)
      return
    edges = np.flatnonzero(np.diff(is_n.view(np.int8), prepend=0, append=0))
    starts, ends = edges[0::2], edges[1::2]
    lengths = ends - starts + np.where(starts == 0, self.trail, 0)
    long_runs = (lengths >= self.n_run) | ((starts == 0) & self.in_gap)
    if self.in_gap and not is_n[0]:
      self._open(pos)
    cursor = 0
    for s, e in zip(starts[long_runs].tolist(), ends[long_runs].tolist()):
      if not self.in_gap:
        if s == 0 and self.trail:  # the run began in an earlier piece: its N's written so far go
          self.out.truncate(self.out.offset - self.trail)
          self._close(pos - self.trail)
        else:
          self.out.write(ids[cursor:s], soft[cursor:s])
          self._close(pos + s)
      cursor = e
      if e < n:
        self._open(pos + e)
    if not self.in_gap:
      self.out.write(ids[cursor:], soft[cursor:])
      if is_n[-1]:  # a run of N not (yet) long enough ends the piece
        s = int(starts[-1])
        self.trail = (self.trail + n) if s == 0 and cursor == 0 else n - max(s, cursor)
      else:
        self.trail = 0

  def end(self) -> list[tuple[int, int, int]]:
    if not self.in_gap:
      self._close(self.pos)
    return self.pieces


def split_segments(rec: Record, n_run: int, min_len: int) -> list[tuple[int, int]]:
  """[start, end) pieces of `rec` between runs of >= n_run N's, keeping those of >= min_len bases."""
  cutter = _Cutter(_Output(), n_run, min_len)
  cutter.begin()
  cutter.feed(rec.ids, rec.soft_masked)
  return [(a, b) for a, b, _ in cutter.end()]


@dataclasses.dataclass
class _Part:
  """What staging one input wrote: its tokens/softmask files and, per record, (name, source, length in bases,
  kept segments [(start, end, offset in the part)])."""
  tokens_path: str
  softmask_path: str
  records: list[tuple[str, str, int, list[tuple[int, int, int]]]]


def _stage(pieces, tokens_path: str, softmask_path: str, n_run: int, min_len: int, progress=None) -> _Part:
  """Writes the kept segments of a stream of (record number, `Record` piece) into a part; `progress(bases)` is
  called after each piece."""
  out = _Output(tokens_path, softmask_path)
  cutter, records, current, name, source = _Cutter(out, n_run, min_len), [], None, None, None
  try:
    for k, piece in pieces:
      if k != current:
        if current is not None:
          records.append((name, source, cutter.pos, cutter.end()))
        cutter.begin()
        current, name, source = k, piece.name, piece.source
      cutter.feed(piece.ids, piece.soft_masked)
      if progress:
        progress(len(piece.ids))
    if current is not None:
      records.append((name, source, cutter.pos, cutter.end()))
  finally:
    out.close()
  return _Part(tokens_path, softmask_path, records)


_worker_progress = None  # the shared counter of bases read, in a worker process


def _init_worker(counter) -> None:
  global _worker_progress
  _worker_progress = counter


def _count(n: int) -> None:
  with _worker_progress.get_lock():
    _worker_progress.value += n


def _stage_file(path: str, fmt: str | None, tokens_path: str, softmask_path: str, n_run: int,
                min_len: int) -> _Part:
  """`_stage` of one file (run in a worker process; bases read go to the shared counter)."""
  return _stage(readers.stream_file(path, fmt), tokens_path, softmask_path, n_run, min_len,
                _count if _worker_progress is not None else None)


def _fingerprint(source_info: list[dict], settings: SplitSettings, extra: dict | None, content: str | None) -> str:
  return hashlib.sha256(json.dumps(
      {"sources": [x["sha256"] for x in source_info], "settings": dataclasses.asdict(settings),
       "extra": extra or {}, "content": content}, sort_keys=True).encode()).hexdigest()


def _reuse(out_dir: str, fingerprint: str, force: bool) -> Corpus | None:
  """The corpus at `out_dir` when it has `fingerprint`; None when `out_dir` is free (or `force`); else UserError."""
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
  return None


def _source_info(paths: Sequence[str], workers: int = 1) -> list[dict]:
  if workers > 1 and len(paths) > 1:
    with _pool(workers) as pool:
      digests = list(pool.map(sha256_file, paths))
  else:
    digests = [sha256_file(p) for p in paths]
  return [{"path": os.path.abspath(p), "sha256": d, "bytes": os.path.getsize(p)} for p, d in zip(paths, digests)]


def _pool(workers: int, counter=None):
  return concurrent.futures.ProcessPoolExecutor(
      workers, mp_context=multiprocessing.get_context("spawn"),
      initializer=_init_worker if counter is not None else None, initargs=(counter,) if counter is not None else ())


def prepare(records: Sequence[Record], out_dir: str, settings: SplitSettings, sources: Sequence[str] = (),
            force: bool = False, extra: dict | None = None, require_val: bool = False) -> Corpus:
  """Write a corpus of records in memory (synthetic data, coding sequences cut from annotations) atomically (into
  a temporary sibling, then renamed). Returns the loaded corpus. For sequence files use `prepare_files`, which
  streams them.

  An existing corpus made from the same content and settings is reused; a different one is refused unless
  `force`. A split with no training segment is refused (UserError, nothing written), and so is one with no
  validation segment when `require_val` (training validates on it).
  """
  source_info = _source_info(sources)
  content = hashlib.sha256()
  for r in records:
    content.update(r.name.encode() + b"\0")
    content.update(np.ascontiguousarray(r.ids))  # hashed in place: no copy of a long record
    content.update(np.packbits(r.soft_masked).tobytes())
  fingerprint = _fingerprint(source_info, settings, extra, content.hexdigest())
  existing = _reuse(out_dir, fingerprint, force)
  if existing is not None:
    return existing
  where = ", ".join(sources) or (f"synthetic:{extra['synthetic']}" if (extra or {}).get("synthetic") else "the input")

  def stage(tmp: str) -> list[_Part]:
    return [_stage(((k, r) for k, r in enumerate(records)), os.path.join(tmp, "part0.tokens"),
                   os.path.join(tmp, "part0.softmask"), settings.n_run, settings.min_len)]
  return _write(stage, out_dir, settings, source_info, fingerprint, extra, require_val, where)


def prepare_files(paths: Sequence[str], out_dir: str, settings: SplitSettings, fmt: str | None = None,
                  force: bool = False, extra: dict | None = None, require_val: bool = False,
                  workers: int = 1, progress: bool = False) -> Corpus:
  """Write the corpus of FASTA/GenBank files `paths`, streaming: each file is read, checked and written in pieces
  of about `text.TEXT_BLOCK` bases (also within one long record), so peak memory does not grow with the input;
  several files are staged in `workers` parallel processes (at most one per file, and one for inputs under
  `PARALLEL_MIN_BYTES` in all; spawned: a script that
  passes workers > 1 needs the `if __name__ == "__main__":` guard of `multiprocessing`), then
  joined. The same bytes and index as `prepare` of the same records. `progress`: a bar with bases/s on stderr.

  An existing corpus of the same files (by SHA-256), format and settings is reused without reading the files
  again; a different one is refused unless `force`. Raises UserError as `prepare` and the readers do (nothing
  written)."""
  small = sum(os.path.getsize(p) for p in paths) < PARALLEL_MIN_BYTES  # starting processes would cost more
  workers = 1 if small else max(1, min(workers, len(paths)))
  source_info = _source_info(paths, workers)
  extra = {**(extra or {}), **({"format": fmt} if fmt else {})}
  fingerprint = _fingerprint(source_info, settings, extra, None)
  existing = _reuse(out_dir, fingerprint, force)
  if existing is not None:
    return existing
  total = sum(x["bytes"] for x in source_info)
  bar = tqdm(total=total, desc="prepare", unit="b", unit_scale=True, leave=False,
             disable=not progress or total < PARALLEL_MIN_BYTES,  # (no bar for a few seconds' work)
             bar_format="{desc}: {n_fmt}bases [{elapsed}, {rate_fmt}]")

  def stage(tmp: str) -> list[_Part]:
    names = [(os.path.join(tmp, f"part{i}.tokens"), os.path.join(tmp, f"part{i}.softmask")) for i in range(len(paths))]
    if workers == 1:
      return [_stage(readers.stream_file(p, fmt), *names[i], settings.n_run, settings.min_len, bar.update)
              for i, p in enumerate(paths)]
    counter = multiprocessing.get_context("spawn").Value("q", 0)
    with _pool(workers, counter) as pool:
      futures = [pool.submit(_stage_file, p, fmt, *names[i], settings.n_run, settings.min_len)
                 for i, p in enumerate(paths)]
      while not all(f.done() for f in futures):
        concurrent.futures.wait(futures, timeout=0.5, return_when=concurrent.futures.FIRST_EXCEPTION)
        bar.update(counter.value - bar.n)
        if any(f.done() and f.exception() for f in futures):
          break
      return [f.result() for f in futures]  # (the first error, as the user would see it)
  try:
    return _write(stage, out_dir, settings, source_info, fingerprint, extra or None, require_val,
                  ", ".join(paths))
  finally:
    bar.close()


def _write(stage, out_dir: str, settings: SplitSettings, source_info: list[dict], fingerprint: str,
           extra: dict | None, require_val: bool, where: str) -> Corpus:
  """Stage the input into a temporary sibling of `out_dir` (`stage(tmp)` -> parts), split it, join the parts'
  kept bytes into tokens.u8/softmask.u8, write index.json and rename into place. Nothing is left on an error."""
  parent = os.path.dirname(os.path.abspath(out_dir)) or "."
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=".corpus-", dir=parent)
  try:
    parts = stage(tmp)
    records = [(i, *rec) for i, part in enumerate(parts) for rec in part.records]
    segments, mode = assign_split([rec[4] for rec in records], settings)
    if not segments:
      raise UserError(f"no segment of at least {settings.min_len} bases between N-runs in {where}; lower the minimum "
                      "length (prepare --min-len, train --config.data.min_len) or check the input")
    if not any(seg[4] == "train" for seg in segments):
      raise UserError(f"{where}: the training split would be empty (validation fraction {settings.val_fraction}, "
                      f"split by {mode}, segments of at least {settings.min_len} bases); lower the validation "
                      "fraction (prepare --val-fraction, train --config.data.val_fraction) or the minimum length, "
                      "or add records")
    if require_val and not any(seg[4] == "val" for seg in segments):
      raise UserError(f"{where}: the validation split would be empty (validation fraction {settings.val_fraction}, "
                      f"split by {mode}, segments of at least {settings.min_len} bases); raise "
                      "--config.data.val_fraction above 0 or lower --config.data.min_len")
    index_segments, offset, copies = [], 0, []
    for r, a, b, part_offset, split in segments:
      part, name, source = records[r][:3]
      index_segments.append({"name": name, "record": r, "start": a, "offset": offset, "length": b - a,
                             "split": split, "source": source})
      if copies and copies[-1][0] == part and copies[-1][1] + copies[-1][2] == part_offset:
        copies[-1][2] += b - a  # adjacent in the same part: one copy
      else:
        copies.append([part, part_offset, b - a])
      offset += b - a
    _join(parts, copies, tmp)
    for info in source_info:  # what each source file gave
      mine = [seg for seg in index_segments if os.path.abspath(seg["source"]) == info["path"]]
      info["records"] = sum(1 for rec in records if os.path.abspath(rec[2]) == info["path"])
      for split in ("train", "val"):
        info[f"{split}_bases"] = sum(seg["length"] for seg in mine if seg["split"] == split)
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


def _join(parts: list[_Part], copies: list[list[int]], tmp: str) -> None:
  """tokens.u8/softmask.u8 in `tmp` from the parts' byte ranges `copies` [[part, offset, length]], in order: the
  part's files renamed when one part is taken whole, else copied range by range in the kernel."""
  targets = (os.path.join(tmp, "tokens.u8"), os.path.join(tmp, "softmask.u8"))
  whole = (len(parts) == 1 and len(copies) <= 1 and
           (not copies or (copies[0][1] == 0 and copies[0][2] == os.path.getsize(parts[0].tokens_path))))
  if whole:
    for src, dst in zip((parts[0].tokens_path, parts[0].softmask_path), targets):
      os.replace(src, dst)
    return
  for k, dst in enumerate(targets):
    with open(dst, "wb") as out:
      opened: dict[int, int] = {}
      try:
        for part, offset, length in copies:
          if part not in opened:
            opened[part] = os.open((parts[part].tokens_path, parts[part].softmask_path)[k], os.O_RDONLY)
          while length:
            n = os.copy_file_range(opened[part], out.fileno(), length, offset)
            if n <= 0:
              raise OSError(f"copying corpus bytes stopped at offset {offset}")
            offset, length = offset + n, length - n
      finally:
        for fd in opened.values():
          os.close(fd)
  for part in parts:
    os.remove(part.tokens_path), os.remove(part.softmask_path)
