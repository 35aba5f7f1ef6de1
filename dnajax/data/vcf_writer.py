"""Writing VCF, beside its reader (`variants`): a minimal VCF 4.2 of variant rows, the input's own lines with
per-ALT INFO fields added (as `dnajax vep --output x.vcf[.gz]` writes them), and BGZF compression for `.vcf.gz`
(readable by htslib/pysam, which the reader uses).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

HEADER = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]


def minimal_lines(rows: Sequence[tuple[str, int, str, str, str]]) -> list[str]:
  """One data line per (chrom, 1-based pos, id, ref, alts comma-joined) row: QUAL, FILTER and INFO '.'."""
  return [f"{c}\t{p}\t{i}\t{r}\t{a}\t.\t.\t." for c, p, i, r, a in rows]


def minimal(rows: Sequence[tuple[str, int, str, str, str]]) -> str:
  """A VCF 4.2 text of `rows` (as `minimal_lines`), in the order given."""
  return "\n".join(HEADER + minimal_lines(rows)) + "\n"


def with_info(line: str, fields: dict[str, list[str]]) -> str:
  """A VCF data line with INFO fields set (one value per ALT, comma-joined; an existing field of the same key is
  replaced; a field whose values are all '.' is left out, except the first of `fields`, which is always written)."""
  cols = line.split("\t")
  while len(cols) < 8:
    cols.append(".")
  info = [x for x in cols[7].split(";") if x and x != "." and not x.startswith(tuple(f"{k}=" for k in fields))]
  for n, (key, values) in enumerate(fields.items()):
    if n == 0 or any(v != "." for v in values):
      info.append(f"{key}=" + ",".join(values))
  cols[7] = ";".join(info)
  return "\t".join(cols)


def annotated(header: str | None, lines: Sequence[str | None], values: dict[int, dict[int, tuple[str, ...]]],
              keys: Sequence[str], info_lines: Sequence[str], meta: str = "") -> str:
  """A VCF text: `header` (the input's, or the minimal one when None) with `info_lines` and `meta` added before the
  #CHROM line (earlier copies of them dropped), then each data line of `lines` (None: left out) with INFO `keys`
  set from `values` {line index: {ALT index: (value per key)}} ('.' where an ALT has none)."""
  head = header.rstrip("\n").split("\n") if header is not None else list(HEADER)
  drop = tuple(line.split(",")[0] + "," for line in info_lines) + ((meta.split("=")[0] + "=",) if meta else ())
  head = [h for h in head if not h.startswith(drop)]
  out = head[:-1] + list(info_lines) + ([meta] if meta else []) + head[-1:]
  for k, line in enumerate(lines):
    if line is None:
      continue
    n_alts = len(line.split("\t")[4].split(","))
    got = values.get(k, {})
    out.append(with_info(line, {key: [got.get(a, (".",) * len(keys))[j] for a in range(n_alts)]
                                for j, key in enumerate(keys)}))
  return "\n".join(out) + "\n"


def bgzip(text: str):
  """A writer (for `writers.write_all`) of `text` as BGZF, the blocked gzip that htslib indexes."""
  def write(f) -> None:
    from Bio import bgzf

    w = bgzf.BgzfWriter(fileobj=_Unclosed(f))
    w.write(text.encode())
    w.close()  # writes the BGZF end-of-file block; the file itself stays open for the atomic rename
  return write


class _Unclosed(io.RawIOBase):
  """A binary file whose close() only flushes (so a writer that closes its file leaves ours open)."""

  def __init__(self, f):
    self._f = f

  def writable(self) -> bool:
    return True

  def write(self, b) -> int:
    return self._f.write(b)

  def flush(self) -> None:
    self._f.flush()

  def close(self) -> None:
    self._f.flush()
