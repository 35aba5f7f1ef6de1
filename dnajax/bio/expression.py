"""Expression-relevant features of a coding sequence: GC content (whole CDS, third codon positions, the 5' end), the
folding energy of the 5' end of the mRNA (ViennaRNA), the codon adaptation index against a host, and rare codons
(how many, and how they cluster). Each feature is a float; FEATURES names them in a fixed order with units.

A CDS is a string of A/C/G/T or U, either case, in frame from its first base and a whole number of codons (a terminal
stop codon optional); U is read as T, and RNA is folded in its U form. Codon usage, CAI and the genetic code come from
dnajax.bio.codons (python-codon-tables and Biopython), so the features agree with `dnajax design`.

Why these: in E. coli, synonymous variants of one gene differ in expression mostly through mRNA structure near the
start codon (Kudla et al. 2009, Science 324:255; Nieuwkoop et al. 2023, Nucleic Acids Res 51:2363, on the mRFP
library this package benchmarks on), then through codon choice (CAI, rare codons; Sharp and Li 1987, Nucleic Acids Res
15:1281; Kane 1995, Curr Opin Biotechnol 6:494).

The tRNA adaptation index (dos Reis et al. 2004, Nucleic Acids Res 32:5036) is not here: it needs the host's tRNA gene
copy numbers, which the library that computes it (codon-bias) downloads from GtRNAdb and does not ship.
"""

from __future__ import annotations

import functools

from dnajax.bio import codons, sequence
from dnajax.errors import UserError

# GC of the first 48 nt (16 codons): Spearman -0.47 with expression on the mRFP train split (Nieuwkoop et al. 2023);
# AT-rich CDS starts express better in E. coli (Allert et al. 2010, J Mol Biol 402:905; Goodman et al. 2013, Science
# 342:475).
GC_5PRIME_NT = 48
# Folded region: the 5'UTR (when given) and the first 37 nt of the CDS. Kudla et al. 2009 folded -4..+37 around the
# start codon (utr5 = the last 4 nt of the 5'UTR gives their region exactly), and its folding energy explained more than
# half of the variation in GFP expression among 154 synonymous variants. Without a UTR, on the mRFP train split
# (Nieuwkoop et al. 2023), the first 42-48 nt alone correlate a little better with expression (Spearman +0.60 vs
# +0.57; +0.53 for 30 nt, +0.26 for 60 nt), but next to gc_5prime (the same 48 nt) in a ridge model 37 nt does best
# (5-fold CV Spearman on train +0.66 vs +0.63 for 48 nt).
MFE_WINDOW_NT = 37
# A sense codon is rare when its share among its amino acid's codons in the host's table is below this: the quantity
# DNA Chisel's AvoidRareCodons(min_frequency) compares (Zulkower and Rosser 2020, Bioinformatics 36:4508), so a
# sequence designed under AvoidRareCodons(0.1) with the same table has none. In E. coli this picks AGA, AGG, CGA
# (Arg), ATA (Ile) and CTA (Leu), the low-usage codons that limit heterologous expression there (Kane 1995).
RARE_BELOW = 0.1

# (name, description with units), in the order features() returns them: a TSV header and its legend.
FEATURES = (
  ("cai", "codon adaptation index against the host (Sharp and Li 1987; 0-1)"),
  ("gc", "GC fraction of the whole CDS (0-1)"),
  ("gc3", "GC fraction at third codon positions (0-1)"),
  ("gc_5prime", f"GC fraction of the first {GC_5PRIME_NT} nt of the CDS (0-1)"),
  ("mfe_5prime", f"minimum free energy of the 5'UTR (if given) + the first `window` nt (default {MFE_WINDOW_NT}) of "
                 "the CDS; of the CDS start alone when no 5'UTR is given (kcal/mol; ViennaRNA, 37 C; <= 0)"),
  ("rare_codon_fraction", f"fraction of sense codons that are rare (share of their amino acid < {RARE_BELOW})"),
  ("rare_codon_longest_run", "longest run of consecutive rare codons (codons)"),
  ("rare_codon_runs", "runs of 2 or more consecutive rare codons (count)"),
)
FEATURE_NAMES = tuple(name for name, _ in FEATURES)


