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


def read_vcf(path: str, keep_lines: bool = False) -> VariantSet:
  """All variants of the VCF/BCF at `path` (plain or bgzip); with `keep_lines` also its header and line texts.

  Raises UserError (one line, naming the file and the record) for a missing file, a file that is not VCF, a record
  that does not parse or a POS below 1."""
  import pysam

  pysam.set_verbosity(0)
  _check_file(path, "--vcf")
  if genome.compression(path) == "gzip":  # htslib reads BGZF by blocks; a plain-gzip VCF is streamed to a temp file
    with tempfile.TemporaryDirectory(prefix="dnajax-vcf-") as tmp:
      plain = os.path.join(tmp, "variants.vcf")
      try:
        with gzip.open(path, "rb") as src, open(plain, "wb") as dst:
          shutil.copyfileobj(src, dst, 1 << 22)
      except (OSError, EOFError, zlib.error) as e:
        raise UserError(f"--vcf {path}: cannot decompress ({_reason(e)}); pass a VCF, plain or (b)gzip") from None
      out = read_vcf(plain, keep_lines)
      out.path = path
      return out
  out = VariantSet(path, [], collections.Counter(), 0, lines=[] if keep_lines else None)
  try:
    vcf = pysam.VariantFile(path)
  except (ValueError, OSError, NotImplementedError) as e:
    raise UserError(f"--vcf {path}: not a VCF file ({_reason(e)}); pass a VCF (plain or bgzip) with a "
                    "'#CHROM POS ID REF ALT ...' header") from None
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
          raise UserError(f"--variants {path}: no column {key!r} in the header ({', '.join(names)}); the first line "
                          f"names the columns chrom pos ref alt [id], {sep}-separated")
      for line_no, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip() or row[0].startswith("#"):  # blank and comment lines
          continue
        where = f"--variants {path}, line {line_no}"
        if len(row) < len(names) or any(x.strip() for x in row[len(names):]):
          raise UserError(f"{where}: {len(row)} columns, the header has {len(names)}; fix that line")
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
  text = str(e).strip().splitlines()
  return text[0][:160] if text else type(e).__name__


def describe_skipped(skipped: collections.Counter) -> str:
  """'2 symbolic ALT (<...> or a breakend), 1 ...' for the stderr summary ('' when nothing was skipped)."""
  return ", ".join(f"{n} {SKIP_REASONS.get(k, k)}" for k, n in skipped.items() if n)
