"""Writing corpora (`dnajax.data.corpus`): FASTA/GenBank files, streamed, or records in memory -> a corpus directory;
and adding files to one (`append_files`).

The input is staged part by part (`dnajax.data.staging`: records read in pieces, cut at runs of N, written back to
back), the split assigned once every record's length is known, and the parts' kept bytes joined into
tokens.u8/softmask.u8. Memory stays bounded by a piece whatever the input's size.
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
from tqdm import tqdm

from dnajax.data import staging, tokens
from dnajax.data.corpus import FORMAT_VERSION, INDEX, Corpus, SplitSettings, assign_split, sha256_file
from dnajax.data.readers import Record
from dnajax.errors import UserError

PARALLEL_MIN_BYTES = 64 << 20  # input files smaller than this in all are prepared in one process


def _fingerprint(source_info: list[dict], settings: SplitSettings, extra: dict | None, content: str | None) -> str:
  return hashlib.sha256(json.dumps(
      {"sources": [x["sha256"] for x in source_info], "groups": [x.get("group") for x in source_info],
       "settings": dataclasses.asdict(settings), "extra": extra or {}, "content": content},
      sort_keys=True).encode()).hexdigest()


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


def _source_info(paths: Sequence[str], groups: Sequence[str] | None = None, workers: int = 1,
                 weights: dict | None = None) -> list[dict]:
  """Per input file: path (absolute), sha256, bytes, group (the input entry it came from, default itself) and,
  where `weights` {group: weight} are given, the group's sampling weight."""
  if workers > 1 and len(paths) > 1:
    with staging.pool(workers) as pool:
      digests = list(pool.map(sha256_file, paths))
  else:
    digests = [sha256_file(p) for p in paths]
  groups = list(groups) if groups is not None else list(paths)
  seen: dict[str, str] = {}
  for p, d in zip(paths, digests):
    if d in seen:
      raise UserError(f"{p}: the same content as {seen[d]} (given twice, or within a directory or glob also given); "
                      "give each file once")
    seen[d] = p
  if weights is not None and (any(not (w >= 0 and np.isfinite(w)) for w in weights.values())
                              or sum(weights.values()) <= 0):
    raise UserError(f"--weights {' '.join(map(str, weights.values()))}: each must be a finite number >= 0, not all 0")
  return [{"path": os.path.abspath(p), "sha256": d, "bytes": os.path.getsize(p), "group": g,
           **({"weight": weights[g]} if weights is not None else {})} for p, d, g in zip(paths, digests, groups)]


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

  def stage(tmp: str) -> list[staging.Part]:
    return [staging.stage(((k, r) for k, r in enumerate(records)), os.path.join(tmp, "part0.tokens"),
                          os.path.join(tmp, "part0.softmask"), settings.n_run, settings.min_len)]
  return _write(stage, out_dir, settings, source_info, fingerprint, extra, require_val, where)


def _workers_and_bar(paths: Sequence[str], workers: int, progress: bool):
  small = sum(os.path.getsize(p) for p in paths) < PARALLEL_MIN_BYTES  # processes or a bar would cost more
  bar = tqdm(desc="prepare", unit="b", unit_scale=True, leave=False, disable=not progress or small,
             bar_format="{desc}: {n_fmt}bases [{elapsed}, {rate_fmt}]")
  return (1 if small else max(1, min(workers, len(paths)))), bar


def prepare_files(paths: Sequence[str], out_dir: str, settings: SplitSettings, fmt: str | None = None,
                  force: bool = False, extra: dict | None = None, require_val: bool = False,
                  workers: int = 1, progress: bool = False, groups: Sequence[str] | None = None,
                  weights: dict | None = None) -> Corpus:
  """Write the corpus of FASTA/GenBank files `paths`, streaming: each file is read, checked and written in pieces
  of about `text.TEXT_BLOCK` bases (also within one long record), so peak memory does not grow with the input.
  Several files are staged in `workers` parallel processes (at most one per file, and one for inputs under
  `PARALLEL_MIN_BYTES` in all; spawned: a script that passes workers > 1 needs the `if __name__ == "__main__":`
  guard of `multiprocessing`), then joined: the same bytes and index whatever the number of workers. `groups`:
  per file, the input entry it came from (a directory or glob stands for several files: one source of a
  mixture, `data.weights`); default each file its own; `weights` {group: sampling weight} (training's default
  mixture, stored in the index). `progress`: a bar with bases/s on stderr.

  An existing corpus of the same files (by SHA-256), groups, format and settings is reused without reading the
  files again; a different one is refused unless `force`. Raises UserError as `prepare` and the readers do
  (nothing written)."""
  workers, bar = _workers_and_bar(paths, workers, progress)
  source_info = _source_info(paths, groups, workers, weights)
  extra = {**(extra or {}), **({"format": fmt} if fmt else {})}
  fingerprint = _fingerprint(source_info, settings, extra, None)
  existing = _reuse(out_dir, fingerprint, force)
  if existing is not None:
    bar.close()
    return existing
  try:
    return _write(lambda tmp: staging.stage_files(paths, fmt, tmp, settings.n_run, settings.min_len, workers, bar),
                  out_dir, settings, source_info, fingerprint, extra or None, require_val, ", ".join(paths))
  finally:
    bar.close()


