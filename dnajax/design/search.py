"""The design search: coding sequences for a protein, improved by a trained model under synthesis constraints.

1. Constraints are DNA Chisel specifications (`constraints`). A usage-weighted random coding sequence (or the user's
   start sequence, whose locked codons the solver leaves alone) is made feasible by DNA Chisel's solver; if no
   sequence can satisfy them the protein is reported infeasible with the violated constraint.
2. Search: synonymous codon changes only. In each pass every `stride`-th codon is masked at once (only the bases
   where its synonyms differ, so the amino acid stays visible) and the model's probabilities there score all
   synonymous codons (a batched estimate: one forward pass per window scores many codons); the best codon is taken
   if every constraint still holds. Passes repeat until nothing changes or `rounds` is reached. For the expression
   objective the search maximises a fine-tuned predictor's output instead (`expression_search`).
3. The final report uses the exact pseudo-log-likelihood, each codon masked in turn (its three bases together: the
   unit the search changes, at a third of the forward passes of masking each base; `pll_unit="base"` for that),
   CAI against the organism's codon usage (Biopython's CodonAdaptationIndex), GC, homopolymers, repeats and
   restriction sites, all re-checked after the design (`constraints.describe`, `constraints.violations`).
4. `n` designs, ranked by the objective: a design that repeats an earlier one is started again from other seeded
   starts, then changed by the single synonymous codon the model's estimate loses least by; one that still repeats (a
   protein with almost no synonymous choice) is kept and marked `duplicate_of`.
"""

from __future__ import annotations

import math

import numpy as np

from dnajax.bio import codons
from dnajax.data import tokens
from dnajax.design.constraints import Constraints, Infeasible, chisel_pass, codon_options, describe, mfe, violations
from dnajax.design.expression_search import Guide, design_start, improve_expression, ranked_training, within_trust
from dnajax.evaluation import metrics
from dnajax.evaluation.engine import Engine


def codon_scores(engine: Engine, seq: str, codon_ids, options) -> dict[int, dict[str, float]]:
  """Mask the codons `codon_ids` together (one batched pass over windows covering the sequence) and score each of
  their `options` (constraints.codon_options: the synonymous codons) by the summed log-probabilities of its bases at
  the positions where the options differ. The positions they share stay visible, so the model knows the amino acid:
  for most amino acids this is exactly log p(third base | first two, context), the choice the search makes."""
  ids = tokens.encode(seq).copy()
  varying = {j: codons.varying_positions(options[j]) for j in codon_ids}
  for j in codon_ids:
    ids[[3 * j + k for k in varying[j]]] = tokens.MASK
  logp = engine.sequence_log_probs([ids])[0]
  return {j: {c: float(sum(logp[3 * j + k, "ACGT".index(c[k])] for k in varying[j])) for c in options[j]}
          for j in codon_ids}


def improve(engine: Engine, problem, options, rounds: int = 3, stride: int = 8, accept=chisel_pass) -> int:
  """Codon changes among `options` that raise the model's estimate while `accept(problem)` holds (every
  constraint); returns how many."""
  changes = 0
  for _ in range(rounds):
    changed = 0
    for offset in range(stride):
      js = [j for j in range(offset, len(options), stride) if len(options[j]) > 1]
      if not js:
        continue
      for j, by_codon in codon_scores(engine, problem.sequence, js, options).items():
        current = problem.sequence[3 * j:3 * j + 3]
        best = max(by_codon, key=by_codon.get)
        if by_codon[best] <= by_codon.get(current, -math.inf):  # includes best == current
          continue
        before = problem.sequence
        problem.sequence = before[:3 * j] + best + before[3 * j + 3:]
        if accept(problem):
          changed += 1
        else:
          problem.sequence = before
    changes += changed
    if not changed:
      break
  return changes


def diversify(engine: Engine, problem, options, avoid, stride: int = 8, accept=chisel_pass) -> bool:
  """Make the single codon change (among `options`) that the model's estimate (codon_scores) loses least by, among
  those that keep every constraint and give a sequence not in `avoid`; False (sequence unchanged) when none does."""
  seq = problem.sequence
  candidates = []
  for offset in range(stride):
    js = [j for j in range(offset, len(options), stride) if len(options[j]) > 1]
    if js:
      for j, by_codon in codon_scores(engine, seq, js, options).items():
        current = seq[3 * j:3 * j + 3]
        candidates += [(by_codon[current] - s, j, codon) for codon, s in by_codon.items() if codon != current]
  for _, j, codon in sorted(candidates):
    problem.sequence = seq[:3 * j] + codon + seq[3 * j + 3:]
    if problem.sequence not in avoid and accept(problem):
      return True
  problem.sequence = seq
  return False


DEFAULT_ROUNDS = {"pll": 3, "expression": 8}  # passes per objective (expression: 17-30 s each for mRFP1, 2 cores)

MAX_STARTS = 4  # seeded starts per design before a repeat of an earlier design is changed codon by codon


