"""Writing text outputs: whole files or nothing (atomic rename), FASTA entries and TSV tables."""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence


def fasta_entry(header: str, seq: str, width: int = 80) -> str:
  """One FASTA record as text: '>' + `header`, then the sequence in lines of `width` letters."""
  return f">{header}\n" + "".join(seq[i:i + width] + "\n" for i in range(0, len(seq), width))


def tsv_table(rows: Sequence[dict], columns: Sequence[str]) -> str:
  """A header line and one line per row: floats to 4 decimals, lists comma-joined, None (a value over nothing) and
  non-finite floats as empty cells."""
  def cell(x):
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
      return ""
    return ",".join(map(str, x)) if isinstance(x, list) else f"{x:.4f}" if isinstance(x, float) else str(x)

  return "\n".join(["\t".join(columns)] + ["\t".join(cell(r[c]) for c in columns) for r in rows]) + "\n"


def atomic_write_text(path: str, text: str) -> None:
  """Write a whole file or nothing: a temporary sibling, then an atomic rename. Creates the parent directory.

  Raises OSError when the directory cannot be created or written."""
  d = os.path.dirname(os.path.abspath(path))
  os.makedirs(d, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
  try:
    with os.fdopen(fd, "w") as f:
      f.write(text)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
