"""Variants from a VCF (plain, bgzip or BCF; parsed by htslib through pysam) or from a table with columns
`chrom pos ref alt` (optional `id`), as saturation screens publish them.

Each ALT allele is one `Variant` (a line with ALT `A,T` gives two). POS is 1-based as the VCF specification says.
Alleles that cannot be scored against a sequence - symbolic (`<DEL>`, breakends), `*` (a spanning deletion), `.` (no
ALT) and alleles with letters other than A/C/G/T - are skipped and counted by reason, never an error. The whole file
is read before anything is scored, so a file that fails to parse fails before any work and nothing is written.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import gzip
import os
import re
import shutil
import tempfile
import zlib

from dnajax.data import genome
from dnajax.errors import UserError

_ACGT = re.compile(r"^[ACGTacgt]+$")
SKIP_REASONS = {
    "symbolic": "symbolic ALT (<...> or a breakend)",
    "star": "'*' ALT (a spanning deletion)",
    "no_alt": "no ALT ('.')",
    "not_acgt": "REF or ALT with letters other than A/C/G/T",
    "same_as_ref": "ALT equal to REF",
    "outside_reference": "outside the region(s) of the contig that the reference holds",
    "indel_skipped": "MNV or indel (--indels skip)",
}


@dataclasses.dataclass(frozen=True)
class Variant:
  """One ALT allele: `chrom` as written, `pos` 1-based, `id` verbatim ('.' when absent), `ref`/`alt` upper case;
  `record` is the index of its line in the input (0-based, data lines only) and `allele` its index among the ALTs."""
  chrom: str
  pos: int
  id: str
  ref: str
  alt: str
  record: int
  allele: int

  @property
  def kind(self) -> str:
    """snv, mnv, insertion, deletion or indel (REF and ALT of different lengths, both longer than one base)."""
    r, a = len(self.ref), len(self.alt)
    if r == a:
      return "snv" if r == 1 else "mnv"
    if min(r, a) == 1 and self.ref[0] == self.alt[0]:
      return "insertion" if a > r else "deletion"
    return "indel"


@dataclasses.dataclass
class VariantSet:
  """The variants of one file, the skipped alleles counted by reason (and each one's reason by (record, allele)),
  and - for a VCF - what writing it back takes: the header text and each data line's text (`lines`, file order)."""
  path: str
  variants: list[Variant]
  skipped: collections.Counter
  records: int
  header: str | None = None
  lines: list[str] | None = None
  skip_reasons: dict = dataclasses.field(default_factory=dict)


def _classify(ref: str, alt: str | None) -> str | None:
  """The skip reason of an allele, or None when it can be scored."""
  if alt is None or alt == ".":
    return "no_alt"
  if alt == "*":
    return "star"
  if alt.startswith("<") or "[" in alt or "]" in alt:
    return "symbolic"
  if not _ACGT.match(ref) or not _ACGT.match(alt):
    return "not_acgt"
  if ref.upper() == alt.upper():
    return "same_as_ref"
  return None


def _add(out: VariantSet, chrom: str, pos: int, vid: str, ref: str, alts, where: str) -> None:
  if pos < 1:
    raise UserError(f"{where}: position {pos} is not a 1-based position (positions start at 1); fix the file")
  for k, alt in enumerate(alts or (None,)):
    reason = _classify(ref, alt)
    if reason:
      out.skipped[reason] += 1
      out.skip_reasons[(out.records, k)] = reason
    else:
      out.variants.append(Variant(chrom, pos, vid, ref.upper(), alt.upper(), out.records, k))
  out.records += 1


FILEFORMAT = "##fileformat=VCFv4.2"  # what a VCF's first line says (any VCFv4.x); htslib refuses a file without it
CHROM_LINE = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"


def _shown(line: bytes, width: int = 60) -> str:
  text = line.rstrip(b"\r\n").decode("utf-8", errors="replace")
  return ascii(text[:width]) + ("..." if len(text) > width else "")


def _spaced(line: bytes) -> bool:
  """A line whose columns are separated by spaces: no tab, and spaces between the 8 or more words of a VCF line."""
  return b"\t" not in line and len(line.split()) >= 8


def check_header(path: str) -> None:
  """UserError (one line naming what the file shows and what is missing) when the text VCF at `path` (plain, gzip
  or bgzip) has no `##fileformat=VCFv4.x` first line, no `#CHROM` header line or one with fewer than 8 columns, or
  columns separated by spaces rather than tabs in its `#CHROM` line or first data line. Reads only the header and
  the first data line; BCF and files that are not text are left to htslib."""
  opener = gzip.open if genome.compression(path) != "plain" else open
  first, chrom, data, line_no = None, None, None, 0
  try:
    with opener(path, "rb") as f:
      for line_no, line in enumerate(f, 1):
        if line_no == 1:
          try:
            line.decode("utf-8")
          except UnicodeDecodeError:
            return
          if line.startswith(b"BCF") or b"\0" in line:
            return
          first = line = line.removeprefix(b"\xef\xbb\xbf")
        if not line.strip() or line.startswith(b"##"):
          continue
        if line.startswith(b"#"):
          chrom = (line_no, line)
          continue
        data = (line_no, line)
        break
  except (OSError, EOFError, zlib.error):
    return  # read_vcf says what is wrong with the compression
  if first is None:
    raise UserError(f"--vcf {path}: empty file; pass a VCF")
  problems = []
  if not first.startswith(b"##fileformat=VCF"):
    what = ("the header is only the '#CHROM' line" if chrom and chrom[0] == 1 else
            f"the file has no header lines (line 1 is {_shown(first)})" if not first.startswith(b"#") else
            f"the first line is {_shown(first)}")
    problems.append(f"no '##fileformat=VCFv4.x' line: {what}; add '{FILEFORMAT}' as the first line")
  if chrom is None:
    problems.append("no '#CHROM' header line before the data; add the tab-separated line "
                    f"{CHROM_LINE!r} (with FORMAT and sample columns when the data has them) after the '##' lines")
  for name, found in (("'#CHROM' header line", chrom), ("first data line", data)):
    if found and _spaced(found[1]):
      problems.append(f"the columns of the {name} (line {found[0]}) are separated by spaces, not tabs; separate a "
                      "VCF's columns with tabs")
      break
  else:
    columns = len(chrom[1].rstrip(b"\r\n").split(b"\t")) if chrom else 8
    if columns < 8:
      problems.append(f"the '#CHROM' line (line {chrom[0]}) has {columns} tab-separated columns; a VCF's has at "
                      f"least the 8 of {CHROM_LINE!r}")
  if problems:
    raise UserError(f"--vcf {path}: cannot be read as VCF: " + "; ".join(problems))


def read_vcf(path: str, keep_lines: bool = False) -> VariantSet:
  """All variants of the VCF/BCF at `path` (plain, gzip or bgzip); with `keep_lines` also its header and line texts.

  Raises UserError (one line, naming the file and the record) for a missing file, a header that is not a VCF's
  (`check_header`), a file that is not VCF, a record that does not parse or a POS below 1."""
  _check_file(path, "--vcf")
  check_header(path)
  return _read_vcf(path, keep_lines)


def _read_vcf(path: str, keep_lines: bool) -> VariantSet:
  import pysam

  pysam.set_verbosity(0)
  if genome.compression(path) == "gzip":  # htslib reads BGZF by blocks; a plain-gzip VCF is streamed to a temp file
    with tempfile.TemporaryDirectory(prefix="dnajax-vcf-") as tmp:
      plain = os.path.join(tmp, "variants.vcf")
      try:
        with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
          shutil.copyfileobj(src, dst, 1 << 22)
      except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"--vcf {path}: cannot decompress ({_reason(e)}); pass a VCF, plain or (b)gzip") from None
      try:
        out = _read_vcf(plain, keep_lines)
      except UserError as e:  # the message names the user's file, not the temporary copy
        raise UserError(str(e).replace(plain, path)) from None
      out.path = path
      return out
  out = VariantSet(path, [], collections.Counter(), 0, lines=[] if keep_lines else None)
  try:
    vcf = pysam.VariantFile(path)
  except (ValueError, OSError, NotImplementedError) as e:
    raise UserError(f"--vcf {path}: not a VCF file ({_reason(e)}); pass a VCF or BCF, plain or bgzip") from None
  try:
    if keep_lines:
      out.header = str(vcf.header)
    last = "the header"
    try:
      for rec in vcf:
        where = f"--vcf {path}, record {out.records + 1} ({rec.chrom}:{rec.pos})"
        if rec.ref is None:
          raise UserError(f"{where}: no REF allele; fix the file")
        _add(out, rec.chrom, int(rec.pos), rec.id if rec.id is not None else ".", rec.ref, rec.alts, where)
        if keep_lines:
          out.lines.append(str(rec).rstrip("\n"))
        last = f"record {out.records} ({rec.chrom}:{rec.pos})"
    except (ValueError, OSError, NotImplementedError) as e:
      raise UserError(f"--vcf {path}: the record after {last} does not parse ({_reason(e)}); fix or remove that "
                      "line (a VCF data line has 8 or more tab-separated columns)") from None
  finally:
    try:
      vcf.close()
    except (OSError, ValueError):  # closing a damaged BGZF stream fails too; the error above is the one to report
      pass
  return out


