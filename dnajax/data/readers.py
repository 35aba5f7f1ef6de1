"""Reading FASTA and GenBank files (plain, gzip or bgzip) into normalised token arrays.

Every way a file can fail to be a nucleotide sequence file ends in one `UserError` line naming the file and,
where it applies, the record and position. Nothing here writes anything.
"""

from __future__ import annotations

import dataclasses
import glob
import io
import itertools
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
from Bio import SeqIO

from dnajax.data import features, tokens
from dnajax.data import text as text_lib
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
  """Files as given; directories replaced by the sequence files directly inside them (sorted), globs by the files
  they match (sorted). See `expand_groups` for which entry each file came from."""
  return [f for f, _ in expand_groups(paths)]


def short_names(entries: Sequence[str], slash: str | None = None) -> list[str]:
  """What each input entry (file, directory or glob) is called in per-source results: its basename (a glob's last
  part, e.g. `chr*.fa`), or the entry as given where basenames repeat, with '/' written `slash` when given (names
  that become metric tags must not hold '/')."""
  base = [os.path.basename(e.rstrip("/")) or e for e in entries]
  names = [b if base.count(b) == 1 else e.strip("/") for b, e in zip(base, entries)]
  return [n.replace("/", slash) for n in names] if slash is not None else names


def expand_groups(paths: Sequence[str]) -> list[tuple[str, str]]:
  """(file, the entry of `paths` it came from) for every input file, in order: a file is its own entry; a
  directory stands for the sequence files directly inside it and a glob (`*`, `?`, `[...]`, as the shell would,
  for a path that does not exist as written) for the files it matches, sorted. Mixtures weight entries
  (`data.weights`): list files one by one to weight them one by one. Raises UserError for an entry that names
  nothing."""
  out: list[tuple[str, str]] = []
  for p in paths:
    if os.path.isdir(p):
      found = sorted(os.path.join(p, f) for f in os.listdir(p)
                     if is_sequence_file(f) and os.path.isfile(os.path.join(p, f)))
      if not found:
        raise UserError(f"{p}: directory holds no sequence files (expected extensions "
                        f"{', '.join(FASTA_EXTS + GENBANK_EXTS)}, optionally .gz); pass files instead")
      out.extend((f, p) for f in found)
    elif os.path.isfile(p):
      out.append((p, p))
    elif glob.has_magic(p):
      found = sorted(f for f in glob.glob(p) if os.path.isfile(f))
      if not found:
        raise UserError(f"{p}: the pattern matches no file; check the path")
      out.extend((f, p) for f in found)
    else:
      raise UserError(f"{p}: no such file or directory; check the path")
  if not out:
    raise UserError("no input files given; pass at least one FASTA or GenBank file")
  return out


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


def fasta_pieces(path: str, blocks: Iterable[str]) -> Iterator[tuple[int, str, str]]:
  """(record number k, first word of the title, letters) pieces of the FASTA records in text `blocks` (as
  `text.iter_text` gives them), in order: every record gives one piece or more (the letters of a long record come in
  pieces of about a block, so memory stays bounded), an empty record one empty piece. As Biopython's 'fasta' reader:
  a record runs to the next line starting with '>', and spaces, tabs and line breaks are dropped; unlike it, blank
  lines before the first record are allowed.

  Raises UserError when the first non-blank line does not start with '>'."""
  it = iter(blocks)
  buf = next(it, "")
  start = len(buf) - len(buf.lstrip())
  if not buf.startswith(">", start):
    hint = ("it starts with LOCUS, as GenBank does: pass --format genbank or name the file .gb"
            if buf.startswith("LOCUS", start) else "a FASTA file starts with a '>' title line")
    raise UserError(f"{path}: not FASTA: the first non-blank line {_first_line(buf)} does not start with '>'; {hint}")
  buf, eof, k = buf[start:], False, 0
  while buf:  # buf starts with a record's '>'
    eol = buf.find("\n")
    while eol < 0 and not eof:
      more = next(it, None)
      eof = more is None
      eol = buf.find("\n") if eof else (buf := buf + more).find("\n")
    eol = len(buf) if eol < 0 else eol
    words = buf[1:eol].split(None, 1)
    name = words[0] if words else ""
    buf = buf[eol:]  # buf[0] stands before the letters: the title's line break (a space when a block was cut)
    while True:
      j = buf.find("\n>")
      if j >= 0:
        yield k, name, _drop_spaces(buf[1:j + 1])
        buf = buf[j + 1:]
        break
      more = None if eof else next(it, None)
      if more is None:
        eof = True
        yield k, name, _drop_spaces(buf[1:])
        buf = ""
        break
      if buf.endswith("\n"):  # the line break may start '\n>' with the next block
        yield k, name, _drop_spaces(buf[1:-1])
        buf = "\n" + more
      else:
        yield k, name, _drop_spaces(buf[1:])
        buf = " " + more
    k += 1


def _drop_spaces(letters: str) -> str:
  for ch in "\n \t\r":  # one copy at a time: a long piece costs a few times its length, not ten
    if ch in letters:
      letters = letters.replace(ch, "")
  return letters


