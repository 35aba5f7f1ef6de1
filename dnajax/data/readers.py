"""Reading FASTA and GenBank files (plain, gzip or bgzip) into normalised token arrays.

Every way a file can fail to be a nucleotide sequence file ends in one `UserError` line naming the file and,
where it applies, the record and position. Nothing here writes anything.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import warnings
import zlib
from collections.abc import Iterator, Sequence

import numpy as np
from Bio import SeqIO

from dnajax.data import features, tokens
from dnajax.errors import UserError

FASTA_EXTS = (".fa", ".fasta", ".fna", ".ffn", ".fas", ".frn", ".seq", ".mfa")
GENBANK_EXTS = (".gb", ".gbk", ".gbff", ".genbank", ".gbf")
GZIP_EXTS = (".gz", ".bgz", ".bgzf")
MAX_AMBIGUOUS_FRACTION = 0.10  # IUPAC ambiguity codes other than N above this: likely a protein


@dataclasses.dataclass
class Record:
  """One normalised sequence. `ids` are token ids (A/C/G/T/N, or MASK for '?' where allowed)."""

  name: str
  ids: np.ndarray  # uint8[L]
  soft_masked: np.ndarray  # bool[L]: lowercase in the file (a repeat in UCSC/Ensembl soft-masked genomes)
  source: str
  # int8[L] for GenBank records with CDS features: 0 outside any CDS, else the codon position 1/2/3 of the base in
  # its CDS's reading direction (later features win where CDS overlap); None when the file carries no annotation.
  codon_position: np.ndarray | None = None
  # What interpreting the record's CDS features kept and skipped, by kind (see dnajax.data.features); None without
  # CDS features.
  cds_counts: dict | None = None
  # The record's letters exactly as in the file (uint8 bytes, line breaks removed), kept only where a command writes
  # sequences derived from them back out (read_file(..., keep_letters=True)); None otherwise.
  letters: np.ndarray | None = None


def _strip_gz(name: str) -> str:
  lower = name.lower()
  for ext in GZIP_EXTS:
    if lower.endswith(ext):
      return lower[: -len(ext)]
  return lower


def is_sequence_file(path: str) -> bool:
  """True for a FASTA or GenBank extension (optionally .gz/.bgz)."""
  base = _strip_gz(os.path.basename(path))
  return base.endswith(FASTA_EXTS + GENBANK_EXTS)


def expand_inputs(paths: Sequence[str]) -> list[str]:
  """Files as given; directories replaced by the sequence files directly inside them (sorted)."""
  out: list[str] = []
  for p in paths:
    if os.path.isdir(p):
      found = sorted(os.path.join(p, f) for f in os.listdir(p)
                     if is_sequence_file(f) and os.path.isfile(os.path.join(p, f)))
      if not found:
        raise UserError(f"{p}: directory holds no sequence files (expected extensions "
                        f"{', '.join(FASTA_EXTS + GENBANK_EXTS)}, optionally .gz); pass files instead")
      out.extend(found)
    elif os.path.isfile(p):
      out.append(p)
    else:
      raise UserError(f"{p}: no such file or directory; check the path")
  if not out:
    raise UserError("no input files given; pass at least one FASTA or GenBank file")
  return out


def read_text(path: str) -> str:
  """Whole file as text (line endings normalised to '\\n'), decompressing gzip/bgzip by magic bytes; unreadable,
  empty, binary and truncated files are UserErrors. Every reader of a user's text file goes through this."""
  try:
    with open(path, "rb") as f:
      raw = f.read()
  except OSError as e:
    raise UserError(f"{path}: cannot read ({e.strerror}); check the path and permissions") from None
  if raw[:2] == b"\x1f\x8b":
    try:
      raw = gzip.decompress(raw)
    except (EOFError, OSError, zlib.error):
      raise UserError(f"{path}: gzip data is truncated or corrupt; download the file again") from None
  if not raw.strip():
    raise UserError(f"{path}: file is empty; expected FASTA or GenBank records")
  head = raw[:65536]
  printable = sum(1 for b in head if 32 <= b < 127 or b in (9, 10, 13))
  if b"\x00" in head or printable < 0.99 * len(head):
    raise UserError(f"{path}: binary data, not a FASTA or GenBank text file; pass a sequence file")
  text = raw.decode("ascii", errors="replace")
  if "\r" in text:  # Windows (CRLF) and classic Mac (CR) line endings
    text = text.replace("\r\n", "\n").replace("\r", "\n")
  return text