def append_files(paths: Sequence[str], out_dir: str, fmt: str | None = None, workers: int = 1,
                 progress: bool = False, groups: Sequence[str] | None = None, weights: dict | None = None,
                 given: dict | None = None) -> Corpus:
  """Add FASTA/GenBank files to the corpus at `out_dir` (`dnajax prepare --append`). They are split by the corpus's
  own settings as if prepared alone (`assign_split`: whole records with 5 or more of them, else a block of each),
  and their segments follow what is there, whose bytes, offsets and split stay exactly as they were. Streaming,
  workers, `groups` and `weights` as `prepare_files` (weights: for all sources or none, old and new). `given`:
  split options the user passed ({val_fraction | split | n_run | min_len | seed: value}), refused where they
  differ from the corpus's settings.

  Raises UserError (nothing changed) for a directory that is not a corpus, a synthetic or coding-sequence corpus,
  a file already in it (the same SHA-256) and what `prepare_files` refuses. The index is replaced last, atomically;
  bytes appended before a failure are cut off again (a corpus never reads past its `total_bases`)."""
  corpus = Corpus(out_dir)
  index = corpus.index
  if index.get("synthetic") or index.get("codon_aligned"):
    raise UserError(f"{out_dir}: a {'synthetic' if index.get('synthetic') else 'coding-sequence'} corpus cannot be "
                    "appended to; prepare a new corpus from all the files")
  settings = SplitSettings(**index["settings"])
  differ = {k: v for k, v in (given or {}).items() if getattr(settings, {"split": "mode"}.get(k, k)) != v}
  if differ:
    k, v = next(iter(differ.items()))
    raise UserError(f"--{k.replace('_', '-')} {v}: {out_dir} was prepared with "
                    f"{getattr(settings, {'split': 'mode'}.get(k, k))}, and --append "
                    "splits what it adds by the corpus's own settings; leave the option out")
  if (weights is None) != (corpus.source_weights() is None):
    raise UserError(f"--weights: {out_dir} has {'no ' if corpus.source_weights() is None else ''}weights for its "
                    f"sources; {'leave --weights out' if corpus.source_weights() is None else 'give --weights'} "
                    "for what --append adds (or prepare a new corpus)")
  workers, bar = _workers_and_bar(paths, workers, progress)
  source_info = _source_info(paths, groups, workers, weights)
  known = {x["sha256"]: x["path"] for x in index["sources"]}
  for p, info in zip(paths, source_info):
    if info["sha256"] in known:
      raise UserError(f"{p}: already in the corpus {out_dir} (the same SHA-256 as {known[info['sha256']]}); leave "
                      "it out of --append")
  total = index["total_bases"]
  tmp = tempfile.mkdtemp(prefix=".append-", dir=out_dir)
  targets = [os.path.join(out_dir, name) for name in ("tokens.u8", "softmask.u8")]
  try:
    parts = staging.stage_files(paths, fmt, tmp, settings.n_run, settings.min_len, workers, bar)
    records, segments, copies, mode = _layout(parts, settings, ", ".join(paths), False, index["num_records"], total)
    _copy(parts, copies, targets, total)
    _count_sources(source_info, records, segments)
    new = dict(index, segments=index["segments"] + segments, sources=index["sources"] + source_info,
               num_records=index["num_records"] + len(records), total_bases=segments[-1]["offset"] +
               segments[-1]["length"], appended=index.get("appended", []) + [{"sources": len(paths),
                                                                               "split_mode": mode}])
    new["fingerprint"] = hashlib.sha256((index["fingerprint"] + _fingerprint(source_info, settings, None, None))
                                        .encode()).hexdigest()
    with open(os.path.join(tmp, INDEX), "w") as f:
      json.dump(new, f, indent=1)
    os.replace(os.path.join(tmp, INDEX), os.path.join(out_dir, INDEX))
  except BaseException:
    for path in targets:
      os.truncate(path, total)
    raise
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
    bar.close()
  return Corpus(out_dir)