def check_cds(cds: str) -> str:
  """`cds` upper-cased with U read as T. Raises UserError when it is empty, has a letter other than A/C/G/T/U or is
  not a whole number of codons."""
  dna = cds.upper().replace("U", "T")
  bad = sorted(set(dna) - set("ACGT"))
  if bad:
    raise UserError(f"coding sequence has letters {''.join(bad)!r}: need A/C/G/T or U only")
  if not dna or len(dna) % 3:
    raise UserError(f"coding sequence of {len(dna)} nt: need a whole number of codons (a multiple of 3, at least 3)")
  return dna


def check_utr(utr5: str) -> str:
  """`utr5` upper-cased with U read as T (it may be empty). Raises UserError for a letter other than A/C/G/T/U."""
  dna = utr5.upper().replace("U", "T")
  bad = sorted(set(dna) - set("ACGT"))
  if bad:
    raise UserError(f"5'UTR has letters {''.join(bad)!r}: need A/C/G/T or U only")
  return dna


def _check_length(what: str, n: int) -> int:
  if n < 1:
    raise UserError(f"{what} {n}: need at least 1 nt")
  return n


def gc_5prime(cds: str, n: int = GC_5PRIME_NT) -> float:
  """GC fraction of the first `n` nucleotides of the CDS (all of it when shorter). Raises UserError for a bad CDS or
  n < 1."""
  return sequence.gc_content(check_cds(cds)[:_check_length("GC window", n)])


def gc3(cds: str) -> float:
  """GC fraction at the third position of each codon. Raises UserError for a bad CDS."""
  return sequence.gc_content(check_cds(cds)[2::3])


def mfe_5prime(cds: str, window: int = MFE_WINDOW_NT, utr5: str = "") -> float:
  """Minimum free energy (kcal/mol, <= 0.0) of the 5' end of the mRNA: `utr5` followed by the first `window` nt of
  the CDS (the whole CDS when shorter), folded as RNA by ViennaRNA (RNA.fold_compound(...).mfe(): Turner 2004
  parameters at 37 C; Lorenz et al. 2011, Algorithms Mol Biol 6:26). With no `utr5` the energy is that of the CDS start
  alone. 0.0 means no structure better than the open chain (e.g. poly-A); more negative means more stable structure,
  which hides the start codon and ribosome binding site from the ribosome (Kudla et al. 2009).

  Raises UserError for a bad CDS or 5'UTR, or window < 1.
  """
  region = check_utr(utr5) + check_cds(cds)[:_check_length("MFE window", window)]
  return _fold(region.replace("T", "U"))


@functools.lru_cache(maxsize=1 << 16)
def _fold(rna: str) -> float:
  """ViennaRNA's minimum free energy of an RNA string (kcal/mol); remembered, since design and fine-tuning fold the
  same 5' ends many times (a codon change downstream leaves them as they were)."""
  import RNA

  _, mfe = RNA.fold_compound(rna).mfe()
  return float(mfe)


@functools.cache
def _usage(organism: str) -> dict[str, dict[str, float]]:
  """codons.codon_usage of `organism` under its default genetic code, read once (callers must not change it)."""
  return codons.codon_usage(organism, codons.ORGANISMS[codons.check_organism(organism)][1])


def rare_codons(organism: str = "e_coli", below: float = RARE_BELOW) -> frozenset[str]:
  """Sense codons (A/C/G/T) whose frequency among their amino acid's codons in the host's python-codon-tables table
  is below `below` (see RARE_BELOW; stop codons are never rare). Raises UserError for an unknown organism."""
  return frozenset(c for aa, freqs in _usage(organism).items() if aa != "*" for c, f in freqs.items() if f < below)


