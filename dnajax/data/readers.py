"""Reading FASTA and GenBank files (plain, gzip or bgzip) into normalised token arrays.

Every way a file can fail to be a nucleotide sequence file ends in one `UserError` line naming the file and,
where it applies, the record and position. Nothing here writes anything.
"""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import io
import os
import re
import warnings
import zlib
from collections.abc import Iterator, Sequence

import numpy as np
from Bio import SeqIO

from dnajax.data import features, tokens
from dnajax.errors import UserError, warn

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


UTF8_BOM = b"\xef\xbb\xbf"
# Byte-order marks of the Unicode encodings other than UTF-8 (UTF-32 first: its little-endian mark begins with
# UTF-16's), with the codec that decodes the text after the mark.
_WIDE_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32LE"), (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32BE"),
              (b"\xff\xfe", "utf-16-le", "UTF-16LE"), (b"\xfe\xff", "utf-16-be", "UTF-16BE"))
# What a non-text file shows in its first bytes, for the error line (only formats whose mark is unambiguous).
_DECOMPRESS = "decompress it first (dnajax reads plain, gzip and bgzip files)"
_MAGIC = ((b"BZh", f"it starts like bzip2-compressed data ('BZh'): {_DECOMPRESS}"),
          (b"\xfd7zXZ\x00", f"it starts like xz-compressed data: {_DECOMPRESS}"),
          (b"\x28\xb5\x2f\xfd", f"it starts like zstd-compressed data: {_DECOMPRESS}"),
          (b"PK\x03\x04", "it starts like a zip archive ('PK'): extract the sequence file from it"),
          (b"\x89HDF", "it starts like an HDF5 file: pass a FASTA or GenBank text file"),
          (b"%PDF", "it starts like a PDF document ('%PDF'): pass a FASTA or GenBank text file"))
TEXT_SAMPLE = 65536  # bytes inspected to decide whether a file is text
MAX_NON_TEXT_FRACTION = 0.01  # of the sample; fewer stray bytes are kept (as U+FFFD) and judged where they sit


def _control_codes(units: np.ndarray) -> np.ndarray:
  """Positions of control codes (everything below 32 but tab, line feed and carriage return, and DEL)."""
  return np.flatnonzero(((units < 32) & (units != 9) & (units != 10) & (units != 13)) | (units == 127))


def _utf16_half(zeros: bytes, chars: bytes) -> bool:
  """True when `zeros` are all 0x00 and `chars` are text characters: ASCII text saved as UTF-16."""
  return len(chars) >= 2 and not any(zeros) and not len(_control_codes(np.frombuffer(chars, np.uint8)))


def _refuse_non_text(where: str, raw: bytes, offset: int, n_bad: int, sample: int) -> None:
  """Raise the one-line error for data that is not text: which byte at which offset, and what the bytes show."""
  shown = next((what for magic, what in _MAGIC if raw.startswith(magic)), None)
  even, odd = raw[0:sample:2], raw[1:sample:2]
  if shown is None and any(_utf16_half(zeros, chars) for zeros, chars in ((even, odd), (odd, even))):
    shown = ("every second byte is 0x00, as in UTF-16 text without a byte-order mark; save it as UTF-8 or ASCII "
             "text")
  shown = shown or "pass a FASTA or GenBank text file"
  raise UserError(f"{where}: not text: byte 0x{raw[offset]:02x} at offset {offset} is not a text character "
                  f"({n_bad:,} of the first {sample:,} bytes are not); {shown}")


