"""Synthesis constraints of a coding-sequence design: DNA Chisel specifications, the feasible starts its solver
makes, and dnajax's own re-check of every finished design (`describe`, `violations`).

The re-check counts what the DNA Chisel specifications count (`chisel_checks` names each specification by the check it
matches): a GC window longer than the sequence is the whole sequence in both, sites are patterns on either strand in
both.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dnajax.bio import codons, expression, sequence
from dnajax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Constraints:
  """Synthesis constraints of a design (DNA Chisel specifications, re-checked by dnajax after the search)."""

  gc_min: float = 0.0
  gc_max: float = 1.0
  gc_window: int = 50
  avoid_sites: tuple[str, ...] = ()
  max_homopolymer: int = 0  # 0: no limit; 6 allows runs of at most 6
  avoid_repeats: int = 0  # k: no k-mer twice on either strand; 0: off
  avoid_splice_sites: bool = False  # consensus splice donors/acceptors on the coding strand (eukaryotic hosts)
  min_mfe_5prime: float | None = None  # kcal/mol: the 5' end folds no more stably than this (None: no bound)
  mfe_window: int = expression.MFE_WINDOW_NT  # nt of the CDS start folded for mfe_5prime
  utr5: str = ""  # the 5'UTR folded ahead of the CDS start for mfe_5prime (DNA or RNA letters; "" for none)
  start_sequence: str = ""  # the CDS a design starts from (upper-case A/C/G/T, stop codon included; "" for none)
  lock: tuple[tuple[int, int], ...] = ()  # codon ranges (1-based, inclusive) kept as they are in start_sequence

  def locked_codons(self) -> set[int]:
    """0-based indices of the codons `lock` keeps."""
    return {j for a, b in self.lock for j in range(a - 1, b)}


def mfe(seq: str, c: Constraints) -> float:
  """mfe_5prime of a design (kcal/mol): c.utr5 and the first c.mfe_window nt of `seq`, as expression.mfe_5prime."""
  return expression.mfe_5prime(seq, c.mfe_window, c.utr5)


def codon_options(protein: str, usage, c: Constraints) -> list[tuple[str, ...]]:
  """The codons each position of a coding sequence of `protein` (stop codon included) may take: the synonymous codons
  of its amino acid under `usage`, or only the start sequence's codon where `c.lock` keeps it. Every search move is
  drawn from these, so a locked codon is never changed."""
  locked = c.locked_codons()
  return [(c.start_sequence[3 * j:3 * j + 3],) if j in locked else tuple(usage[aa])
          for j, aa in enumerate(protein + "*")]


class Infeasible(UserError):
  """No coding sequence of the protein meets the constraints."""


def chisel_checks(protein: str, c: Constraints, code: int) -> dict[str, list]:
  """check name (as `violations` names it) -> the DNA Chisel specifications of `c` for a coding sequence of
  `protein` (stop codon included). Each specification passes exactly when dnajax's re-check of that name does:
  the GC window is min(window, sequence length), as in sequence.gc_windows (DNA Chisel passes any sequence shorter
  than its window); homopolymers are runs of any base, sites patterns on either strand, repeats k-mers counted with
  their reverse complements, splice sites patterns on the coding strand. Translation and locked codons are enforced by
  DNA Chisel's mutation space while it solves, not evaluated after: the search keeps them by moving only among
  `codon_options`, and `violations` re-checks both."""
  import dnachisel as dc
  from Bio.Data import CodonTable

  table_name = CodonTable.unambiguous_dna_by_id[code].names[0]  # DNA Chisel takes Biopython's table names
  checks = {"translation": [dc.EnforceTranslation(genetic_table=table_name, translation=protein + "*")]}
  if c.gc_min > 0 or c.gc_max < 1:
    window = min(c.gc_window, 3 * (len(protein) + 1))
    checks["gc"] = [dc.EnforceGCContent(mini=c.gc_min, maxi=c.gc_max, window=window)]
  if c.avoid_sites:
    checks["restriction_site"] = [dc.AvoidPattern(f"{site}_site") for site in c.avoid_sites]
  if c.max_homopolymer:
    checks["homopolymer"] = [dc.AvoidPattern(f"{c.max_homopolymer + 1}x{b}") for b in "ACGT"]
  if c.avoid_repeats:
    checks["repeats"] = [dc.UniquifyAllKmers(c.avoid_repeats, include_reverse_complement=True)]
  if c.avoid_splice_sites:
    checks["splice_site"] = [dc.AvoidPattern(p, strand=1) for p in sequence.SPLICE_PATTERNS.values()]
  if c.lock:  # the solver leaves these bases as the problem starts (start_from(c.start_sequence))
    checks["lock"] = [dc.AvoidChanges(location=(3 * (a - 1), 3 * b)) for a, b in c.lock]
  return checks


OPTIONS = {"translation": "--genetic-code", "gc": "--gc-min/--gc-max/--gc-window", "restriction_site": "--avoid-sites",
           "homopolymer": "--max-homopolymer", "repeats": "--avoid-repeats", "splice_site": "--avoid-splice-sites",
           "lock": "--lock"}  # the option behind each check of chisel_checks, named when it cannot be met


def chisel_specs(protein: str, c: Constraints, code: int) -> list:
  """The DNA Chisel constraint specifications of `c` for a coding sequence of `protein` (stop codon included)."""
  return [spec for specs in chisel_checks(protein, c, code).values() for spec in specs]


def chisel_pass(problem) -> bool:
  return problem.all_constraints_pass()


def feasible_start(protein: str, usage, c: Constraints, code: int, rng: np.random.Generator):
  """A DnaOptimizationProblem holding a sequence that meets every constraint, or UserError naming the violated
  one."""
  import dnachisel as dc

  checks = chisel_checks(protein, c, code)
  problem = dc.DnaOptimizationProblem(codons.sample_cds(protein, usage, rng),
                                      constraints=[spec for specs in checks.values() for spec in specs], logger=None)
  try:
    problem.resolve_constraints()
  except dc.NoSolutionError as e:
    failing = [r.specification for r in problem.constraints_evaluations() if not r.passes]
    what = "; ".join(map(str, failing)) or str(e).splitlines()[0]
    options = sorted({OPTIONS[name] for name, specs in checks.items() if any(f in specs for f in failing)})
    fix = f"; relax {' or '.join(options)}" if options else "; relax the constraints"
    raise Infeasible(f"no sequence satisfies the constraints ({what}){fix}") from None
  return problem


def start_from(seq: str, protein: str, c: Constraints, code: int):
  """A DnaOptimizationProblem starting at `seq`, made to meet the constraints by DNA Chisel (fewest changes), or
  None when it cannot."""
  import dnachisel as dc

  problem = dc.DnaOptimizationProblem(seq, constraints=chisel_specs(protein, c, code), logger=None)
  try:
    problem.resolve_constraints()
  except dc.NoSolutionError:
    return None
  return problem


def describe(seq: str, protein: str, usage, c: Constraints, code: int) -> dict:
  """The design's report: translation check (`protein` and a stop codon; a scored sequence without one translates to
  `protein` alone), 5' MFE (`mfe`), CAI, GC (overall and window extremes), homopolymer, repeated k-mers, restriction
  and splice sites, all measured on the final sequence."""
  from Bio.Seq import Seq

  lo, hi = sequence.gc_windows(seq, c.gc_window)
  translated = str(Seq(seq[:len(seq) // 3 * 3]).translate(table=code))
  return {"translation_ok": len(seq) % 3 == 0 and translated in (protein + "*", protein) and "*" not in translated[:-1],
          "mfe_5prime": mfe(seq, c),
          "cai": codons.cai(seq, usage), "gc": sequence.gc_content(seq), "gc_window_min": lo,
          "gc_window_max": hi, "longest_homopolymer": sequence.longest_homopolymer(seq),
          "repeated_kmers": sequence.repeated_kmers(seq, c.avoid_repeats or 20),
          "restriction_sites": sequence.restriction_sites(seq, c.avoid_sites),
          "splice_sites": sequence.splice_sites(seq)}


def violations(d: dict, c: Constraints, max_codon_distance: int | None = None) -> list[str]:
  """The constraints a described design breaks (dnajax's own re-check after DNA Chisel's solver), with the 5' folding
  bound, the trust region (`d["codon_distance_to_training"]`) and the locked codons (`d["sequence"]` against
  c.start_sequence)."""
  v = []
  if not d["translation_ok"]:
    v.append("translation")
  if c.gc_min > 0 or c.gc_max < 1:
    if d["gc_window_min"] < c.gc_min - 1e-9 or d["gc_window_max"] > c.gc_max + 1e-9:
      v.append("gc")
  if c.avoid_sites and any(s in c.avoid_sites for s in d["restriction_sites"]):
    v.append("restriction_site")
  if c.max_homopolymer and d["longest_homopolymer"] > c.max_homopolymer:
    v.append("homopolymer")
  if c.avoid_repeats and d["repeated_kmers"]:
    v.append("repeats")
  if c.avoid_splice_sites and d["splice_sites"]:
    v.append("splice_site")
  if c.min_mfe_5prime is not None and d["mfe_5prime"] < c.min_mfe_5prime - 1e-9:
    v.append("mfe_5prime")
  distance = d.get("codon_distance_to_training")
  if max_codon_distance is not None and (distance is None or distance > max_codon_distance):
    v.append("codon_distance_to_training")
  if any(d["sequence"][3 * j:3 * j + 3] != c.start_sequence[3 * j:3 * j + 3] for j in c.locked_codons()):
    v.append("lock")
  return v
