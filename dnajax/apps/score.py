"""`dnajax score`: pseudo-log-likelihood (PLL) of whole sequences under a trained model, for ranking variants.

Each position (or each codon: its three bases together) is masked in turn, in a window of the model's length centred
on it, and the model's log-probability of the true base is read; the PLL is their sum (natural log). Masked copies
are batched, so a sequence of n bases costs n forward passes of one window (n / 3 with `unit="codon"`).
"""

from __future__ import annotations

import sys

import numpy as np
from tqdm import tqdm

from dnajax.data import readers, tokens
from dnajax.errors import UserError, warn
from dnajax.evaluation import metrics, render
from dnajax.evaluation.engine import SCORING_UNITS, Engine


def add_arguments(p) -> None:
  p.add_argument("--workdir", required=True)
  p.add_argument("--input", nargs="+", required=True)
  p.add_argument("--unit", choices=tuple(SCORING_UNITS), default="base",
                 help="mask one base at a time, or the three bases of each codon together")
  p.add_argument("--step", type=int)
  p.add_argument("--format", choices=("fasta", "genbank"))
  p.add_argument("--json", action="store_true", help="one JSON object (with per-position log-probabilities)")


def score(workdir: str, inputs: list[str], unit: str = "base", step: int | None = None, fmt: str | None = None,
          per_position: bool = False, progress: bool = True) -> dict:
  """{checkpoint_step, unit, sequences: [{name, length, scored_bases, pll, pll_per_base[, log_probs]}]} in input
  order; PLL in nats. A record with no A/C/G/T base has pll and pll_per_base None (a sum over nothing is not a
  likelihood) and is named on stderr (one line); so is an id on more than one record. Raises UserError for bad
  files, a bad unit or a bad workdir, and when no record has a base to score."""
  records = readers.read_files(inputs, fmt)  # a bad file fails before any model work
  readers.warn_repeated_ids([r.name for r in records], ", ".join(inputs))  # output rows are named by record id
  if not any(((r.ids >= tokens.A) & (r.ids <= tokens.T)).any() for r in records):
    raise UserError(f"{', '.join(inputs)}: no record has an A/C/G/T base to score (only N); nothing to measure, "
                    "pass sequences with A/C/G/T bases")
  engine = Engine.from_workdir(workdir, step)
  results, empty = [], []
  for r in tqdm(records, desc="score", unit="seq", disable=not progress or len(records) < 2):
    lp = engine.pseudo_log_likelihood(r.ids, unit)
    item = {"name": r.name, "length": int(len(r.ids)), **metrics.pll_totals(lp)}
    if not item["scored_bases"]:
      empty.append(r)
    if per_position:
      item["log_probs"] = [None if np.isnan(x) else float(x) for x in lp]
    results.append(item)
  for r in empty:  # after the progress bar, one line each
    warn(f"record {r.name!r} in {r.source}: no A/C/G/T base to score; its pll and pll_per_base are left empty")
  return {"checkpoint_step": engine.step, "unit": unit, "sequences": results}


def format_tsv(r: dict) -> str:
  """One line per sequence: name, length, scored_bases, pll, pll_per_base (empty where nothing was scored)."""
  lines = ["name\tlength\tscored_bases\tpll\tpll_per_base"]
  for s in r["sequences"]:
    lines.append(f"{s['name']}\t{s['length']}\t{s['scored_bases']}\t{render.number(s['pll'], '.4f', '')}\t"
                 f"{render.number(s['pll_per_base'], '.5f', '')}")
  return "\n".join(lines) + "\n"


def main(args, overrides) -> int:
  r = score(args.workdir, args.input, args.unit, args.step, args.format, per_position=args.json)
  sys.stdout.write(render.to_json(r, indent=None) + "\n" if args.json else format_tsv(r))
  return 0
