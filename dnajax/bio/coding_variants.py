"""Every single-nucleotide variant of a coding sequence and its consequence on the protein.

The classes (Sequence Ontology names, as Ensembl VEP calls them):
  * synonymous - the codon still codes the same amino acid; a stop codon changed to another stop codon
    (SO stop_retained_variant, a kind of synonymous_variant) counts here too;
  * missense   - another amino acid;
  * nonsense   - a sense codon becomes a stop codon (stop_gained);
  * start_lost - any change to the initiation codon, when the CDS begins with a start codon of the genetic code.
    A codon that is an alternative start of the code (GTG, TTG, ATA, ... in table 11) is not taken to keep the
    start: they initiate far less efficiently than ATG, and VEP makes the same call;
  * stop_lost  - the terminal stop codon becomes a sense codon.
"""

from __future__ import annotations

from typing import NamedTuple

from dnajax.errors import UserError

CONSEQUENCES = ("synonymous", "missense", "nonsense", "start_lost", "stop_lost")
BASES = "ACGT"


class CodingSNV(NamedTuple):
  """One substitution of a coding sequence: `offset` 0-based in the CDS (codon offset // 3), the reference and
  alternative bases (A/C/G/T, on the coding strand) and one of CONSEQUENCES."""
  offset: int
  ref: str
  alt: str
  consequence: str


def _check_cds(cds: str, stops: set[str]) -> str:
  """The upper-cased CDS; UserError when it is not whole codons of A/C/G/T or has a stop before its last codon."""
  cds = cds.upper()
  if not cds or len(cds) % 3 or set(cds) - set(BASES):
    raise UserError(f"coding sequence of {len(cds)} bases: need whole codons of A/C/G/T only")
  internal = [i // 3 for i in range(0, len(cds) - 3, 3) if cds[i:i + 3] in stops]
  if internal:
    raise UserError(f"coding sequence has an in-frame stop codon at codon {internal[0] + 1} of {len(cds) // 3} "
                    "(a selenoprotein, a pseudogene or the wrong genetic code?)")
  return cds


def coding_snvs(cds: str, code: int = 11) -> list[CodingSNV]:
  """All 3 x len(cds) substitutions of `cds` (A/C/G/T, whole codons, a terminal stop codon optional), in CDS order
  and A/C/G/T order of the alternative base, each with its consequence under NCBI genetic code `code` (Biopython's
  CodonTable; 11: bacteria, archaea and plastids).

  Raises UserError for an unknown code, letters other than A/C/G/T, a length that is not a multiple of 3, or a stop
  codon before the last codon.
  """
  from Bio.Data import CodonTable

  if code not in CodonTable.unambiguous_dna_by_id:
    raise UserError(f"genetic code {code}: not an NCBI translation table number")
  table = CodonTable.unambiguous_dna_by_id[code]
  stops, amino = set(table.stop_codons), table.forward_table
  cds = _check_cds(cds, stops)
  out = []
  for offset, ref in enumerate(cds):
    k = offset // 3
    codon = cds[3 * k:3 * k + 3]
    for alt in BASES:
      if alt == ref:
        continue
      mutant = codon[:offset % 3] + alt + codon[offset % 3 + 1:]
      if k == 0 and codon in table.start_codons:
        what = "start_lost"
      elif codon in stops:  # only the last codon can be one
        what = "synonymous" if mutant in stops else "stop_lost"
      elif mutant in stops:
        what = "nonsense"
      else:
        what = "synonymous" if amino[mutant] == amino[codon] else "missense"
      out.append(CodingSNV(offset, ref, alt, what))
  return out