def _layout(parts: list[staging.Part], settings: SplitSettings, where: str, require_val: bool,
            first_record: int = 0, first_offset: int = 0):
  """Split the staged parts and place their segments: (records [(part, name, source, length, pieces)], index
  segments, copies [[part, offset in it, length]] in corpus order, split mode). Raises UserError for an empty
  training split (or validation split with `require_val`), or no segment at all."""
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
  index_segments, offset, copies = [], first_offset, []
  for r, a, b, part_offset, split in segments:
    part, name, source = records[r][:3]
    index_segments.append({"name": name, "record": first_record + r, "start": a, "offset": offset,
                           "length": b - a, "split": split, "source": source})
    if copies and copies[-1][0] == part and copies[-1][1] + copies[-1][2] == part_offset:
      copies[-1][2] += b - a  # adjacent in the same part: one copy
    else:
      copies.append([part, part_offset, b - a])
    offset += b - a
  return records, index_segments, copies, mode


def _count_sources(source_info: list[dict], records: list, segments: list[dict]) -> None:
  """Adds to each source what it gave: records, train_bases, val_bases."""
  by_path = {info["path"]: info for info in source_info}
  for info in source_info:
    info.update(records=0, train_bases=0, val_bases=0)
  for rec in records:
    if os.path.abspath(rec[2]) in by_path:
      by_path[os.path.abspath(rec[2])]["records"] += 1
  for seg in segments:
    info = by_path.get(os.path.abspath(seg["source"]))
    if info is not None:
      info[f"{seg['split']}_bases"] += seg["length"]


def _write(stage, out_dir: str, settings: SplitSettings, source_info: list[dict], fingerprint: str,
           extra: dict | None, require_val: bool, where: str) -> Corpus:
  """Stage the input into a temporary sibling of `out_dir` (`stage(tmp)` -> parts), split it, join the parts'
  kept bytes into tokens.u8/softmask.u8, write index.json and rename into place. Nothing is left on an error."""
  parent = os.path.dirname(os.path.abspath(out_dir)) or "."
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=".corpus-", dir=parent)
  try:
    parts = stage(tmp)
    records, segments, copies, mode = _layout(parts, settings, where, require_val)
    targets = [os.path.join(tmp, name) for name in ("tokens.u8", "softmask.u8")]
    if len(parts) == 1 and len(copies) == 1 and copies[0][1] == 0 and \
        copies[0][2] == os.path.getsize(parts[0].tokens_path):  # one part taken whole: renamed, not copied
      os.replace(parts[0].tokens_path, targets[0]), os.replace(parts[0].softmask_path, targets[1])
    else:
      _copy(parts, copies, targets, 0)
    _count_sources(source_info, records, segments)
    total = segments[-1]["offset"] + segments[-1]["length"]
    index = {"format_version": FORMAT_VERSION, "fingerprint": fingerprint, "vocab": tokens.decode(np.arange(8)),
             "settings": dataclasses.asdict(settings), "split_mode": mode, "sources": source_info,
             "num_records": len(records), "segments": segments, "total_bases": total, **(extra or {})}
    with open(os.path.join(tmp, INDEX), "w") as f:
      json.dump(index, f, indent=1)
    if os.path.exists(out_dir):
      shutil.rmtree(out_dir) if os.path.isdir(out_dir) else os.remove(out_dir)
    os.replace(tmp, out_dir)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return Corpus(out_dir)


def _copy(parts: list[staging.Part], copies: list[list[int]], targets: Sequence[str], at: int) -> None:
  """Writes the parts' byte ranges `copies` [[part, offset, length]], in order, into the tokens and soft-mask
  files `targets` from offset `at` (what lies beyond is cut off first), copied in the kernel; removes the parts."""
  for k, dst in enumerate(targets):
    with open(dst, "r+b" if at else "wb") as out:
      out.truncate(at)
      out.seek(at)
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
