"""Designing for expression: the search's objective (`Guide`), greedy ascent of a fine-tuned predictor's output over
synonymous codon changes (`improve_expression`), the 5' folding bound (`raise_mfe`) and the trust region around the
predictor's training sequences (`within_trust`, `design_start`).

A predictor learned from a few thousand variants is trustworthy only near them (see
`dnajax.evaluation.expression_model`): with `Guide.max_codon_distance` every accepted change stays within that many
codons of a training sequence of the same protein.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from tqdm import tqdm

from dnajax.design.constraints import (
  Constraints,
  Infeasible,
  chisel_pass,
  codon_options,
  feasible_start,
  mfe,
  start_from,
)


@dataclasses.dataclass
class Guide:
  """What the search maximises - "pll" (the model's estimate, as always) or "expression" (a fine-tuned predictor's
  output) - with the predictor (`expression_model.ExpressionModel`, optional for pll: then it only fills the report's
  predicted_expression and codon_distance_to_training) and the trust region: at most `max_codon_distance` codons from
  the nearest sequence the predictor was trained on (None: no bound)."""

  objective: str = "pll"
  model: object = None
  max_codon_distance: int | None = None


LINE_SEARCH = 16  # best single changes combined per pass of improve_expression


def synonymous_changes(seq: str, options, codon_ids=None) -> list[tuple[int, str]]:
  """(codon index, codon) of every single codon change of `seq` among `options` (constraints.codon_options: the
  synonymous codons of each position, one for a locked codon), at `codon_ids` (default all codons)."""
  return [(j, c) for j in (range(len(options)) if codon_ids is None else codon_ids)
          for c in options[j] if c != seq[3 * j:3 * j + 3]]


def _changed(seq: str, j: int, codon: str) -> str:
  return seq[:3 * j] + codon + seq[3 * j + 3:]


def _accepted(problem, seqs, accept) -> list[bool]:
  """accept(problem) for each sequence of `seqs`; problem.sequence is left as it was."""
  before, out = problem.sequence, []
  for s in seqs:
    problem.sequence = s
    out.append(bool(accept(problem)))
  problem.sequence = before
  return out


def improve_expression(model, problem, options, rounds: int, accept=chisel_pass, progress: bool = False,
                       desc: str = "expression search") -> int:
  """Greedy ascent of the predicted expression (`model.predict`) over synonymous codon changes (among `options`,
  constraints.codon_options) that keep
  `accept(problem)`; returns how many codons changed. Each pass predicts every accepted single change at once (one
  batch), then combines the LINE_SEARCH best gains, applied cumulatively in order of gain (a change that would break
  `accept` is skipped), and takes the best of the single best change and those combinations when it beats the
  current sequence. Stops after `rounds` passes or when no change raises the prediction."""
  current = float(model.predict([problem.sequence])[0])
  changed = 0
  for _ in tqdm(range(rounds), desc=desc, unit="pass", leave=False, disable=not progress):
    seq = problem.sequence
    moves = synonymous_changes(seq, options)
    moves = [m for m, ok in zip(moves, _accepted(problem, [_changed(seq, *m) for m in moves], accept)) if ok]
    if not moves:
      break
    pred = model.predict([_changed(seq, *m) for m in moves])
    order = [i for i in np.argsort(-pred, kind="stable") if pred[i] > current]
    if not order:
      break
    combos, used, s = [_changed(seq, *moves[order[0]])], {moves[order[0]][0]}, _changed(seq, *moves[order[0]])
    for i in order[1:]:
      j, codon = moves[i]
      if len(combos) >= LINE_SEARCH or j in used:
        continue
      if _accepted(problem, [_changed(s, j, codon)], accept)[0]:
        s = _changed(s, j, codon)
        used.add(j)
        combos.append(s)
    scores = np.concatenate([[pred[order[0]]], model.predict(combos[1:])])
    best = int(np.argmax(scores))
    if scores[best] <= current:
      break
    problem.sequence, current = combos[best], float(scores[best])
    changed += best + 1
  return changed


def raise_mfe(problem, options, c: Constraints, accept=chisel_pass) -> int:
  """Synonymous changes (among `options`) in the folded 5' window, each the one that raises mfe_5prime (`mfe`: c.utr5
  and the CDS start) most while `accept(problem)` holds, until it reaches c.min_mfe_5prime; returns how many. Raises
  Infeasible when no change raises it further."""
  changes, window_codons = 0, range(min(len(options), -(-c.mfe_window // 3)))
  while (now := mfe(problem.sequence, c)) < c.min_mfe_5prime:
    seq = problem.sequence
    moves = synonymous_changes(seq, options, window_codons)
    seqs = [_changed(seq, *m) for m in moves]
    ok = _accepted(problem, seqs, accept)
    energies = [mfe(x, c) if good else -math.inf for x, good in zip(seqs, ok)]
    if not energies or max(energies) <= now:
      utr = f" after the {len(c.utr5)}-nt --utr5" if c.utr5 else ""
      raise Infeasible(f"no sequence with mfe_5prime >= {c.min_mfe_5prime} kcal/mol over the first {c.mfe_window} "
                       f"nt{utr} was found (synonymous changes reached {now:.2f}); lower --mfe-5prime-min")
    problem.sequence = seqs[int(np.argmax(energies))]
    changes += 1
  return changes


def ranked_training(guide: Guide, protein: str, code: int, progress: bool = False) -> list[str]:
  """The predictor's training sequences that encode `protein` (stop codon included), best predicted first (a bar
  with `progress`: the whole library is predicted once)."""
  from Bio.Seq import Seq

  if guide.model is None or not guide.model.has_training():
    return []
  own = guide.model.training_for(lambda s: len(s) == 3 * (len(protein) + 1) and set(s) <= set("ACGT")
                                 and str(Seq(s).translate(table=code)) == protein + "*")
  if not own:
    return []
  pred = guide.model.predict(own, progress)
  return [own[i] for i in np.argsort(-pred, kind="stable")]


def design_start(protein: str, usage, c: Constraints, code: int, rng, guide: Guide, ranked: list[str], k: int,
                 accept):
  """The k-th design's feasible start, made feasible by DNA Chisel (fewest changes; locked codons untouched). With
  c.start_sequence: that sequence for the first design, and for later ones that sequence with a seeded tenth of its
  free codons redrawn by usage (`perturbed`). Otherwise usage-weighted random codons (`feasible_start`), except that
  with a trust region, or for the expression objective, the k-th best-predicted training sequence of the protein
  comes first: for the expression objective, the better predicted of the two. Then the 5' folding bound
  (`raise_mfe`). Raises Infeasible when no start meets every constraint and bound."""
  options = codon_options(protein, usage, c)
  starts = []
  if c.start_sequence:
    seq = c.start_sequence if k == 0 else perturbed(c.start_sequence, options, usage, protein, rng)
    starts.append(start_from(seq, protein, c, code))
    if starts[0] is None:
      raise Infeasible("the --start-sequence cannot be made to meet the constraints without changing its locked "
                       "codons" if c.lock else "no sequence near the --start-sequence meets the constraints")
  else:
    if ranked and (guide.objective == "expression" or guide.max_codon_distance is not None):
      starts.append(start_from(ranked[k % len(ranked)], protein, c, code))
    if not starts or (guide.objective == "expression" and guide.max_codon_distance is None):
      starts.append(feasible_start(protein, usage, c, code, rng))
  starts = [p for p in starts if p is not None]
  if not starts:
    raise Infeasible("no sequence satisfies the constraints near the predictor's training sequences")
  if len(starts) > 1:
    pred = guide.model.predict([p.sequence for p in starts])
    starts = [starts[int(np.argmax(pred))]]
  problem = starts[0]
  if c.min_mfe_5prime is not None:
    raise_mfe(problem, options, c, lambda p: chisel_pass(p) and within_trust(guide, p.sequence))
  if guide.max_codon_distance is not None and not within_trust(guide, problem.sequence):
    d = guide.model.codon_distance(problem.sequence)
    raise Infeasible(f"the feasible start is {'not comparable to any' if d is None else f'{d} codons from the nearest'}"
                     f" training sequence of the expression model (--max-codon-distance {guide.max_codon_distance})")
  if not accept(problem):
    raise Infeasible("no start meeting every constraint was found")
  return problem


PERTURBED_FRACTION = 0.1  # share of the free codons redrawn for each further design from a --start-sequence


def perturbed(seq: str, options, usage, protein: str, rng) -> str:
  """`seq` with PERTURBED_FRACTION of its free codons (more than one option) redrawn by codon usage (seeded by
  `rng`), so that further designs from one start sequence search from different places."""
  free = [j for j, o in enumerate(options) if len(o) > 1]
  out = list(seq[i:i + 3] for i in range(0, len(seq), 3))
  for j in rng.choice(free, size=max(1, round(PERTURBED_FRACTION * len(free))), replace=False) if free else []:
    weights = np.array([usage[(protein + "*")[j]][x] for x in options[j]], np.float64)
    out[j] = options[j][rng.choice(len(options[j]), p=weights / weights.sum())]
  return "".join(out)


def within_trust(guide: Guide, seq: str) -> bool:
  """Whether `seq` is inside the trust region (always, without a bound)."""
  if guide.max_codon_distance is None:
    return True
  d = guide.model.codon_distance(seq)
  return d is not None and d <= guide.max_codon_distance
