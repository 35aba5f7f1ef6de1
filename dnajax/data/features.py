"""Coding-sequence (CDS) features of GenBank records (Biopython SeqRecords): the one place that interprets them.

Used by the readers for two things: per-base codon positions (the coding strata of `dnajax evaluate`) and spliced
coding sequences (the codon-aligned training corpus of `data.cds`).
"""

from __future__ import annotations

import numpy as np


def cds_features(record) -> list:
  """The CDS features of a SeqRecord that have a location, in file order."""
  return [f for f in record.features if f.type == "CDS" and f.location is not None]


def is_pseudo(feature) -> bool:
  """True for /pseudo or /pseudogene CDS features (not translated; never training data)."""
  return "pseudo" in feature.qualifiers or "pseudogene" in feature.qualifiers


def codon_positions(record, length: int) -> np.ndarray | None:
  """A SeqRecord's CDS features -> int8[length]: 0 outside any CDS, else the codon position 1/2/3 of the base in
  its CDS's reading direction (either strand, through joins; later features win where CDS overlap). None when the
  record has no CDS feature."""
  cds = cds_features(record)
  if not cds:
    return None
  out = np.zeros(length, np.int8)
  for f in cds:
    pos = np.fromiter(f.location, dtype=np.int64)  # bases in the CDS's reading order (either strand, joins)
    try:
      frame = int(f.qualifiers.get("codon_start", ["1"])[0]) - 1
    except ValueError:
      frame = 0
    keep = (pos >= 0) & (pos < length)
    out[pos[keep]] = ((np.arange(len(pos)) - frame) % 3 + 1)[keep]
  return out


def cds_name(record, feature) -> str:
  """'record id:locus tag' (else gene name, else start) for a GenBank CDS feature: the name data.cds gives it."""
  tag = (feature.qualifiers.get("locus_tag") or feature.qualifiers.get("gene") or [f"{feature.location.start}"])[0]
  return f"{record.id}:{tag}"


def coding_sequences(record, counts: dict) -> list[tuple[str, str]]:
  """(name, spliced coding-strand letters) of each non-pseudo CDS feature; `counts["skipped_pseudo"]` grows by
  the pseudo features left out."""
  out = []
  for f in cds_features(record):
    if is_pseudo(f):
      counts["skipped_pseudo"] = counts.get("skipped_pseudo", 0) + 1
      continue
    out.append((cds_name(record, f), str(f.extract(record.seq))))
  return out