def rare_codon_runs(cds: str, organism: str = "e_coli", below: float = RARE_BELOW) -> list[int]:
  """Lengths in codons of the maximal runs of consecutive rare codons (rare_codons), in CDS order; [] when there is
  none. Tandem rare codons stall ribosomes more than the same codons apart (consecutive AGG codons: Rosenberg et al.
  1993, J Bacteriol 175:716). Raises UserError for a bad CDS or an unknown organism."""
  rare, runs, n = rare_codons(organism, below), [], 0
  dna = check_cds(cds)
  for i in range(0, len(dna), 3):
    if dna[i:i + 3] in rare:
      n += 1
    elif n:
      runs.append(n)
      n = 0
  return runs + [n] if n else runs


def rare_codon_fraction(cds: str, organism: str = "e_coli", below: float = RARE_BELOW) -> float:
  """Fraction of the sense codons of the CDS that are rare (rare_codons); stop codons are left out of the count and
  the denominator (0.0 when there is no sense codon). Raises UserError for a bad CDS or an unknown organism."""
  dna, rare, stops = check_cds(cds), rare_codons(organism, below), set(_usage(organism)["*"])
  sense = [c for c in (dna[i:i + 3] for i in range(0, len(dna), 3)) if c not in stops]
  return sum(c in rare for c in sense) / len(sense) if sense else 0.0


def cai(cds: str, organism: str = "e_coli") -> float:
  """Codon adaptation index of the CDS against the host (dnajax.bio.codons.cai: Sharp and Li 1987 weights from the
  host's python-codon-tables usage, computed by Biopython, which skips ATG and TGG). 1.0 for a CDS of ATG and TGG only
  (no synonymous choice to make). Raises UserError for a bad CDS or an unknown organism."""
  dna, usage = check_cds(cds), _usage(organism)
  if not {dna[i:i + 3] for i in range(0, len(dna), 3)} - {"ATG", "TGG"}:
    return 1.0
  return codons.cai(dna, usage)


def features(cds: str, organism: str = "e_coli", window: int = MFE_WINDOW_NT, utr5: str = "") -> dict[str, float]:
  """All FEATURES of one CDS, in FEATURES order: name -> value (units in FEATURES). `organism` (a key of
  codons.ORGANISMS) is the host for CAI and rare codons; `window` and `utr5` choose the folded region of mfe_5prime
  (no `utr5`: the CDS start alone). Raises UserError for a bad CDS or 5'UTR, window < 1 or an unknown organism."""
  dna = check_cds(cds)
  runs = rare_codon_runs(dna, organism)
  values = {"cai": cai(dna, organism), "gc": sequence.gc_content(dna), "gc3": gc3(dna), "gc_5prime": gc_5prime(dna),
            "mfe_5prime": mfe_5prime(dna, window, utr5), "rare_codon_fraction": rare_codon_fraction(dna, organism),
            "rare_codon_longest_run": max(runs, default=0), "rare_codon_runs": sum(n >= 2 for n in runs)}
  return {name: float(values[name]) for name in FEATURE_NAMES}


# The hand features a fine-tuned expression model reads next to the encoder (`dnajax finetune`, finetune.features):
# FEATURES plus the 5' folding energy over several windows, since which window matters depends on the construct
# (Spearman with expression on the mRFP train split: 24 nt +0.52, 48 nt +0.60, 72 nt +0.31, 96 nt +0.18; boosted trees
# on the bases and FEATURES: val Spearman 0.845 without these, 0.858 with them; Nieuwkoop et al. 2023 data).
HEAD_MFE_WINDOWS = (24, 48, 72, 96)
HEAD_FEATURE_NAMES = FEATURE_NAMES + tuple(f"mfe_5prime_{w}" for w in HEAD_MFE_WINDOWS)


def head_features(cds: str, organism: str = "e_coli") -> list[float]:
  """The values of HEAD_FEATURE_NAMES for one CDS (FEATURES, then mfe_5prime over each of HEAD_MFE_WINDOWS; kcal/mol).
  Raises UserError for a bad CDS or an unknown organism."""
  dna = check_cds(cds)
  return list(features(dna, organism).values()) + [mfe_5prime(dna, w) for w in HEAD_MFE_WINDOWS]
