"""Staging a corpus: records, fed piece by piece, cut at runs of N into segments written back to back into a part
(tokens and soft-mask files) through a buffered writer; parts of several files in parallel processes. What
`dnajax.data.preparation` joins into a corpus once every record's length is known.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
from collections.abc import Sequence

import numpy as np

from dnajax.data import readers, tokens
from dnajax.data.readers import Record


class Output:
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


class Cutter:
  """Cuts records, fed piece by piece, at runs of at least `n_run` N (never when 0) into segments of at least
  `min_len` bases, written to `out` back to back; what is dropped (long N runs, short segments) is never kept.
  `end()` gives a record's kept segments as [(start, end, offset in out)]."""

  def __init__(self, out: Output, n_run: int, min_len: int):
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
  cutter = Cutter(Output(), n_run, min_len)
  cutter.begin()
  cutter.feed(rec.ids, rec.soft_masked)
  return [(a, b) for a, b, _ in cutter.end()]


@dataclasses.dataclass
class Part:
  """What staging one input wrote: its tokens/softmask files and, per record, (name, source, length in bases,
  kept segments [(start, end, offset in the part)])."""
  tokens_path: str
  softmask_path: str
  records: list[tuple[str, str, int, list[tuple[int, int, int]]]]


def stage(pieces, tokens_path: str, softmask_path: str, n_run: int, min_len: int, progress=None) -> Part:
  """Writes the kept segments of a stream of (record number, `Record` piece) into a part; `progress(bases)` is
  called after each piece."""
  out = Output(tokens_path, softmask_path)
  cutter, records, current, name, source = Cutter(out, n_run, min_len), [], None, None, None
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
  return Part(tokens_path, softmask_path, records)


_worker_progress = None  # the shared counter of bases read, in a worker process


def _init_worker(counter) -> None:
  global _worker_progress
  _worker_progress = counter


def _count(n: int) -> None:
  with _worker_progress.get_lock():
    _worker_progress.value += n


def _stage_file(path: str, fmt: str | None, tokens_path: str, softmask_path: str, n_run: int,
                min_len: int) -> Part:
  """`stage` of one file (run in a worker process; bases read go to the shared counter)."""
  return stage(readers.stream_file(path, fmt), tokens_path, softmask_path, n_run, min_len,
                _count if _worker_progress is not None else None)


def pool(workers: int, counter=None):
  """A pool of `workers` spawned processes (with the shared progress counter `counter`, if given)."""
  return concurrent.futures.ProcessPoolExecutor(
      workers, mp_context=multiprocessing.get_context("spawn"),
      initializer=_init_worker if counter is not None else None, initargs=(counter,) if counter is not None else ())


def stage_files(paths: Sequence[str], fmt: str | None, tmp: str, n_run: int, min_len: int, workers: int,
                bar) -> list[Part]:
  """`stage` of each FASTA/GenBank file of `paths` into its own part in `tmp`: in this process, or in `workers`
  spawned processes (the tqdm `bar` advances with the bases read). Raises the first file's UserError."""
  names = [(os.path.join(tmp, f"part{i}.tokens"), os.path.join(tmp, f"part{i}.softmask")) for i in range(len(paths))]
  if workers == 1:
    return [stage(readers.stream_file(p, fmt), *names[i], n_run, min_len, bar.update) for i, p in enumerate(paths)]
  counter = multiprocessing.get_context("spawn").Value("q", 0)
  with pool(workers, counter) as workers_pool:
    futures = [workers_pool.submit(_stage_file, p, fmt, *names[i], n_run, min_len) for i, p in enumerate(paths)]
    while not all(f.done() for f in futures):
      concurrent.futures.wait(futures, timeout=0.5, return_when=concurrent.futures.FIRST_EXCEPTION)
      bar.update(counter.value - bar.n)
      if any(f.done() and f.exception() for f in futures):
        break
    return [f.result() for f in futures]  # (the first error, as the user would see it)
