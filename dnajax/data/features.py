"""Coding-sequence (CDS) features of GenBank records (Biopython SeqRecords): the one place that interprets them.

`cds_entries` reads each CDS feature once and decides what it is: its bases in reading order (either strand,
through joins), its reading frame (`/codon_start`), whether its ends are partial (`<`, `>`), and whether it can be
used at all. Two things are built on it: per-base codon positions (the coding strata of `dnajax evaluate`) and
spliced, in-frame coding sequences (the codon-aligned training corpus of `data.cds`).

Kinds counted in every `counts` dict (the corpus index's `coding_sequences` and `evaluate`'s `cds_features`):
  kept                       used
  skipped_pseudo             /pseudo or /pseudogene (not translated)
  skipped_remote_part        a part lies in another record (join(..., NC_005815.1:8401..9400)): the whole feature
                             is left out, never placed at this record's coordinates
  skipped_order              order(...) locations: nothing says the parts join into one coding sequence
  skipped_out_of_range       a part outside the record's sequence, or no base at all (e.g. a between-position)
  skipped_bad_codon_start    /codon_start other than 1, 2 or 3
  skipped_not_multiple_of_3  a CDS complete at its 3' end whose in-frame length is not a multiple of 3
  trimmed_partial_codon      a CDS partial at its 3' end (`>`), its trailing partial codon dropped (still kept)
"""

from __future__ import annotations

import dataclasses

import numpy as np
from Bio.SeqFeature import AfterPosition, BeforePosition

KINDS = ("kept", "skipped_pseudo", "skipped_remote_part", "skipped_order", "skipped_out_of_range",
         "skipped_bad_codon_start", "skipped_not_multiple_of_3", "trimmed_partial_codon")


def new_counts() -> dict[str, int]:
  """A zero count of every kind."""
  return dict.fromkeys(KINDS, 0)


@dataclasses.dataclass
class CdsEntry:
  """One usable CDS feature: its bases in reading order, int64[n] positions in the record (0-based), the first
  in-frame base (`frame` = /codon_start - 1) and the end of the last complete codon (`end`, exclusive, in the same
  reading-order index); bases [frame, end) are whole codons."""

  name: str
  positions: np.ndarray
  frame: int
  end: int
  feature: object  # the Biopython SeqFeature (local parts only)


def cds_name(record, feature) -> str:
  """'record id:locus tag' (else gene name, else start) for a GenBank CDS feature: the name data.cds gives it."""
  tag = (feature.qualifiers.get("locus_tag") or feature.qualifiers.get("gene") or [f"{feature.location.start}"])[0]
  return f"{record.id}:{tag}"


def _three_prime_partial(location) -> bool:
  parts = location.parts
  last = parts[-1]  # Biopython orders parts in reading order (the minus strand's last part is its 3' end)
  return isinstance(last.start if last.strand == -1 else last.end, (BeforePosition, AfterPosition))


def _entry(record, f, length: int) -> tuple[CdsEntry | None, str]:
  """(the entry, or None and the kind it was skipped as)."""
  q, loc = f.qualifiers, f.location
  if "pseudo" in q or "pseudogene" in q:
    return None, "skipped_pseudo"
  if any(p.ref not in (None, record.id, record.name) for p in loc.parts):
    return None, "skipped_remote_part"
  if getattr(loc, "operator", "join") == "order":
    return None, "skipped_order"
  try:
    frame = int(q.get("codon_start", ["1"])[0]) - 1
  except ValueError:
    frame = -1
  if frame not in (0, 1, 2):
    return None, "skipped_bad_codon_start"
  try:
    positions = np.fromiter(loc, dtype=np.int64)  # reading order: either strand, through joins
  except (TypeError, ValueError):
    positions = np.zeros(0, np.int64)
  if not len(positions) or positions.min() < 0 or positions.max() >= length or len(positions) <= frame:
    return None, "skipped_out_of_range"
  end = frame + (len(positions) - frame) // 3 * 3
  if end != len(positions) and not _three_prime_partial(loc):
    return None, "skipped_not_multiple_of_3"
  if end <= frame:
    return None, "skipped_out_of_range"
  kind = "trimmed_partial_codon" if end != len(positions) else "kept"
  return CdsEntry(cds_name(record, f), positions, frame, end, f), kind


def cds_entries(record, counts: dict[str, int]) -> list[CdsEntry]:
  """The usable CDS features of a SeqRecord, in file order; every feature is counted in `counts` by kind
  (a trimmed one counts as kept and as trimmed_partial_codon)."""
  out, length = [], len(record.seq)
  for f in record.features:
    if f.type != "CDS" or f.location is None:
      continue
    entry, kind = _entry(record, f, length)
    counts[kind] = counts.get(kind, 0) + 1
    if entry is not None:
      out.append(entry)
      if kind != "kept":
        counts["kept"] = counts.get("kept", 0) + 1
  return out


def codon_positions(record, length: int, counts: dict[str, int]) -> np.ndarray | None:
  """int8[length]: 0 outside any usable CDS, else the codon position 1/2/3 of the base in its CDS's reading frame
  (from /codon_start: with /codon_start=2 the first base is position 3 of a codon the record does not hold; later
  features win where CDS overlap). None when the record has no CDS feature at all."""
  if not any(f.type == "CDS" for f in record.features):
    return None
  out = np.zeros(length, np.int8)
  for e in cds_entries(record, counts):
    out[e.positions] = (np.arange(len(e.positions)) - e.frame) % 3 + 1
  return out


def coding_sequences(record, counts: dict[str, int]) -> list[tuple[str, str]]:
  """(name, spliced coding-strand letters from the first in-frame base to the end of the last whole codon) of each
  usable CDS feature: every sequence starts on a codon boundary and is a multiple of 3 long."""
  return [(e.name, str(e.feature.extract(record.seq))[e.frame:e.end]) for e in cds_entries(record, counts)]
