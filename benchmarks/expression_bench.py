"""The expression benchmark (a program that prints numbers, not a test): 1,240 synonymous mRFP1 variants with measured
E. coli expression (Nieuwkoop et al. 2023; ../shared/data/mrfp_expression_trainval.csv, Split train 1,021 / val 219).

  python -m benchmarks.expression_bench [--data-dir ../shared/data] [--workdir CDS_RUN] [--pll-units codon[,base]]
      [--pll-rows N] [--organism e_coli] [--output results.json]

Prints a Markdown table of Spearman correlations with the measured expression on `val` (and on `train`, where a
number needs no fitting) of:
  * every hand feature of `dnajax features` alone (dnajax.bio.expression: CAI, GC, GC3, 5' GC, 5' MFE, rare codons);
  * a ridge regression on those features, fitted on `train` (the features-only baseline);
  * a ridge regression on 1- to 4-mer counts fitted on `train` (the k-mer baseline of `dnajax finetune`);
  * with --workdir (a run trained on coding sequences, e.g. `dnajax train --config configs/cds.py --data
    ecoli_cds.fasta`): the model's zero-shot pseudo-log-likelihood per codon (and per base) on the val rows;
beside the published test-split numbers (CodonBERT paper, Li et al. 2024, Genome Research, Table 2). All numbers
here are about measured expression; none is about a design.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

from dnajax.bio import expression
from dnajax.data import tokens, writers
from dnajax.errors import UserError
from dnajax.evaluation import downstream, render
from dnajax.evaluation.engine import Engine

SHARED_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")
CSV = "mrfp_expression_trainval.csv"
# Spearman on the test split of this library: Li et al. 2024 (CodonBERT), Genome Research, Table 2.
PUBLISHED = (("CodonBERT (BERT pretrained on ~10M mRNAs)", 0.85), ("RNA-FM + TextCNN", 0.80),
             ("codon TextCNN", 0.78), ("TF-IDF + random forest", 0.57))


def read_library(path: str) -> dict[str, dict]:
  """{'train': {seqs, values}, 'val': ...} from the CSV (columns Sequence, Value, Split; CDS written with U)."""
  out = {}
  with open(path, newline="") as f:
    for row in csv.DictReader(f):
      part = out.setdefault(row["Split"], {"seqs": [], "values": []})
      part["seqs"].append(row["Sequence"].upper().replace("U", "T"))
      part["values"].append(float(row["Value"]))
  if not {"train", "val"} <= set(out):
    raise UserError(f"{path}: needs Split values train and val")
  return out


def spearman(x, y) -> float | None:
  return downstream.regression_metrics(np.asarray(y, float), np.asarray(x, float))["spearman"]


def feature_rows(lib: dict, organism: str) -> tuple[list[dict], dict]:
  """One table row per hand feature (train and val Spearman) and the feature matrices {split: float[N, F]}."""
  mats = {s: np.array([list(expression.features(c, organism).values()) for c in lib[s]["seqs"]])
          for s in ("train", "val")}  # features() returns FEATURE_NAMES order
  rows = [{"model": f"feature `{name}` alone", "fitted": "no",
           "train": spearman(mats["train"][:, j], lib["train"]["values"]),
           "val": spearman(mats["val"][:, j], lib["val"]["values"])}
          for j, name in enumerate(expression.FEATURE_NAMES)]
  return rows, mats


def ridge_rows(lib: dict, mats: dict) -> list[dict]:
  """The features-only ridge and the k-mer ridge, fitted on train, Spearman on val."""
  ids = {s: [tokens.encode(c) for c in lib[s]["seqs"]] for s in ("train", "val")}
  feats = downstream.LinearBaseline("regression", lambda rows: np.asarray(rows))
  feats.fit(mats["train"], lib["train"]["values"])
  kmer = downstream.KmerBaseline("regression").fit(ids["train"], lib["train"]["values"])
  return [{"model": "ridge on the hand features (baseline)", "fitted": "train",
           "train": None, "val": spearman(feats.predict(mats["val"]), lib["val"]["values"])},
          {"model": "ridge on 1-4-mer counts (baseline)", "fitted": "train",
           "train": None, "val": spearman(kmer.predict(ids["val"]), lib["val"]["values"])}]


def pll_rows(lib: dict, workdir: str, units: list[str], limit: int | None) -> list[dict]:
  """Zero-shot pseudo-log-likelihood per unit (nats per base / per codon) of the val rows, Spearman with values."""
  engine = Engine.from_workdir(workdir)
  seqs, values = lib["val"]["seqs"][:limit], lib["val"]["values"][:limit]
  rows = []
  for unit in units:
    t0 = time.time()
    per = []
    for k, c in enumerate(seqs):
      lp = engine.pseudo_log_likelihood(tokens.encode(c), unit)
      per.append(np.nansum(lp) / (len(c) / (3 if unit == "codon" else 1)))
      print(f"\rPLL per {unit}: {k + 1}/{len(seqs)}", end="", file=sys.stderr)
    print(file=sys.stderr)
    rows.append({"model": f"zero-shot PLL per {unit} ({os.path.basename(os.path.normpath(workdir))}; "
                          f"{time.time() - t0:.0f} s)", "fitted": "no", "train": None, "val": spearman(per, values),
                 "rows": len(seqs)})
  return rows


def table(rows: list[dict]) -> str:
  out = ["| predictor (mRFP1 synonymous variants, E. coli) | fitted on | Spearman train | Spearman val |",
         "|---|---|---|---|"]
  for r in rows:
    out.append(f"| {r['model']} | {r['fitted']} | {render.number(r['train'], '.3f', '-')} | "
               f"{render.number(r['val'], '.3f', '-')}" + (f" ({r['rows']} rows)" if r.get("rows") else "") + " |")
  for name, rho in PUBLISHED:
    out.append(f"| published: {name} | library train split | - | {rho:.2f} (test split) |")
  return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m benchmarks.expression_bench", description=__doc__.splitlines()[0])
  p.add_argument("--data-dir", default=SHARED_DATA)
  p.add_argument("--workdir", help="a run trained on coding sequences, for the zero-shot PLL rows")
  p.add_argument("--pll-units", default="codon", help="comma-separated: codon, base")
  p.add_argument("--pll-rows", type=int, help="score only the first N val rows (default all 219)")
  p.add_argument("--organism", default="e_coli")
  p.add_argument("--output", help="write the rows as JSON here")
  args = p.parse_args(argv)
  path = os.path.join(args.data_dir, CSV)
  if not os.path.isfile(path):
    print(f"expression_bench: {path} not present; skipped", file=sys.stderr)
    return 0
  t0 = time.time()
  lib = read_library(path)
  rows, mats = feature_rows(lib, args.organism)
  rows += ridge_rows(lib, mats)
  t_features = time.time() - t0
  if args.workdir:
    rows += pll_rows(lib, args.workdir, [u for u in args.pll_units.split(",") if u], args.pll_rows)
  print(f"### expression (train {len(lib['train']['seqs'])}, val {len(lib['val']['seqs'])} rows; features and "
        f"ridges {t_features:.0f} s, all {time.time() - t0:.0f} s)\n")
  print(table(rows))
  if args.output:
    writers.atomic_write_text(args.output, json.dumps(rows, indent=1) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