def fasta_records(path: str, text: str) -> Iterator[tuple[str, str]]:
  """(first word of the title, letters) per FASTA record of a whole text (see `fasta_pieces`)."""
  for _, group in itertools.groupby(fasta_pieces(path, [text]), key=lambda piece: piece[0]):
    group = list(group)
    yield group[0][1], "".join(letters for _, _, letters in group)


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
  check = _RecordCheck(name, path)
  rec = check.piece(letters, allow_query, keep_letters)
  check.done()
  return rec


class _RecordCheck:
  """Normalises one record's letters piece by piece (`piece`) and checks the whole record at the end (`done`):
  the error lines name the record and the position in it."""

  def __init__(self, name: str, path: str):
    self.name, self.path, self.length, self.ambiguous = name, path, 0, 0

  def piece(self, letters: str, allow_query: bool, keep_letters: bool) -> Record:
    name, path, pos0 = self.name, self.path, self.length
    if not letters.isascii():
      pos = re.search(r"[^\x00-\x7f]", letters).start()
      raise UserError(f"{path}: record {name}: position {pos0 + pos}: character {ascii(letters[pos])} is not an "
                      f"IUPAC nucleotide code; {_letter_hint(letters, pos, 0)}")
    raw = np.frombuffer(letters.encode("ascii"), dtype=np.uint8)
    ids = tokens.ENCODE_TABLE[raw]
    bad = ids == tokens.INVALID
    if not allow_query:
      bad |= ids == tokens.MASK
    if bad.any():
      pos = int(np.argmax(bad))
      n_bad = np.count_nonzero(bad & (((raw | 0x20) >= ord("a")) & ((raw | 0x20) <= ord("z"))))
      raise UserError(f"{path}: record {name}: position {pos0 + pos}: letter {letters[pos]!r} is not an IUPAC "
                      f"nucleotide code; {_letter_hint(letters, pos, n_bad)}")
    del bad
    n_pos = np.flatnonzero(ids == tokens.N)  # ambiguity codes other than N/n (usually few: no full-size temporaries)
    self.ambiguous += np.count_nonzero((raw[n_pos] & 0xDF) != ord("N"))
    self.length += len(ids)
    return Record(name=name, ids=ids, soft_masked=raw >= ord("a"), source=path,  # '?' is below 'a': never soft
                  letters=raw if keep_letters else None)

  def done(self) -> None:
    if not self.length:
      raise UserError(f"{self.path}: record {self.name}: empty sequence; remove the record")
    if self.ambiguous / self.length > MAX_AMBIGUOUS_FRACTION:
      raise UserError(f"{self.path}: record {self.name}: {100 * self.ambiguous / self.length:.0f}% IUPAC ambiguity "
                      "codes other than N; likely a protein sequence, dnajax reads DNA/RNA only")


def stream_file(path: str, fmt: str | None = None, allow_query: bool = False,
                keep_letters: bool = False) -> Iterator[tuple[int, Record]]:
  """(record number k, piece) for the records of one FASTA or GenBank file, in order: a FASTA record comes in
  pieces of about `text.TEXT_BLOCK` bases (`Record`s with the record's name and a stretch of its bases), so memory stays
  bounded by the block whatever the file's size; a GenBank record is one piece (Biopython reads the file whole).
  Every record is checked as `read_file` checks it, when its last piece has been read. Raises UserError as
  `read_file` does."""
  with text_lib.open_binary(path) as f:
    blocks = text_lib.iter_text(f, path)
    first = next(blocks)
    fmt = _detect_format(path, first, fmt)
    blocks = itertools.chain([first], blocks)
    if fmt == "genbank":
      for k, rec in enumerate(_genbank_records(path, "".join(blocks), allow_query, keep_letters)):
        yield k, rec
      return
    check, current = None, -1
    for k, name, letters in fasta_pieces(path, blocks):
      if k != current:
        if check is not None:
          check.done()
        check, current = _RecordCheck(name or f"record{k}", path), k
      yield k, check.piece(letters, allow_query, keep_letters)
    check.done()  # (a FASTA text gives one piece at least)


def _genbank_records(path: str, text: str, allow_query: bool, keep_letters: bool) -> Iterator[Record]:
  for k, rec in enumerate(_seq_records(path, text)):
    letters = str(rec.seq)
    counts = features.new_counts()
    codon = features.codon_positions(rec, len(letters), counts)
    record = normalise(rec.id or f"record{k}", letters, path, allow_query, keep_letters)
    record.codon_position, record.cds_counts = codon, (counts if codon is not None else None)
    yield record


def read_file(path: str, fmt: str | None = None, allow_query: bool = False,
              keep_letters: bool = False) -> list[Record]:
  """The normalised records of one FASTA or GenBank file (format from `fmt`, else the extension, else the first
  line); '?' allowed only with `allow_query`; with `keep_letters` each record keeps its letters as in the file
  (`Record.letters`, for commands that write them back out). Raises UserError (one line naming file, record,
  position) for anything that is not nucleotide sequence."""
  records = []
  for _, group in itertools.groupby(stream_file(path, fmt, allow_query, keep_letters), key=lambda kp: kp[0]):
    pieces = [piece for _, piece in group]
    rec = pieces[0]
    if len(pieces) > 1:
      rec.ids = np.concatenate([p.ids for p in pieces])
      rec.soft_masked = np.concatenate([p.soft_masked for p in pieces])
      rec.letters = np.concatenate([p.letters for p in pieces]) if keep_letters else None
    records.append(rec)
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
    text = text_lib.read_text(path)
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
