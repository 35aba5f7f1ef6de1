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
import io
import os
import re
import shutil
import tempfile
import zlib

from dnajax.data import genome
from dnajax.data import text as text_lib
from dnajax.errors import UserError

_ACGT = re.compile(r"^[ACGTacgt]+$")
SKIP_REASONS = {
    "symbolic": "symbolic ALT (<...> or a breakend)",
    "star": "'*' ALT (a spanning deletion)",
    "no_alt": "no ALT ('.' or an empty cell)",
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
  if alt is None or alt in (".", ""):
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


@dataclasses.dataclass
class _Scan:
  """What a pass over a text VCF's lines found: the first line, the `#CHROM` line and the first data line (line
  number, bytes) where present, and whether htslib needs a cleaned copy (a byte-order mark, blank lines)."""
  first: bytes | None = None
  chrom: tuple[int, bytes] | None = None
  data: tuple[int, bytes] | None = None
  needs_copy: bool = False


def _lines(path: str, quiet: bool = True):
  """(line number, bytes) of a text VCF, plain, gzip or bgzip; nothing for BCF or a file that is not text (left to
  htslib). Stops at damaged compressed data: quietly (htslib names it), or raising unless `quiet`."""
  opener = gzip.open if genome.compression(path) != "plain" else open
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
        yield line_no, line
  except (OSError, EOFError, zlib.error):
    if not quiet:
      raise


def _not_a_position(text: str) -> str:
  """What a position that is not a run of digits shows, for the error line."""
  return "positions start at 1" if text.startswith("-") and text[1:].isdigit() else "not a whole number"


def _check_data_line(path: str, line_no: int, body: bytes) -> None:
  """UserError naming what a data line (without its line break) shows where htslib's own message would not:
  trailing spaces or tabs, fewer than 8 tab-separated columns, a POS that is not a whole number from 1."""
  where = f"--vcf {path}: line {line_no}"
  if body[-1:].isspace():
    what = "a tab" if body.endswith(b"\t") else "a space"
    raise UserError(f"{where} ends with {what} after its last column ({_shown(body)}); remove the trailing "
                    "whitespace")
  columns = body.count(b"\t") + 1
  if columns < 8:
    raise UserError(f"{where} has {columns} tab-separated columns ({_shown(body)}); a VCF data line has at least "
                    "8: CHROM POS ID REF ALT QUAL FILTER INFO")
  pos = body.split(b"\t", 2)[1].decode("utf-8", errors="replace")
  if not pos.isdigit():
    raise UserError(f"{where}: POS {pos!r}: {_not_a_position(pos)}; fix that line")


def scan(path: str, copy_to=None) -> _Scan:
  """One pass over the lines of the text VCF at `path` (plain, gzip or bgzip; BCF and non-text files are left to
  htslib): checks the `#CHROM` line's case and every data line (`_check_data_line`) under a header that
  `check_header` takes (else it says what is missing); with `copy_to` (a binary file) also writes the lines
  there without the byte-order mark and blank lines, which htslib refuses."""
  out = _Scan()
  for line_no, line in _lines(path, quiet=copy_to is None):
    if line_no == 1:
      out.first = line.removeprefix(b"\xef\xbb\xbf")
      out.needs_copy, line = len(line) > len(out.first), out.first
    if not line.strip():
      out.needs_copy = True
      continue
    if copy_to is not None:
      copy_to.write(line)
    if line.startswith(b"##"):
      continue
    if line.startswith(b"#"):
      if not line.startswith(b"#CHROM") and line[:6].upper() == b"#CHROM":
        raise UserError(f"--vcf {path}: line {line_no}: the header line starts {line[:6].decode()!r}; '#CHROM' "
                        "must be upper case: write it '#CHROM'")
      if out.chrom is None:  # data lines are checked under a header check_header takes
        out.chrom = (line_no, line)
        header_ok = out.first.startswith(b"##fileformat=VCF") and line.count(b"\t") >= 7
      continue
    out.data = out.data or (line_no, line)
    if out.chrom and header_ok and not _spaced(line):
      try:
        _check_data_line(path, line_no, line.rstrip(b"\r\n"))
      except UserError:
        _check_decompresses(path)  # damaged compressed data shows as a bad line before its checksum fails
        raise
  return out


def _check_decompresses(path: str) -> None:
  """UserError when the compressed VCF at `path` does not decompress to its end (nothing for a plain file)."""
  if genome.compression(path) == "plain":
    return
  try:
    for _ in _lines(path, quiet=False):
      pass
  except (OSError, EOFError, zlib.error) as e:
    raise UserError(f"--vcf {path}: the compressed data is damaged ({_reason(e)}); download or compress the file "
                    "again") from None


def _looks_like_table(line: bytes) -> bool:
  """A line naming the columns chrom, pos, ref and alt of a variant table (tab- or comma-separated), not the QUAL,
  FILTER and INFO of a VCF's `#CHROM` line."""
  names = {n.strip().lstrip("#").strip().lower() for n in re.split(r"[\t,]", line.decode("utf-8", "replace"))}
  return (all(names & set(aliases) for key, aliases in _COLUMNS.items() if key != "id")
          and not {"qual", "filter", "info"} <= names)


def check_header(path: str, found: _Scan) -> None:
  """UserError (one line naming what the file shows and what is missing) when the text VCF at `path` (as `scan`
  `found` it) has no `##fileformat=VCFv4.x` first line, no `#CHROM` header line or one with fewer than 8 columns, or
  columns separated by spaces rather than tabs in its `#CHROM` line or first data line; a first line naming the
  columns of a variant table is pointed to --variants."""
  first, chrom, data = found.first, found.chrom, found.data
  if first is None:
    raise UserError(f"--vcf {path}: empty file; pass a VCF")
  if not first.startswith(b"##fileformat=VCF") and _looks_like_table(first):
    raise UserError(f"--vcf {path}: line 1 ({_shown(first)}) names the columns of a variant table, not a VCF "
                    "header; pass the table with --variants")
  problems = []
  if not first.startswith(b"##fileformat=VCF"):
    what = ("the header is only the '#CHROM' line" if chrom and chrom[0] == 1 else
            f"the file has no header lines (line 1 is {_shown(first)})" if not first.startswith(b"#") else
            f"the first line is {_shown(first)}")
    problems.append(f"no '##fileformat=VCFv4.x' line: {what}; add '{FILEFORMAT}' as the first line")
  if chrom is None:
    problems.append("no '#CHROM' header line before the data; add the tab-separated line "
                    f"{CHROM_LINE!r} (with FORMAT and sample columns when the data has them) after the '##' lines")
  for name, line in (("'#CHROM' header line", chrom), ("first data line", data)):
    if line and _spaced(line[1]):
      problems.append(f"the columns of the {name} (line {line[0]}) are separated by spaces, not tabs; separate a "
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
  A byte-order mark and blank lines are skipped (htslib reads a copy without them, as it does a plain-gzip file).

  Raises UserError (one line, naming the file and the line or record) for a missing file, a header that is not a
  VCF's (`check_header`), a data line that `scan` refuses, a file that is not VCF, a record that does not parse or
  a POS below 1."""
  _check_file(path, "--vcf")
  found = scan(path)
  if found.first is not None or os.path.getsize(path) == 0:
    check_header(path, found)
  if not (found.needs_copy or genome.compression(path) == "gzip"):
    return _read_vcf(path, keep_lines)
  with tempfile.TemporaryDirectory(prefix="dnajax-vcf-") as tmp:  # htslib reads BGZF by blocks: plain gzip copied
    plain = os.path.join(tmp, "variants.vcf")
    try:
      with open(plain, "wb") as dst:
        if found.first is None:  # not text: copied as it is, for htslib to name
          with gzip.open(path, "rb") as src:
            shutil.copyfileobj(src, dst, 1 << 22)
        else:
          scan(path, dst)
    except (OSError, EOFError, zlib.error) as e:
      raise UserError(f"--vcf {path}: cannot decompress ({_reason(e)}); pass a VCF, plain or (b)gzip") from None
    try:
      out = _read_vcf(plain, keep_lines)
    except UserError as e:  # the message names the user's file, not the temporary copy
      raise UserError(str(e).replace(plain, path)) from None
    out.path = path
    return out


def _read_vcf(path: str, keep_lines: bool) -> VariantSet:
  import pysam

  pysam.set_verbosity(0)
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
  """Variants from a tab-separated table (comma-separated when the name ends in .csv; optionally gzip, read as every
  table is: `text.read_text`) whose header names the columns chrom, pos, ref, alt and optionally id
  (case-insensitive; a leading '#' is ignored). Several ALT alleles may be
  given comma-separated in a tab-separated file.

  Raises UserError (one line, naming the file and line) for a missing file, a missing column or a bad position."""
  _check_file(path, "--variants")
  delim = "," if path.lower().removesuffix(".gz").endswith(".csv") else "\t"
  out = VariantSet(path, [], collections.Counter(), 0)
  text = text_lib.read_text(path, "a table whose first line names the columns chrom pos ref alt [id]")
  rows = csv.reader(io.StringIO(text, newline=""), delimiter=delim)
  header = next(rows)  # (read_text refuses a file without text)
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
    cell = row[col["pos"]].strip()
    pos_text = cell.replace(",", "") if delim == "\t" else cell
    if not pos_text.isdigit():
      raise UserError(f"{where}: pos {cell!r}: {_not_a_position(pos_text)}; fix that line")
    alts = row[col["alt"]].strip().split(",") if delim == "\t" else [row[col["alt"]].strip()]
    vid = row[col["id"]].strip() if "id" in col and row[col["id"]].strip() else "."
    _add(out, row[col["chrom"]].strip(), int(pos_text), vid, row[col["ref"]].strip(), alts, where)
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
