"""Sequence tables for downstream use (embedding, fine-tuning): FASTA, or CSV/TSV with a sequence column.

One reader for every verb that takes a table of sequences with optional labels. A table is FASTA (the id is the
record id; a label may ride in the title line as `>id label=VALUE`) or CSV/TSV with a header line: a sequence column
(case-insensitive; spaces and line breaks inside a sequence cell are dropped, as in FASTA), an optional label column
and an optional `id` column (else the 1-based data row number is the id). The text goes through `text.read_text`
(gzip, byte-order marks, line endings) and every sequence through `readers.normalise` (U read as T, IUPAC ambiguity
codes as N), so a table reads like any other dnajax input. Every bad row is one `UserError` line naming the file and
the row (1-based data row and its line) or record id.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import os
from collections.abc import Iterator

import numpy as np

from dnajax.data import readers
from dnajax.data import text as text_lib
from dnajax.errors import UserError

TABLE_EXTS = {".csv": "csv", ".tsv": "tsv"}
DELIMITERS = {"csv": ",", "tsv": "\t"}
MAX_FIELD = 1 << 30  # characters per CSV field (the csv module's default, 131,072, is shorter than many genes)


@dataclasses.dataclass
class SequenceTable:
  """The rows of a sequence table, in file order.

  ids: one string per row (FASTA record id, the `id` column, else the 1-based data row number);
  seqs: token ids uint8[len] per row (A/C/G/T/N, see `dnajax.data.tokens`), never empty;
  labels: one string per row, or None when the table carries no label at all ('' for a row without one, possible
  only when labels were not required); source: the file path; format: 'fasta', 'csv' or 'tsv'.
  """

  ids: list[str]
  seqs: list[np.ndarray]
  labels: list[str] | None
  source: str
  format: str

  def __len__(self) -> int:
    return len(self.seqs)


def _first_line(text: str, width: int = 40) -> str:
  line = text.lstrip().split("\n", 1)[0]
  return ascii(line[:width]) + ("..." if len(line) > width else "")


def _name(path: str) -> str:
  """The file name, lower case, without a gzip extension."""
  base = os.path.basename(path).lower()
  for ext in readers.GZIP_EXTS:
    base = base.removesuffix(ext)
  return base


def _expected(path: str) -> str:
  """What an empty table file should have held, by its extension (for the error line)."""
  base = _name(path)
  if os.path.splitext(base)[1] in TABLE_EXTS:
    return "a CSV/TSV table: a header line naming its columns, then one row per sequence"
  if base.endswith(readers.FASTA_EXTS):
    return "FASTA records"
  return "FASTA records or a CSV/TSV table with a header line"


def is_table(path: str) -> bool:
  """Whether `path` is named as a CSV/TSV table (.csv, .tsv, optionally .gz)."""
  return os.path.splitext(_name(path))[1] in TABLE_EXTS


def detect_format(path: str, text: str, sequence_column: str = "sequence") -> str:
  """'fasta', 'csv' or 'tsv': from the extension (.csv, .tsv, a FASTA one; optionally .gz), else from the first
  non-blank line ('>': FASTA; a tab: TSV; a comma, or only the sequence column's name: CSV).

  Raises UserError when neither tells."""
  base = _name(path)
  ext = os.path.splitext(base)[1]
  if ext in TABLE_EXTS:
    return TABLE_EXTS[ext]
  if base.endswith(readers.FASTA_EXTS):
    return "fasta"
  line = text.lstrip().split("\n", 1)[0]
  if line.startswith(">"):
    return "fasta"
  if "\t" in line:
    return "tsv"
  if "," in line or line.strip().strip('"').lower() == sequence_column.lower():
    return "csv"
  raise UserError(f"{path}: cannot tell the table format: the extension is not .csv, .tsv or a FASTA one and the "
                  f"first line {_first_line(text)} is neither a '>' title nor a CSV/TSV header with a "
                  f"{sequence_column!r} column; name the file .csv, .tsv or .fa")


def read_table(path: str, sequence_column: str = "sequence", label_column: str = "label",
               require_labels: bool = False) -> SequenceTable:
  """The rows of a FASTA, CSV or TSV file (see the module docstring; format by `detect_format`). Column names are
  matched case-insensitively and without surrounding spaces; in FASTA the label is the title's `LABEL_COLUMN=VALUE`
  word (`label=...` by default).

  Raises UserError (one line naming the file and the row or record) for an unreadable, empty or non-text file, a
  missing or ambiguous sequence column, a ragged row, an empty id, an empty sequence or one with letters that are
  not nucleotide codes, a table without rows, and - with `require_labels` - a missing label column or a row
  without a label. An id on more than one row is a warning naming them (`readers.warn_repeated_ids`)."""
  text = text_lib.read_text(path, _expected(path))
  fmt = detect_format(path, text, sequence_column)
  rows = _fasta_rows(path, text, label_column) if fmt == "fasta" else \
      _delimited_rows(path, text, DELIMITERS[fmt], sequence_column, label_column, require_labels)
  ids, seqs, labels = [], [], []
  for where, ident, letters, label in rows:
    if require_labels and not label:
      hint = (f"write '>{ident} {label_column}=VALUE' in its title line" if fmt == "fasta"
              else f"fill in its {label_column!r} cell or drop the row")
      raise UserError(f"{where}{f': record {ident}' if fmt == 'fasta' else ''}: no label; {hint}")
    seqs.append(readers.normalise(ident, letters, where).ids)
    ids.append(ident)
    labels.append(label)
  if not seqs:
    raise UserError(f"{path}: no sequences (the table has no data rows); pass a table with at least one row")
  readers.warn_repeated_ids(ids, path, "record" if fmt == "fasta" else "row")
  has_labels = any(label is not None for label in labels)
  return SequenceTable(ids, seqs, [label or "" for label in labels] if has_labels else None, path, fmt)


def _fasta_rows(path: str, text: str, label_column: str) -> Iterator[tuple[str, str, str, str | None]]:
  """(where, id, letters, label or None) per record; `where` is the path (the record id follows in messages)."""
  start = len(text) - len(text.lstrip())
  if not text.startswith(">", start):
    raise UserError(f"{path}: not FASTA: the first non-blank line {_first_line(text)} does not start with '>'; a "
                    "FASTA file starts with a '>' title line (or name a table .csv or .tsv)")
  key = label_column.strip().lower()
  for k, block in enumerate(text[start + 1:].split("\n>"), 1):
    title, _, body = block.partition("\n")
    words = title.split()
    label = None
    for word in words[1:]:
      name, eq, value = word.partition("=")
      if eq and name.lower() == key:
        label = value.strip("\"'")
    yield path, words[0] if words else str(k), "".join(body.split()), label


def _columns(path: str, header: list[str], sequence_column: str, label_column: str,
             require_labels: bool) -> tuple[int, int | None, int | None]:
  """(sequence, label or None, id or None) column indices of a header row."""
  names = [h.strip().lower() for h in header]

  def find(name: str, required: bool, option: str) -> int | None:
    hits = [i for i, h in enumerate(names) if h == name.strip().lower()]
    if len(hits) > 1:
      raise UserError(f"{path}: header line: {len(hits)} columns are named {name!r} (case-insensitively); rename "
                      "all but one")
    if not hits and required:
      shown = ", ".join(ascii(h.strip()) for h in header[:12]) + (", ..." if len(header) > 12 else "")
      hint = f"pass {option} NAME"
      if len(header) == 1 and ";" in header[0]:
        hint = "the header holds ';': save the table comma- or tab-separated"
      raise UserError(f"{path}: header line: no column {name!r} (columns: {shown}); {hint}")
    return hits[0] if hits else None

  seq = find(sequence_column, True, "--sequence-column")
  return seq, find(label_column, require_labels, "--label-column"), find("id", False, "")


def _delimited_rows(path: str, text: str, delimiter: str, sequence_column: str, label_column: str,
                    require_labels: bool) -> list[tuple[str, str, str, str | None]]:
  """(where, id, letters, label or None) per data row of a CSV/TSV text; rows whose fields are all blank (blank
  lines, a spreadsheet's trailing ',,,') are skipped and not numbered."""
  old_limit = csv.field_size_limit(MAX_FIELD)  # restored before returning: no lasting change to the csv module
  reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
  out = []
  try:
    header = next((r for r in reader if any(f.strip() for f in r)), None)
    if header is None:
      raise UserError(f"{path}: no header line; a table starts with a header naming its columns")
    seq_col, label_col, id_col = _columns(path, header, sequence_column, label_column, require_labels)
    for row in reader:
      if not any(f.strip() for f in row):
        continue
      where = f"{path}: row {len(out) + 1} (line {reader.line_num})"
      if len(row) != len(header):
        sep = "tab" if delimiter == "\t" else repr(delimiter)
        raise UserError(f"{where}: {len(row)} fields where the header has {len(header)}; give every row one field "
                        f"per column (quote a field that holds a {sep})")
      ident = str(len(out) + 1)
      if id_col is not None:
        ident = row[id_col].strip()
        if not ident:
          raise UserError(f"{where}: empty id; fill in the id or drop the id column (rows are then numbered)")
      label = row[label_col].strip() if label_col is not None else None
      out.append((where, ident, "".join(row[seq_col].split()), label))
  except csv.Error as e:
    raise UserError(f"{path}: line {reader.line_num}: not a well-formed table ({e}); check the quoting") from None
  finally:
    csv.field_size_limit(old_limit)
  return out
