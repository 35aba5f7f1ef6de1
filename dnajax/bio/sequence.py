"""Statistics of DNA sequences given as strings of A/C/G/T: GC content (overall and in sliding windows),
homopolymers, repeated k-mers on both strands, restriction sites (Bio.Restriction names) and consensus splice sites.

Each statistic counts what DNA Chisel's matching specification counts (`dnajax design` solves with DNA Chisel and
re-checks with these): windows as long as the sequence when the window is longer, sites as patterns on either
strand anywhere in a linear sequence, k-mers and their reverse complements as one."""

from __future__ import annotations

import re

import numpy as np

from dnajax.errors import UserError

# Consensus splice sites on the coding strand (IUPAC): the donor at an intron's 5' end (exon|GT[A/G]AGT) and an
# acceptor at its 3' end (a polypyrimidine tract, any base, then CAG|exon). Consensus matches, not a splice predictor
# (the consensus as in Shapiro and Senapathy 1987, Nucleic Acids Res 15:7155).
SPLICE_PATTERNS = {"donor": "GTRAGT", "acceptor": "YYYYYYYYYYYNCAG"}
_IUPAC_REGEX = {"A": "A", "C": "C", "G": "G", "T": "T", "R": "[AG]", "Y": "[CT]", "S": "[CG]", "W": "[AT]",
                "K": "[GT]", "M": "[AC]", "B": "[CGT]", "D": "[AGT]", "H": "[ACT]", "V": "[ACG]", "N": "[ACGT]"}
DEFAULT_SITES = ("BsaI", "BsmBI", "EcoRI", "BamHI", "XhoI", "NotI")


def gc_content(seq: str) -> float:
  """Fraction of G and C letters (0.0 for an empty sequence)."""
  return float(np.mean([b in "GC" for b in seq])) if seq else 0.0


def gc_windows(seq: str, window: int) -> tuple[float, float]:
  """(lowest, highest) GC fraction over all windows of `window` bases; the whole sequence when it is shorter (the
  window is min(window, len(seq)): `dnajax design` gives DNA Chisel the same window)."""
  gc = np.array([b in "GC" for b in seq], float)
  if len(seq) <= window:
    return float(gc.mean()), float(gc.mean())
  s = np.convolve(gc, np.ones(window), "valid") / window
  return float(s.min()), float(s.max())


def longest_homopolymer(seq: str) -> int:
  """Length of the longest run of one letter (0 for an empty sequence)."""
  return max(len(m.group(0)) for m in re.finditer(r"(.)\1*", seq)) if seq else 0


def repeated_kmers(seq: str, k: int) -> int:
  """Distinct k-mers occurring more than once, counting the reverse strand too."""
  from Bio.Seq import Seq

  if k <= 0 or len(seq) < k:
    return 0
  rc = str(Seq(seq).reverse_complement())
  counts: dict[str, int] = {}
  for i in range(len(seq) - k + 1):
    kmer = seq[i:i + k]
    key = min(kmer, rc[len(seq) - k - i:len(seq) - i])
    counts[key] = counts.get(key, 0) + 1
  return sum(1 for v in counts.values() if v > 1)


def check_enzymes(names: tuple[str, ...]) -> tuple[str, ...]:
  """`names` if each is a restriction enzyme Bio.Restriction knows; UserError naming the first that is not."""
  from Bio import Restriction

  for s in names:
    if not hasattr(Restriction, s) or not hasattr(getattr(Restriction, s), "site"):
      raise UserError(f"--avoid-sites {s}: not a restriction enzyme Biopython knows (Bio.Restriction); check the "
                      "spelling, e.g. BsaI,BsmBI,EcoRI")
  return names


def iupac_regex(pattern: str) -> str:
  """A regular expression matching the IUPAC nucleotide `pattern` (R, Y, N, ... as character classes)."""
  return "".join(_IUPAC_REGEX[ch] for ch in pattern.upper())


def restriction_sites(seq: str, enzymes: tuple[str, ...] = ()) -> list[str]:
  """Names of the enzymes (default: a common cloning set) whose recognition site (Bio.Restriction's, IUPAC codes
  expanded) occurs in the linear sequence on either strand, sorted. Matched as patterns, as DNA Chisel's
  AvoidPattern('NAME_site') matches them: Bio.Restriction's own search reports cuts and drops a site whose cut
  falls outside a linear sequence (BsaI's GGTCTC(1/5) at the 3' end), a site a synthesis check must still see."""
  from Bio import Restriction
  from Bio.Seq import Seq

  rc = str(Seq(seq).reverse_complement())
  found = set()
  for name in enzymes or DEFAULT_SITES:
    regex = re.compile(f"(?={iupac_regex(getattr(Restriction, name).site)})")
    if regex.search(seq) or regex.search(rc):
      found.add(name)
  return sorted(found)


def splice_sites(seq: str) -> list[str]:
  """'donor@i' / 'acceptor@i' for every consensus match on the coding strand (overlapping matches included)."""
  out = []
  for kind, pattern in SPLICE_PATTERNS.items():
    out += [f"{kind}@{m.start()}" for m in re.finditer(f"(?={iupac_regex(pattern)})", seq)]
  return out