def text_from_bytes(raw: bytes, where: str, expected: str = "FASTA or GenBank records") -> str:
  """A file's bytes as text, exactly as `read_text` reads them (`where` names the source in error lines).

  gzip/bgzip data (by magic bytes) is decompressed; a UTF-8 byte-order mark is dropped and UTF-16/UTF-32 text
  with a byte-order mark is decoded, so such a file reads exactly like the same file saved as plain ASCII; byte-order
  marks at the start of later lines (files concatenated after saving) are dropped too; other UTF-8 is kept, stray
  bytes that are not UTF-8 become U+FFFD (rejected later if they sit in a sequence); line endings become '\\n'.

  Raises UserError (one line) for truncated or corrupt gzip data, an empty file (saying that `expected` was
  expected), and data that is not text (naming
  the first byte that is not text and its offset, and what the bytes show where that is unambiguous)."""
  if raw[:2] == b"\x1f\x8b":
    try:
      raw = gzip.decompress(raw)
    except (EOFError, OSError, zlib.error):
      raise UserError(f"{where}: gzip data is truncated or corrupt; download the file again") from None
    where = f"{where} (decompressed)"
  wide = next(((bom, codec, label) for bom, codec, label in _WIDE_BOMS if raw.startswith(bom)), None)
  if wide:
    bom, codec, label = wide
    try:
      text = raw[len(bom):].decode(codec)
    except UnicodeDecodeError as e:
      raise UserError(f"{where}: starts with a {label} byte-order mark but byte {e.start + len(bom)} is not "
                      f"{label} ({e.reason}); save the file as UTF-8 or ASCII text") from None
    units = np.frombuffer(text[:TEXT_SAMPLE].encode("utf-32-le"), dtype=np.uint32)
    bad = _control_codes(units)
    if len(bad) and (0 in units[bad] or len(bad) > MAX_NON_TEXT_FRACTION * len(units)):
      pos = int(bad[0])
      raise UserError(f"{where}: {label} text (byte-order mark) holding character U+{int(units[pos]):04X} at byte "
                      f"{len(bom) + len(text[:pos].encode(codec))}, which is not text; pass a FASTA or GenBank "
                      "text file")
  else:
    start = len(UTF8_BOM) if raw.startswith(UTF8_BOM) else 0
    head = raw[start:start + TEXT_SAMPLE]
    bad = _control_codes(np.frombuffer(head, dtype=np.uint8))
    first = int(bad[0]) if len(bad) else len(head)
    n_bad = len(bad)
    if not head.isascii():
      try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # a character cut at the end is fine
      except UnicodeDecodeError as e:
        first = min(first, e.start)
        n_bad += head.decode("utf-8", errors="replace").count("\ufffd")
    if first < len(head) and (b"\x00" in head or n_bad > MAX_NON_TEXT_FRACTION * len(head)):
      _refuse_non_text(where, raw, start + first, n_bad, len(head))
    text = raw[start:].decode("utf-8", errors="replace")
  if "\r" in text:  # Windows (CRLF) and classic Mac (CR) line endings
    text = text.replace("\r\n", "\n").replace("\r", "\n")
  if "\ufeff" in text:  # a byte-order mark at the start of the text or of a line (saved files concatenated)
    text = text.removeprefix("\ufeff").replace("\n\ufeff", "\n")
  if not text or text.isspace():  # (no stripped copy of a genome-sized text)
    raise UserError(f"{where}: file is empty; expected {expected}")
  return text


def read_text(path: str, expected: str = "FASTA or GenBank records") -> str:
  """Whole file as text (see `text_from_bytes`: gzip/bgzip decompressed, byte-order marks honoured, line endings
  normalised to '\\n'; `expected` says what an empty file should have held). Every reader of a user's text file
  goes through this (and `dnajax fetch` validates its downloads through `text_from_bytes`).

  Raises UserError for unreadable, empty, non-text and truncated files."""
  try:
    with open(path, "rb") as f:
      raw = f.read()
  except OSError as e:
    raise UserError(f"{path}: cannot read ({e.strerror}); check the path and permissions") from None
  return text_from_bytes(raw, path, expected)


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
  raise UserError(f"{path}: cannot tell the format: the extension is neither a FASTA nor a GenBank one and the "
                  f"first line {_first_line(text)} starts with neither '>' (FASTA) nor LOCUS (GenBank); pass a "
                  "FASTA or GenBank file")


def _first_line(text: str, width: int = 40) -> str:
  """The first non-blank line of `text`, quoted safely for an error line (ASCII escapes, at most `width`
  characters, '...' when cut)."""
  line = text.lstrip().split("\n", 1)[0]
  return ascii(line[:width]) + ("..." if len(line) > width else "")