_COLUMNS = {"chrom": ("chrom", "chr", "chromosome", "contig"), "pos": ("pos", "position"), "ref": ("ref",),
            "alt": ("alt",), "id": ("id",)}


def read_table(path: str) -> VariantSet:
  """Variants from a tab-separated table (comma-separated when the name ends in .csv) whose header names the columns
  chrom, pos, ref, alt and optionally id (case-insensitive; a leading '#' is ignored). Several ALT alleles may be
  given comma-separated in a tab-separated file.

  Raises UserError (one line, naming the file and line) for a missing file, a missing column or a bad position."""
  _check_file(path, "--variants")
  delim = "," if path.lower().endswith(".csv") else "\t"
  out = VariantSet(path, [], collections.Counter(), 0)
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:  # utf-8-sig: a spreadsheet's byte-order mark is dropped
      rows = csv.reader(f, delimiter=delim)
      header = next(rows, None)
      if header is None:
        raise UserError(f"--variants {path}: empty file; the first line names the columns chrom pos ref alt [id]")
      if header and header[0].startswith("##fileformat=VCF"):
        raise UserError(f"--variants {path}: a VCF file; pass it with --vcf")
      names = [h.strip().lstrip("#").strip().lower() for h in header]
      col = {}
      for key, aliases in _COLUMNS.items():
        found = [i for i, n in enumerate(names) if n in aliases]
        if found:
          col[key] = found[0]
        elif key != "id":
          sep = "tab" if delim == "\t" else "comma"
          shows = f"no column {key!r} in the header ({', '.join(names)})"
          if len(header) == 1 and len(header[0].split()) > 1:
            shows = f"the header's columns are separated by spaces, not {sep}s"
          elif not col and any(h.strip().isdigit() for h in header):
            shows = f"the first line ({', '.join(h.strip() for h in header[:6])}) holds data, not column names"
          raise UserError(f"--variants {path}: {shows}; the first line names the columns chrom pos ref alt [id], "
                          f"{sep}-separated")
      for line_no, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip() or row[0].startswith("#"):  # blank and comment lines
          continue
        where = f"--variants {path}, line {line_no}"
        if len(row) < len(names) or any(x.strip() for x in row[len(names):]):
          spaced = len(row) == 1 and len(row[0].split()) >= len(names)
          raise UserError(f"{where}: {len(row)} columns, the header has {len(names)}"
                          + ("; its columns are separated by spaces, not tabs" if spaced else "") + "; fix that line")
        pos_text = row[col["pos"]].strip().replace(",", "") if delim == "\t" else row[col["pos"]].strip()
        if not pos_text.isdigit():
          raise UserError(f"{where}: pos {row[col['pos']]!r} is not a whole number; fix that line")
        alts = row[col["alt"]].strip().split(",") if delim == "\t" else [row[col["alt"]].strip()]
        vid = row[col["id"]].strip() if "id" in col and row[col["id"]].strip() else "."
        _add(out, row[col["chrom"]].strip(), int(pos_text), vid, row[col["ref"]].strip(), alts, where)
  except UnicodeDecodeError:
    raise UserError(f"--variants {path}: not a text table (undecodable bytes); pass a TSV/CSV with columns "
                    "chrom pos ref alt [id]") from None
  return out


def _check_file(path: str, flag: str) -> None:
  if not os.path.isfile(path):
    raise UserError(f"{flag} {path}: no such file")
  if not os.access(path, os.R_OK):
    raise UserError(f"{flag} {path}: not readable; check its permissions")


def _reason(e: Exception) -> str:
  """The first line of an exception's message, with the Python bytes literals pysam writes (`b'file.vcf'`) shown
  as text."""
  text = str(e).strip().splitlines()
  return re.sub(r"""(?<!\w)b(['"])(.*?)\1""", r"\2", text[0])[:160] if text else type(e).__name__


def describe_skipped(skipped: collections.Counter) -> str:
  """'2 symbolic ALT (<...> or a breakend), 1 ...' for the stderr summary ('' when nothing was skipped)."""
  return ", ".join(f"{n} {SKIP_REASONS.get(k, k)}" for k, n in skipped.items() if n)
