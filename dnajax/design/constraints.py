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


class Infeasible(UserError):
  """No coding sequence of the protein meets the constraints."""


def chisel_checks(protein: str, c: Constraints, code: int) -> dict[str, list]:
  """check name (as `violations` names it) -> the DNA Chisel specifications of `c` for a coding sequence of
  `protein` (stop codon included). Each specification passes exactly when dnajax's re-check of that name does:
  the GC window is min(window, sequence length), as in sequence.gc_windows (DNA Chisel passes any sequence shorter
  than its window); homopolymers are runs of any base, sites patterns on either strand, repeats k-mers counted with
  their reverse complements, splice sites patterns on the coding strand."""
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
  return checks


def chisel_specs(protein: str, c: Constraints, code: int) -> list:
  """The DNA Chisel constraint specifications of `c` for a coding sequence of `protein` (stop codon included)."""
  return [spec for specs in chisel_checks(protein, c, code).values() for spec in specs]


def chisel_pass(problem) -> bool:
  return problem.all_constraints_pass()


def feasible_start(protein: str, usage, c: Constraints, code: int, rng: np.random.Generator):
  """A DnaOptimizationProblem holding a sequence that meets every constraint, or UserError naming the violated
  one."""
  import dnachisel as dc

  problem = dc.DnaOptimizationProblem(codons.sample_cds(protein, usage, rng),
                                      constraints=chisel_specs(protein, c, code), logger=None)
  try:
    problem.resolve_constraints()
  except dc.NoSolutionError as e:
    failing = [str(r.specification) for r in problem.constraints_evaluations() if not r.passes]
    what = "; ".join(failing) or str(e).splitlines()[0]
    raise Infeasible(f"no sequence satisfies the constraints ({what})") from None
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
  """The design's report: translation check, CAI, GC (overall and window extremes), homopolymer, repeated k-mers,
  restriction and splice sites, all measured on the final sequence."""
  from Bio.Seq import Seq

  lo, hi = sequence.gc_windows(seq, c.gc_window)
  return {"translation_ok": str(Seq(seq).translate(table=code)) == protein + "*",
          "mfe_5prime": expression.mfe_5prime(seq, c.mfe_window),
          "cai": codons.cai(seq, usage), "gc": sequence.gc_content(seq), "gc_window_min": lo,
          "gc_window_max": hi, "longest_homopolymer": sequence.longest_homopolymer(seq),
          "repeated_kmers": sequence.repeated_kmers(seq, c.avoid_repeats or 20),
          "restriction_sites": sequence.restriction_sites(seq, c.avoid_sites),
          "splice_sites": sequence.splice_sites(seq)}


def violations(d: dict, c: Constraints, max_codon_distance: int | None = None) -> list[str]:
  """The constraints a described design breaks (dnajax's own re-check after DNA Chisel's solver), with the 5' folding
  bound and the trust region (`d["codon_distance"]`)."""
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
  if max_codon_distance is not None and (d.get("codon_distance") is None or d["codon_distance"] > max_codon_distance):
    v.append("codon_distance")
  return v