def fasta_records(path: str, text: str) -> Iterator[tuple[str, str]]:
  """(first word of the title, letters) per FASTA record, one record in memory at a time. As Biopython's 'fasta'
  reader: a record runs to the next line starting with '>', and spaces, tabs and line breaks are dropped; unlike
  it, blank lines before the first record are allowed."""
  start = len(text) - len(text.lstrip())
  if not text.startswith(">", start):
    hint = ("it starts with LOCUS, as GenBank does: pass --format genbank or name the file .gb"
            if text.startswith("LOCUS", start) else "a FASTA file starts with a '>' title line")
    raise UserError(f"{path}: not FASTA: the first non-blank line {_first_line(text)} does not start with '>'; {hint}")
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
    hint = ("it starts with '>', as FASTA does: pass --format fasta or name the file .fa"
            if text.lstrip().startswith(">") else "a GenBank file starts with a LOCUS line")
    raise UserError(f"{path}: not GenBank: the first line {_first_line(text)} does not start with LOCUS; {hint}")
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
    for k, (name, letters) in enumerate(fasta_records(path, text)):
      yield name or f"record{k}", letters, (None, None)
    return
  for k, rec in enumerate(_seq_records(path, text)):
    letters = str(rec.seq)
    counts = features.new_counts()
    codon = features.codon_positions(rec, len(letters), counts)
    yield rec.id or f"record{k}", letters, (codon, counts if codon is not None else None)


def _letter_hint(letters: str, pos: int, n_bad: int) -> str:
  """What the first bad letter of a record shows, for the error line (nothing the letters do not support)."""
  ch = letters[pos]
  if ch == "?":
    return "'?' marks positions to fill and is accepted only by predict on a pretraining run"
  if ch == "\ufffd":
    return "the file holds bytes that are not UTF-8 text there; fix or remove them"
  if ch in "-.":
    return "it is an alignment gap; dnajax reads unaligned sequences: remove the gaps"
  if ch.isascii() and ch.isalpha():
    if n_bad > MAX_AMBIGUOUS_FRACTION * len(letters):
      return (f"{100 * n_bad / len(letters):.0f}% of the record's letters are not nucleotide codes (amino-acid "
              "letters): is this a protein FASTA? dnajax reads DNA/RNA only")
    return "IUPAC nucleotide codes are ACGTU and RYSWKMBDHVN; fix or remove the letter"
  return "a sequence holds IUPAC nucleotide letters only (ACGTU, RYSWKMBDHVN); fix or remove it"


def normalise(name: str, letters: str, path: str, allow_query: bool = False, keep_letters: bool = False) -> Record:
  """Letters -> token ids (uint8[L]) and soft-mask flags (bool[L], lowercase in the file); with `keep_letters`
  the record also keeps the letters themselves (`Record.letters`, uint8[L] bytes as in the file). '?' becomes MASK
  only with `allow_query`.

  Raises UserError naming the record and the position of the first letter that is not a nucleotide code, and for
  an empty record or one with too many ambiguity codes (a protein)."""
  if not letters:
    raise UserError(f"{path}: record {name}: empty sequence; remove the record")
  if not letters.isascii():
    pos = re.search(r"[^\x00-\x7f]", letters).start()
    raise UserError(f"{path}: record {name}: position {pos}: character {ascii(letters[pos])} is not an IUPAC "
                    f"nucleotide code; {_letter_hint(letters, pos, 0)}")
  raw = np.frombuffer(letters.encode("ascii"), dtype=np.uint8)
  ids = tokens.ENCODE_TABLE[raw]
  bad = ids == tokens.INVALID
  if not allow_query:
    bad |= ids == tokens.MASK
  if bad.any():
    pos = int(np.argmax(bad))
    n_bad = np.count_nonzero(bad & (((raw | 0x20) >= ord("a")) & ((raw | 0x20) <= ord("z"))))
    raise UserError(f"{path}: record {name}: position {pos}: letter {letters[pos]!r} is not an IUPAC nucleotide "
                    f"code; {_letter_hint(letters, pos, n_bad)}")
  n_pos = np.flatnonzero(ids == tokens.N)  # ambiguity codes other than N/n (usually few: no full-size temporaries)
  ambiguous_fraction = np.count_nonzero((raw[n_pos] & 0xDF) != ord("N")) / len(ids)
  if ambiguous_fraction > MAX_AMBIGUOUS_FRACTION:
    raise UserError(f"{path}: record {name}: {100 * ambiguous_fraction:.0f}% IUPAC ambiguity codes other than N; "
                    "likely a protein sequence, dnajax reads DNA/RNA only")
  del bad
  return Record(name=name, ids=ids, soft_masked=raw >= ord("a"), source=path,  # '?' is below 'a': never soft
                letters=raw if keep_letters else None)


