"""A reference genome read by random access: plain or bgzip FASTA through htslib's faidx (pysam), never loaded whole.

The index (`.fai`, and `.gzi` for bgzip) is the one next to the FASTA when it is there and newer than the file;
otherwise it is built next to the FASTA, or - when that directory is read-only - in the cache ($DNAJAX_CACHE,
default ~/.cache/dnajax, folder `faidx/`). A plain-gzip FASTA cannot be read by random access: it is decompressed
once into the cache (folder `reference/`) and indexed there.

A record whose id is a samtools region (`chr17:42425000-43600000`, 1-based inclusive, what `samtools faidx ref.fa
REGION` writes) holds that part of contig `chr17`: it is placed at its offset, so variants in contig coordinates can
be looked up in an extracted region. Contig names match with or without a `chr` prefix (and chrM / MT).

Coordinates here are 0-based, end-exclusive; callers convert from VCF's 1-based POS.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import re
import zlib

import numpy as np
from tqdm import tqdm

from dnajax.data import tokens
from dnajax.errors import UserError

MAX_AMBIGUOUS_FRACTION = 0.10  # IUPAC codes other than N in a record's first bases above this: not DNA
_REGION = re.compile(r"^(?P<contig>.+):(?P<start>[0-9][0-9,]*)-(?P<end>[0-9][0-9,]*)$")
_ALIASES = {"chrM": "MT", "MT": "chrM", "chrMT": "M", "M": "chrMT"}


def cache_root() -> str:
  """$DNAJAX_CACHE, default ~/.cache/dnajax (shared with `dnajax fetch`)."""
  return os.environ.get("DNAJAX_CACHE") or os.path.expanduser("~/.cache/dnajax")


@dataclasses.dataclass(frozen=True)
class Segment:
  """One FASTA record: the part [start, end) (0-based) of `contig` that it holds; `record` is its FASTA id."""
  contig: str
  start: int
  end: int
  record: str


def compression(path: str) -> str:
  """'bgzip', 'gzip' or 'plain', from the file's first bytes (BGZF is gzip with a 'BC' extra subfield)."""
  with open(path, "rb") as f:
    head = f.read(18)
  if head[:2] != b"\x1f\x8b":
    return "plain"
  return "bgzip" if len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC" else "gzip"


