"""Genetic codes, codon usage of host organisms (python-codon-tables), the codon adaptation index, usage-weighted
coding sequences, open reading frames and stop codons per frame."""

from __future__ import annotations

import itertools

import numpy as np

from dnajax.errors import UserError

# organism -> (python-codon-tables name, default NCBI genetic code)
ORGANISMS = {"e_coli": ("e_coli_316407", 11), "b_subtilis": ("b_subtilis_1423", 11),
             "s_cerevisiae": ("s_cerevisiae_4932", 1), "h_sapiens": ("h_sapiens_9606", 1),
             "m_musculus": ("m_musculus_10090", 1), "d_melanogaster": ("d_melanogaster_7227", 1),
             "c_elegans": ("c_elegans_6239", 1), "g_gallus": ("g_gallus_9031", 1)}
PROTEIN_LETTERS = set("ACDEFGHIKLMNPQRSTVWY")
NUCLEOTIDE_LETTERS = set("ACGTUN")  # N: any base (Asn in a protein)
IUPAC_AMBIGUITY_LETTERS = set("RYSWKMBDHV")
# A protein this long made of nucleotide letters only is taken for a nucleotide sequence: Ala, Cys, Gly, Thr and Asn
# are about a quarter of the residues of natural proteins, so 10 of them in a row happen about once in a million
# (0.26 ** 10 = 1.4e-6); shorter peptides such as GATTACA (7) stay proteins.
MIN_NUCLEOTIDE_LIKE_LENGTH = 10


def check_genetic_code(code: int) -> int:
  """`code` if it is an NCBI translation table number; UserError otherwise."""
  from Bio.Data import CodonTable

  if code not in CodonTable.unambiguous_dna_by_id:
    raise UserError(f"--genetic-code {code}: not an NCBI translation table number (1-33)")
  return code


def check_organism(organism: str) -> str:
  """`organism` if dnajax has its codon usage; UserError listing the known ones otherwise."""
  if organism not in ORGANISMS:
    raise UserError(f"--organism {organism}: unknown; use one of {', '.join(ORGANISMS)}")
  return organism


def looks_like_nucleotides(letters: str) -> bool:
  """True when upper-case `letters` given as a protein are more likely a nucleotide sequence: at least
  MIN_NUCLEOTIDE_LIKE_LENGTH letters, every one a nucleotide code (A/C/G/T/U, N or an IUPAC ambiguity code such as
  R or Y) and at least 90% of them A/C/G/T/U/N. A coding sequence read as a protein would otherwise be designed as
  Ala-Thr-Gly...; a real protein of 10 or more residues like that is about a one-in-a-million case."""
  n = len(letters)
  if n < MIN_NUCLEOTIDE_LIKE_LENGTH or set(letters) - NUCLEOTIDE_LETTERS - IUPAC_AMBIGUITY_LETTERS:
    return False
  return sum(ch in NUCLEOTIDE_LETTERS for ch in letters) >= 0.9 * n


def stop_codons(code: int) -> set[str]:
  """The stop codons of NCBI table `code`."""
  from Bio.Data import CodonTable

  return set(CodonTable.unambiguous_dna_by_id[code].stop_codons)


def start_codons(code: int) -> set[str]:
  """The start codons of NCBI table `code`."""
  from Bio.Data import CodonTable

  return set(CodonTable.unambiguous_dna_by_id[code].start_codons)


def codon_usage(organism: str, code: int) -> dict[str, dict[str, float]]:
  """amino acid (or '*') -> {codon: frequency}, restricted to the codons `code` assigns to it; codons the table
  lacks get 1e-3 (rare, not forbidden). Raises UserError for an unknown organism."""
  import python_codon_tables as pct
  from Bio.Data import CodonTable

  table = pct.get_codons_table(ORGANISMS[check_organism(organism)][0])
  code_table = CodonTable.unambiguous_dna_by_id[code]
  out: dict[str, dict[str, float]] = {}
  for codon in map("".join, itertools.product("ACGT", repeat=3)):
    aa = "*" if codon in code_table.stop_codons else code_table.forward_table.get(codon)
    if aa is None:
      continue
    freq = max(float(table.get(aa, {}).get(codon, 0.0)), 1e-3)
    out.setdefault(aa, {})[codon] = freq
  return out


def sample_cds(protein: str, usage, rng: np.random.Generator) -> str:
  """Synonymous codons drawn by the organism's usage, the stop codon included."""
  out = []
  for aa in protein + "*":
    codons, freqs = zip(*usage[aa].items())
    p = np.asarray(freqs) / sum(freqs)
    out.append(codons[int(rng.choice(len(codons), p=p))])
  return "".join(out)


def cai(seq: str, usage) -> float:
  """Codon adaptation index (Sharp and Li 1987, Nucleic Acids Res 15:1281) of a coding sequence against `usage`
  (each codon's weight is its frequency over its amino acid's most frequent codon); Biopython computes it."""
  from Bio.SeqUtils import CodonAdaptationIndex

  index = CodonAdaptationIndex([])
  for codons in usage.values():
    top = max(codons.values())
    index.update({c: f / top for c, f in codons.items()})
  return float(index.calculate(seq))


def varying_positions(codons) -> list[int]:
  """Positions (0-2) at which synonymous codons differ: only the third for 2- and 4-fold amino acids."""
  return [k for k in range(3) if len({c[k] for c in codons}) > 1]


def orfs(seq: str, code: int = 11, min_codons: int = 1) -> list[tuple[int, int, int]]:
  """Open reading frames (strand +1/-1, start on that strand, length in codons including the stop): a start codon
  of the genetic code to the first in-frame stop, or to the end of the sequence if none follows; nested starts
  inside an ORF are not counted again."""
  from Bio.Seq import Seq

  stops, starts = stop_codons(code), start_codons(code)
  out = []
  for strand, s in ((1, seq), (-1, str(Seq(seq).reverse_complement()))):
    for frame in range(3):
      open_at = None
      for i in range(frame, len(s) - 2, 3):
        c = s[i:i + 3]
        if open_at is None and c in starts:
          open_at = i
        elif open_at is not None and c in stops:
          n = (i + 3 - open_at) // 3
          if n >= min_codons:
            out.append((strand, open_at, n))
          open_at = None
      if open_at is not None:  # open to the end of the sequence: counted, without a stop
        n = (len(s) - open_at) // 3
        if n >= min_codons:
          out.append((strand, open_at, n))
  return out


def stops_per_100_codons(seq: str, code: int = 11) -> list[float]:
  """Stop codons per 100 codons in each of the three forward frames."""
  stops = stop_codons(code)
  out = []
  for frame in range(3):
    codons = [seq[i:i + 3] for i in range(frame, len(seq) - 2, 3)]
    out.append(100.0 * sum(c in stops for c in codons) / max(len(codons), 1))
  return out