def _detect_format(path: str, text: str, fmt: str | None) -> str:
  if fmt:
    if fmt not in ("fasta", "genbank"):
      raise UserError(f"{path}: unknown format {fmt!r}; use fasta or genbank")
    return fmt
  base = _strip_gz(os.path.basename(path))
  if base.endswith(GENBANK_EXTS):
    return "genbank"
  if base.endswith(FASTA_EXTS):
    return "fasta"
  first = text.lstrip()[:5]
  if first.startswith(">"):
    return "fasta"
  if first.startswith("LOCUS"):
    return "genbank"
  raise UserError(f"{path}: cannot tell the format from the extension or the first line; "
                  "name it .fa/.gb or pass --format fasta|genbank")


def _fasta_records(path: str, text: str) -> Iterator[tuple[str, str]]:
  """(first word of the title, letters) per FASTA record, one record in memory at a time. As Biopython's 'fasta'
  reader: a record runs to the next line starting with '>', and spaces, tabs and line breaks are dropped; unlike
  it, blank lines before the first record are allowed."""
  start = len(text) - len(text.lstrip())
  if not text.startswith(">", start):
    raise UserError(f"{path}: not FASTA (the first non-blank line must start with '>'); "
                    "pass --format genbank if it is GenBank")
  i, n = start, len(text)
  while i < n:
    eol = text.find("\n", i)
    eol = n if eol < 0 else eol
    words = text[i + 1:eol].split(None, 1)
    nxt = text.find("\n>", eol)
    end = n if nxt < 0 else nxt + 1
    letters = text[eol + 1:end]
    for ch in "\n \t\r":  # one copy at a time: a long record costs a few times its length, not ten
      if ch in letters:
        letters = letters.replace(ch, "")
    yield (words[0] if words else ""), letters
    i = end


def _seq_records(path: str, text: str) -> list:
  """Biopython SeqRecords of a GenBank text with their sequence letters checked; parser failures become user
  errors."""
  if not text.lstrip().startswith("LOCUS"):
    raise UserError(f"{path}: not GenBank (the first line must start with LOCUS); pass --format fasta if it is FASTA")
  try:
    with warnings.catch_warnings():  # Biopython warns on some malformed input; dnajax says it in one line instead
      warnings.simplefilter("ignore")
      parsed = list(SeqIO.parse(io.StringIO(text), "genbank"))
    for rec in parsed:
      try:
        str(rec.seq)
      except Exception:  # Bio.Seq.UndefinedSequenceError: a GenBank record without ORIGIN data
        raise UserError(f"{path}: record {rec.id}: has no sequence data; use a file that contains the "
                        "sequence") from None
  except UserError:
    raise
  except Exception as e:  # Biopython raises ValueError/AssertionError on malformed or truncated files
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise UserError(f"{path}: malformed or truncated genbank file ({msg}); check the file is complete") from None
  if not parsed:
    raise UserError(f"{path}: no genbank records found; check the file")
  if not text.rstrip().endswith("//"):
    raise UserError(f"{path}: GenBank file is truncated (no closing '//'); download the file again")
  return parsed


def _parse(path: str, text: str, fmt: str) -> Iterator[tuple[str, str, np.ndarray | None]]:
  """(record id, sequence letters, codon positions or None) triples, FASTA records one at a time."""
  if fmt == "fasta":
    for k, (name, letters) in enumerate(_fasta_records(path, text)):
      yield name or f"record{k}", letters, None
    return
  for k, rec in enumerate(_seq_records(path, text)):
    letters = str(rec.seq)
    yield rec.id or f"record{k}", letters, features.codon_positions(rec, len(letters))