def report(engine: Engine, name: str, protein: str, seq: str, usage, c: Constraints, code: int, guide: Guide,
           pll_unit: str = "codon") -> dict:
  """The report of one coding sequence (a design, or with --score-only the sequence given): exact pseudo-log-likelihood
  (`pll_unit` masked in turn), predicted expression and codon distance to the predictor's training sequences (None
  without a predictor; the distance None also when no training sequence has this length), `describe`'s columns and
  `violations` (names of the constraints it breaks)."""
  pll = metrics.pll_totals(engine.pseudo_log_likelihood(tokens.encode(seq), pll_unit))
  d = {"protein": name, "protein_sequence": protein, "sequence": seq, "length": len(seq),
       "objective": guide.objective, "model_pll": pll["pll"], "model_pll_per_base": pll["pll_per_base"],
       "pll_unit": pll_unit,
       "predicted_expression": None if guide.model is None else float(guide.model.predict([seq])[0]),
       "codon_distance_to_training": None if guide.model is None else guide.model.codon_distance(seq),
       **describe(seq, protein, usage, c, code)}
  d["violations"] = violations(d, c, guide.max_codon_distance)
  return d


def objective_value(d: dict) -> float:
  """What a design maximised: its predicted expression for the expression objective, else its PLL."""
  return d["predicted_expression"] if d["objective"] == "expression" else d["model_pll"]


def design_protein(engine: Engine, name: str, protein: str, organism: str, code: int, c: Constraints, n: int,
                   seed: int, rounds: int = 3, pll_unit: str = "codon", guide: Guide | None = None,
                   progress: bool = False) -> list[dict]:
  """`n` different designs of one protein (seeded), ranked by the objective (`objective_value`, best first: names
  NAME_design1.. and column `rank` follow that order): each a feasible start (`design_start`: from c.start_sequence
  when given) improved by the model's estimate (`improve`) or, for guide.objective "expression", by the predicted
  expression (`improve_expression`), under the constraints, locked codons, the 5' folding bound and the trust region,
  with its `report`. A design that repeats an earlier one is redone from up to MAX_STARTS seeded starts, then given
  the single synonymous change the model loses least by (`diversify`); one that still repeats (no other coding
  sequence meets the constraints, e.g. "MW" has only its stop codon to vary) is kept with `duplicate_of` naming the
  earlier design. Raises Infeasible when no sequence meets the constraints or a design fails dnajax's re-check."""
  guide = guide or Guide()
  usage = codons.codon_usage(organism, code)
  options = codon_options(protein, usage, c)
  if guide.model is not None:
    guide.model.check_length(f"protein {name}", 3 * (len(protein) + 1))

  def accept(p) -> bool:
    return (chisel_pass(p) and within_trust(guide, p.sequence) and
            (c.min_mfe_5prime is None or mfe(p.sequence, c) >= c.min_mfe_5prime))

  ranked = ranked_training(guide, protein, code, progress)
  out, seen = [], set()
  for k in range(n):
    problem, changes = None, 0
    for t in range(MAX_STARTS if k else 1):
      rng = np.random.default_rng([seed, k] if t == 0 else [seed, k, t])
      try:
        problem = design_start(protein, usage, c, code, rng, guide, ranked, k + t * n, accept)
      except Infeasible:
        if problem is None:
          raise
        continue  # another start for a repeat: keep the repeat and try the next seed
      if guide.objective == "expression":
        changes = improve_expression(guide.model, problem, options, rounds, accept, progress,
                                     f"{name}: expression search, design {k + 1} of {n}")
      else:
        changes = improve(engine, problem, options, rounds, accept=accept)
      if problem.sequence not in seen:
        break
    if problem.sequence in seen:
      changes += diversify(engine, problem, options, seen, accept=accept)
    d = {**report(engine, name, protein, problem.sequence, usage, c, code, guide, pll_unit),
         "codon_changes_by_model": changes}
    if d["violations"]:  # DNA Chisel said yes; dnajax's own check disagrees: never emit it silently
      raise Infeasible(f"a design of {name} fails {', '.join(d['violations'])} after the solver; not written")
    seen.add(problem.sequence)
    out.append(d)
  return ranked_designs(name, out)


def ranked_designs(name: str, designs: list[dict]) -> list[dict]:
  """The designs of one protein best first by `objective_value` (ties in the order made; a design repeating an
  earlier one after every distinct design), named NAME_design1.., with `rank` and `duplicate_of` (the better-ranked
  design an identical one repeats; "" for none)."""
  repeat = [any(d["sequence"] == e["sequence"] for e in designs[:i]) for i, d in enumerate(designs)]
  order = sorted(range(len(designs)), key=lambda i: (repeat[i], -objective_value(designs[i]), i))
  out, first = [], {}
  for rank, i in enumerate(order, 1):
    d = {**designs[i], "name": f"{name}_design{rank}", "rank": rank}
    d["duplicate_of"] = first.get(d["sequence"], "")
    first.setdefault(d["sequence"], d["name"])
    out.append(d)
  return out