def _key(path: str) -> str:
  st = os.stat(path)
  return hashlib.sha256(f"{os.path.realpath(path)}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:20]


def _fresh(index: str, path: str) -> bool:
  return os.path.isfile(index) and os.path.getmtime(index) >= os.path.getmtime(path)


def _writable_dir(path: str) -> bool:
  """Whether an index may be written beside `path`: its directory is writable and its mode grants someone write
  permission (a directory made read-only by its mode stays untouched even for root, who may write anywhere)."""
  d = os.path.dirname(os.path.abspath(path))
  return os.access(d, os.W_OK | os.X_OK) and bool(os.stat(d).st_mode & 0o222)


def _decompressed(path: str, progress: bool) -> str:
  """A plain copy of the gzip file `path` in the cache (made once, streamed: little memory)."""
  name = os.path.basename(path)
  name = name[:-3] if name.endswith(".gz") else name + ".fa"
  out = os.path.join(cache_root(), "reference", _key(path), name)
  if os.path.isfile(out):
    return out
  os.makedirs(os.path.dirname(out), exist_ok=True)
  tmp = f"{out}.tmp{os.getpid()}"
  try:
    with gzip.open(path, "rb") as src, open(tmp, "wb") as dst, \
        tqdm(total=os.path.getsize(path), unit="B", unit_scale=True, desc="decompress reference", leave=False,
             disable=not progress) as bar:
      last = 0
      for chunk in iter(lambda: src.read(1 << 22), b""):
        dst.write(chunk)
        pos = src.fileobj.tell()  # compressed bytes read so far
        bar.update(pos - last)
        last = pos
    os.replace(tmp, out)
  except (OSError, EOFError, zlib.error) as e:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise UserError(f"--reference {path}: cannot decompress ({e}); pass a plain or bgzip FASTA") from None
  return out


def _index_paths(path: str, bgzip: bool) -> tuple[str, str | None]:
  """(fai, gzi) paths to use: beside the FASTA when fresh there or when its directory is writable, else the cache."""
  fai, gzi = path + ".fai", (path + ".gzi" if bgzip else None)
  if _fresh(fai, path) and (gzi is None or _fresh(gzi, path)):
    return fai, gzi
  if _writable_dir(path):
    return fai, gzi
  stem = os.path.join(cache_root(), "faidx", _key(path), os.path.basename(path))
  return stem + ".fai", (stem + ".gzi" if bgzip else None)


def _build_index(path: str, fai: str, gzi: str | None, shown: str) -> None:
  """Builds the faidx index of `path` at `fai` (and `gzi`), via temporaries renamed into place. UserError naming
  `shown` (the path the user gave) when it cannot be indexed."""
  import pysam

  if _fresh(fai, path) and (gzi is None or _fresh(gzi, path)):
    return
  os.makedirs(os.path.dirname(fai) or ".", exist_ok=True)  # '': an index beside a reference named without a folder
  tmp_fai, tmp_gzi = f"{fai}.tmp{os.getpid()}", (f"{gzi}.tmp{os.getpid()}" if gzi else None)
  args = [path, "--fai-idx", tmp_fai] + (["--gzi-idx", tmp_gzi] if gzi else [])
  try:
    pysam.faidx(*args)
    os.replace(tmp_fai, fai)
    if gzi:
      os.replace(tmp_gzi, gzi)
  except (pysam.utils.SamtoolsError, OSError) as e:
    text = str(e).replace("\\n", "\n")
    detail = re.sub(r"^.*stderr=", "", text.strip().splitlines()[-1] if text.strip() else type(e).__name__)
    detail = re.sub(r"\S*\.tmp\d+", "", detail).strip(" \n')[]") or "faidx failed"
    raise UserError(f"--reference {shown}: cannot index it as FASTA ({detail[:120]}); pass a FASTA file (plain or "
                    "bgzip) whose lines have equal length within each record") from None
  finally:
    for t in (tmp_fai, tmp_gzi):
      if t and os.path.exists(t):
        os.remove(t)


class Reference:
  """An indexed FASTA reference. `segments` maps each contig to the records that hold parts of it."""

  def __init__(self, path: str, progress: bool = True):
    """Opens (indexing if needed) the FASTA at `path`.

    Raises UserError for a missing or unreadable file, a file that is not FASTA, or an index that cannot be made."""
    import pysam

    pysam.set_verbosity(0)  # htslib's own stderr lines; failures become one UserError line here
    if os.path.isdir(path):
      raise UserError(f"--reference {path}: is a directory; pass a FASTA file (plain or bgzip)")
    if not os.path.isfile(path):
      raise UserError(f"--reference {path}: no such file; pass a FASTA file (plain or bgzip)")
    if not os.access(path, os.R_OK):
      raise UserError(f"--reference {path}: not readable; check its permissions")
    if os.path.getsize(path) == 0:
      raise UserError(f"--reference {path}: empty file; pass a FASTA file")
    self.path = path
    kind = compression(path)
    _refuse_non_fasta(path, kind)
    readable = _decompressed(path, progress) if kind == "gzip" else path
    fai, gzi = _index_paths(readable, kind == "bgzip")
    try:
      _build_index(readable, fai, gzi, path)
    except UserError:
      if readable != path:  # the cache's decompressed copy of a file that is not FASTA: not kept
        os.remove(readable)
      raise
    try:
      kw = {"filepath_index_compressed": gzi} if gzi else {}
      self._fasta = pysam.FastaFile(readable, filepath_index=fai, **kw)
    except (OSError, ValueError) as e:
      raise UserError(f"--reference {path}: cannot open it as indexed FASTA ({e}); pass a plain or bgzip FASTA, "
                      "or delete a stale .fai/.gzi beside it") from None
    self.segments: dict[str, list[Segment]] = {}
    for name, length in zip(self._fasta.references, self._fasta.lengths):
      seg = _segment(path, name, int(length))
      self.segments.setdefault(seg.contig, []).append(seg)
    if not self.segments:
      raise UserError(f"--reference {path}: holds no sequence record; pass a FASTA file")
    self._check_letters()
    self.regions_only = {c: all(s.record != s.contig for s in segs) for c, segs in self.segments.items()}

  def close(self) -> None:
    self._fasta.close()

  def _check_letters(self, records: int = 3, sample: int = 20_000) -> None:
    """UserError when the first bases of the first records are not nucleotide letters (a protein FASTA)."""
    for name in self._fasta.references[:records]:
      letters = self._fasta.fetch(reference=name, start=0, end=sample)
      ids = tokens.encode(letters)
      bad = np.flatnonzero(ids == tokens.INVALID)
      ambiguous = np.count_nonzero(ids == tokens.N) - letters.upper().count("N")
      if len(bad) or ambiguous > MAX_AMBIGUOUS_FRACTION * max(len(letters), 1):
        what = f"letter {letters[bad[0]]!r} at position {bad[0] + 1}" if len(bad) else "mostly IUPAC ambiguity codes"
        raise UserError(f"--reference {self.path}: record {name!r} is not DNA ({what}); a protein FASTA? pass "
                        "the genome's nucleotide FASTA")

  def contig(self, name: str) -> str | None:
    """This reference's name for contig `name` (exact, else with/without a `chr` prefix), or None."""
    for cand in (name, name[3:] if name.startswith("chr") else "chr" + name, _ALIASES.get(name)):
      if cand and cand in self.segments:
        return cand
    return None

  def segment(self, contig: str, start: int, end: int) -> Segment | None:
    """The record holding all of [start, end) of `contig` (this reference's name), or None."""
    for seg in self.segments[contig]:
      if seg.start <= start and end <= seg.end:
        return seg
    return None

  def fetch(self, seg: Segment, start: int, end: int) -> np.ndarray:
    """Token ids uint8[end - start] of contig positions [start, end) (clipped to `seg`); letters that are not
    nucleotides read as N."""
    a, b = max(start, seg.start) - seg.start, min(end, seg.end) - seg.start
    if b <= a:
      return np.zeros(0, np.uint8)
    ids = tokens.encode(self._fasta.fetch(reference=seg.record, start=a, end=b))
    return np.where(ids == tokens.INVALID, tokens.N, ids).astype(np.uint8)

  def letters(self, seg: Segment, start: int, end: int) -> str:
    """The reference's letters (case as in the file) at contig positions [start, end) within `seg`."""
    return self._fasta.fetch(reference=seg.record, start=start - seg.start, end=end - seg.start)


def _segment(path: str, name: str, length: int) -> Segment:
  """The contig part a record holds. A name like `chr17:42425000-43600000` is a region: 1-based inclusive
  (samtools faidx) when the record holds end - start + 1 bases, 0-based start and exclusive end (UCSC) when it holds
  end - start; a region name that fits neither is refused (the variants would be placed wrongly)."""
  m = _REGION.match(name)
  if not m:
    return Segment(name, 0, length, name)
  start, end = int(m["start"].replace(",", "")), int(m["end"].replace(",", ""))
  if length == end - start + 1:
    return Segment(m["contig"], start - 1, start - 1 + length, name)
  if length == end - start:
    return Segment(m["contig"], start, end, name)
  raise UserError(f"--reference {path}: record {name!r} is named as region {m['contig']}:{start}-{end} but holds "
                  f"{length:,} bases (the name says {end - start + 1:,} 1-based inclusive, or {end - start:,} "
                  "0-based half-open); rename it to its region or extract it with `samtools faidx`")


def _refuse_non_fasta(path: str, kind: str) -> None:
  """UserError for a GenBank file or anything whose first character is not '>' (FASTA)."""
  opener = gzip.open if kind != "plain" else open
  try:
    with opener(path, "rb") as f:
      head = f.read(512).lstrip()
  except (OSError, EOFError, zlib.error) as e:
    raise UserError(f"--reference {path}: cannot read it ({e}); pass a FASTA file (plain or bgzip)") from None
  if head.startswith(b"LOCUS"):
    raise UserError(f"--reference {path}: a GenBank file; vep reads a FASTA reference (convert it, e.g. "
                    "Bio.SeqIO.convert(path, 'genbank', 'ref.fa', 'fasta'))")
  if not head.startswith(b">"):
    raise UserError(f"--reference {path}: not a FASTA file (it does not start with '>'); pass a FASTA file (plain "
                    "or bgzip)")


def describe_contigs(ref: Reference, limit: int = 5) -> str:
  """A short list of the reference's contigs for error messages."""
  names = list(ref.segments)
  return ", ".join(names[:limit]) + (f" (and {len(names) - limit} more)" if len(names) > limit else "")