def read_file(path: str, fmt: str | None = None, allow_query: bool = False,
              keep_letters: bool = False) -> list[Record]:
  """The normalised records of one FASTA or GenBank file (format from `fmt`, else the extension, else the first
  line); '?' allowed only with `allow_query`; with `keep_letters` each record keeps its letters as in the file
  (`Record.letters`, for commands that write them back out). Raises UserError (one line naming file, record,
  position) for anything that is not nucleotide sequence."""
  text = read_text(path)
  fmt = _detect_format(path, text, fmt)
  records = []
  for name, letters, codon in _parse(path, text, fmt):
    records.append(normalise(name, letters, path, allow_query, keep_letters))
    records[-1].codon_position, records[-1].cds_counts = codon
  return records


def read_files(paths: Sequence[str], fmt: str | None = None, allow_query: bool = False,
               keep_letters: bool = False) -> list[Record]:
  """`read_file` of every file of `paths` (directories expanded), in order."""
  records: list[Record] = []
  for path in expand_inputs(paths):
    records.extend(read_file(path, fmt, allow_query, keep_letters))
  return records


def read_coding_sequences(paths: Sequence[str], fmt: str | None = None) -> tuple[list[Record], dict]:
  """Coding sequences, each in frame from its first base and a multiple of 3 long: FASTA records as they are (a CDS
  set; records whose length is not a multiple of 3 are skipped), and the usable CDS features of GenBank records
  (spliced, on the coding strand, /codon_start honoured, a 3'-partial codon trimmed; see `dnajax.data.features`).
  Returns (records, counts of what was kept and skipped, by kind).

  Raises UserError when no coding sequence is left."""
  records, counts = [], features.new_counts()
  for path in expand_inputs(paths):
    text = read_text(path)
    if _detect_format(path, text, fmt) == "fasta":
      for k, (name, letters) in enumerate(fasta_records(path, text)):
        kind = "skipped_not_multiple_of_3" if len(letters) % 3 else "kept"
        counts[kind] += 1
        if kind == "kept":
          records.append(normalise(name or f"record{k}", letters, path))
    else:
      for rec in _seq_records(path, text):
        records += [normalise(name, letters, path) for name, letters in features.coding_sequences(rec, counts)]
  if not records:
    raise UserError(f"{', '.join(paths)}: no coding sequence (a CDS FASTA, or GenBank CDS features, with a length "
                    f"that is a multiple of 3; {_describe_counts(counts)}); check the files")
  return records, counts


def warn_repeated_ids(ids: Sequence[str], where: str, unit: str = "record") -> dict[str, list[int]]:
  """Warns (one stderr line) when an id names more than one of `ids` (an input's records or rows, in order),
  naming each repeated id and the 1-based `unit` numbers (record, row) where it stands. Outputs keep one row per
  input row in input order, so the repeated ids repeat there too; a later join on id would keep only one. Returns
  {id: [numbers]} of the repeated ids (empty when every id is unique)."""
  at: dict[str, list[int]] = {}
  for k, ident in enumerate(ids, 1):
    at.setdefault(ident, []).append(k)
  repeated = {i: ks for i, ks in at.items() if len(ks) > 1}
  if repeated:
    shown = [f"{i!r} on {unit}s {', '.join(map(str, ks[:-1]))} and {ks[-1]}" for i, ks in list(repeated.items())[:5]]
    more = f" (and {len(repeated) - 5} more ids)" if len(repeated) > 5 else ""
    warn(f"{where}: the same id on more than one {unit}: {'; '.join(shown)}{more}; every {unit} is kept, in input "
         "order, so these ids repeat in outputs by id (a join on id keeps only one): make the ids unique to tell the "
         f"{unit}s apart")
  return repeated


def _describe_counts(counts: dict) -> str:
  return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items() if v) or "no CDS feature"
