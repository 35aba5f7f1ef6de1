"""`dnajax features`: expression-relevant features of coding sequences as a TSV, one row per input in input order.

Hand features (`dnajax.bio.expression`: CAI, GC overall / third positions / 5' end, 5' mRNA folding energy by
ViennaRNA, rare codons and their runs) for every CDS of a FASTA or CSV/TSV table; with `--workdir` (a model trained
on coding sequences, e.g. configs/cds.py) also the model's pseudo-log-likelihood per base (each base masked in turn)
and per codon (each codon's three bases masked together), in nats.
"""

from __future__ import annotations

import sys

import numpy as np
from tqdm import tqdm

from dnajax import runtime
from dnajax.bio import codons, expression
from dnajax.data import tables, tokens, writers
from dnajax.errors import UserError
from dnajax.evaluation.engine import Engine

PLL_COLUMNS = (("pll_per_base", "base"), ("pll_per_codon", "codon"))


def add_arguments(p) -> None:
  p.add_argument("--input", required=True, help="FASTA, or CSV/TSV with a header (CDS written with T or U)")
  p.add_argument("--output", required=True, help="the TSV to write ('-': stdout)")
  p.add_argument("--sequence-column", default="sequence", help="CSV/TSV column holding the CDS (case-insensitive)")
  p.add_argument("--label-column", help="a column to copy into the TSV as `label` (e.g. measured expression)")
  p.add_argument("--organism", default="e_coli", help=f"host for CAI and rare codons: {', '.join(codons.ORGANISMS)}")
  p.add_argument("--mfe-window", type=int, default=expression.MFE_WINDOW_NT,
                 help="CDS bases folded for mfe_5prime (after --utr5)")
  p.add_argument("--utr5", default="", help="5'UTR folded in front of the CDS start (default none: the CDS alone)")
  p.add_argument("--workdir", help="a run trained on coding sequences: adds its pseudo-log-likelihood per base and "
                 "per codon")
  p.add_argument("--step", type=int, help="checkpoint step of --workdir (default: the latest)")
  p.add_argument("--no-progress", action="store_true", help="no progress bar")


def check_rows(table: tables.SequenceTable) -> None:
  """UserError naming the first row that is not a whole-codon A/C/G/T CDS (before any work is done)."""
  for ident, ids in zip(table.ids, table.seqs):
    try:
      expression.check_cds(tokens.decode(ids))
    except UserError as e:
      raise UserError(f"{table.source}, row {ident}: {e}") from None


def compute(table: tables.SequenceTable, organism: str = "e_coli", window: int = expression.MFE_WINDOW_NT,
            utr5: str = "", engine: Engine | None = None, progress: bool = True) -> list[dict]:
  """One dict per row of `table`, in order: id, length (nt), label (when the table has labels), every
  expression.FEATURES value, and with an `engine` pll_per_base and pll_per_codon (nats; mean over scored bases /
  codons). Raises UserError naming the row for a sequence that is not a whole-codon A/C/G/T CDS."""
  codons.check_organism(organism)
  expression.check_utr(utr5)
  check_rows(table)
  rows = []
  for i in tqdm(range(len(table)), desc="features", unit="seq", leave=False,
                disable=not (progress and runtime.is_main() and len(table) > 1)):
    ident, ids = table.ids[i], table.seqs[i]
    values = expression.features(tokens.decode(ids), organism, window, utr5)
    row = {"id": ident, "length": len(ids)}
    if table.labels is not None:
      row["label"] = table.labels[i]
    row.update(values)
    if engine is not None:
      for name, unit in PLL_COLUMNS:
        lp = engine.pseudo_log_likelihood(ids, unit)
        per = np.nansum(lp) / (np.count_nonzero(~np.isnan(lp)) / (3 if unit == "codon" else 1))
        row[name] = float(per)
    rows.append(row)
  return rows


def main(args, overrides) -> int:
  if args.output != "-":
    writers.check_outputs([("--output", args.output)], [("--input", args.input)])
  if args.mfe_window < 1:
    raise UserError(f"--mfe-window {args.mfe_window}: use at least 1 base")
  codons.check_organism(args.organism)
  table = tables.read_table(args.input, args.sequence_column, args.label_column or "label",
                            require_labels=bool(args.label_column))
  if not args.label_column:
    table.labels = None
  check_rows(table)
  expression.check_utr(args.utr5)
  engine = Engine.from_workdir(args.workdir, args.step) if args.workdir else None
  rows = compute(table, args.organism, args.mfe_window, args.utr5, engine, not args.no_progress)
  columns = ["id", "length"] + (["label"] if table.labels is not None else []) + list(expression.FEATURE_NAMES)
  columns += [name for name, _ in PLL_COLUMNS] if engine is not None else []
  text = writers.tsv_table(rows, columns)
  if runtime.is_main():
    if args.output == "-":
      sys.stdout.write(text)
    else:
      writers.atomic_write_text(args.output, text)
    region = f"--utr5 ({len(args.utr5)} nt) + " if args.utr5 else "no 5'UTR given: "
    print(f"dnajax features: {len(rows)} sequences -> {'stdout' if args.output == '-' else args.output}; "
          f"mfe_5prime folds {region}the first {args.mfe_window} nt of each CDS"
          + ("" if args.utr5 else " (the CDS start alone)"), file=sys.stderr)
  return 0