def normalise(name: str, letters: str, path: str, allow_query: bool = False) -> Record:
  """Letters -> token ids, soft-mask flags; rejects anything that is not a nucleotide sequence."""
  if not letters:
    raise UserError(f"{path}: record {name}: empty sequence; remove the record")
  raw = np.frombuffer(letters.encode("ascii", errors="replace"), dtype=np.uint8)
  ids = tokens.ENCODE_TABLE[raw]
  bad = ids == tokens.INVALID
  if not allow_query:
    bad |= ids == tokens.MASK
  if bad.any():
    pos = int(np.argmax(bad))
    hint = "'?' marks positions to fill and is accepted by predict only" if letters[pos] == "?" else \
        "is this a protein FASTA? dnajax reads DNA/RNA only"
    raise UserError(f"{path}: record {name}: position {pos}: letter {letters[pos]!r} is not an IUPAC nucleotide "
                    f"code; {hint}")
  n_pos = np.flatnonzero(ids == tokens.N)  # ambiguity codes other than N/n (usually few: no full-size temporaries)
  ambiguous_fraction = np.count_nonzero((raw[n_pos] & 0xDF) != ord("N")) / len(ids)
  if ambiguous_fraction > MAX_AMBIGUOUS_FRACTION:
    raise UserError(f"{path}: record {name}: {100 * ambiguous_fraction:.0f}% IUPAC ambiguity codes other than N; "
                    "likely a protein sequence, dnajax reads DNA/RNA only")
  del bad
  return Record(name=name, ids=ids, soft_masked=raw >= ord("a"), source=path)  # '?' is below 'a': never soft


def read_file(path: str, fmt: str | None = None, allow_query: bool = False) -> list[Record]:
  """The normalised records of one FASTA or GenBank file (format from `fmt`, else the extension, else the first
  line); '?' allowed only with `allow_query`. Raises UserError (one line naming file, record, position) for
  anything that is not nucleotide sequence."""
  text = read_text(path)
  fmt = _detect_format(path, text, fmt)
  records = []
  for name, letters, codon in _parse(path, text, fmt):
    records.append(normalise(name, letters, path, allow_query))
    records[-1].codon_position = codon
  return records


def read_files(paths: Sequence[str], fmt: str | None = None, allow_query: bool = False) -> list[Record]:
  """`read_file` of every file of `paths` (directories expanded), in order."""
  records: list[Record] = []
  for path in expand_inputs(paths):
    records.extend(read_file(path, fmt, allow_query))
  return records


def read_coding_sequences(paths: Sequence[str], fmt: str | None = None) -> tuple[list[Record], dict]:
  """Coding sequences, each in frame from its first base: FASTA records as they are (a CDS set), and the CDS
  features of GenBank records (spliced and on the coding strand; /pseudo features skipped). Sequences whose length
  is not a multiple of 3 are skipped. Returns (records, counts of what was kept and skipped).

  Raises UserError when no coding sequence is left."""
  records, counts = [], {"kept": 0, "skipped_pseudo": 0, "skipped_not_multiple_of_3": 0}
  for path in expand_inputs(paths):
    text = read_text(path)
    if _detect_format(path, text, fmt) == "fasta":
      pairs = [(name or f"record{k}", letters) for k, (name, letters) in enumerate(_fasta_records(path, text))]
    else:
      pairs = [pair for rec in _seq_records(path, text) for pair in features.coding_sequences(rec, counts)]
    for name, letters in pairs:
      if len(letters) % 3:
        counts["skipped_not_multiple_of_3"] += 1
        continue
      records.append(normalise(name, letters, path))
  counts["kept"] = len(records)
  if not records:
    raise UserError(f"{', '.join(paths)}: no coding sequence (a CDS FASTA, or GenBank CDS features, with a length "
                    "that is a multiple of 3); check the files")
  return records, counts
