"""The expression benchmark (a program that prints numbers, not a test): 1,240 synonymous mRFP1 variants with measured
E. coli expression (Nieuwkoop et al. 2023; ../shared/data/mrfp_expression_trainval.csv, Split train 1,021 / val 219).

  python -m benchmarks.expression_bench [--data-dir ../shared/data] [--workdir CDS_RUN] [--pll-units codon[,base]]
      [--pll-rows N] [--organism e_coli] [--output results.json]
      [--finetune-dir FT_DIR [--methods trees,trees_nofeatures,head,head_nofeatures,...] [--gradient-epochs 3]
       [--design]]

Prints a Markdown table of Spearman correlations with the measured expression on `val` (and on `train`, where a
number needs no fitting) of:
  * every hand feature of `dnajax features` alone (dnajax.bio.expression: CAI, GC, GC3, 5' GC, 5' MFE, rare codons);
  * a ridge regression on those features, fitted on `train` (the features-only baseline);
  * a ridge regression on 1- to 4-mer counts fitted on `train` (the k-mer baseline of `dnajax finetune`);
  * with --workdir (a run trained on coding sequences, e.g. `dnajax train --config configs/cds.py --data
    ecoli_cds.fasta`): the model's zero-shot pseudo-log-likelihood per codon (and per base) on the val rows;
  * with --finetune-dir (and --workdir as the base model): `dnajax finetune --task regression` of that base on train,
    selected on val, with each of --methods in FT_DIR/<method> (reused when rerun): trees (the default: boosted trees
    on the encoder's per-position states and the hand features) and the gradient methods head, lora, full (AdamW,
    the hand features entering the linear head next to the pooled embedding; --gradient-epochs, default 3, since the
    default 10 epochs take ~25 min per method on 2 cores), each also as METHOD_nofeatures (without the hand
    features); val Spearman and wall time each;
beside the published test-split numbers (CodonBERT paper, Li et al. 2024, Genome Research, Table 2). Those numbers
are all about measured expression.

With --design (needs FT_DIR/trees), a second table: coding sequences for the library's protein (mRFP1) from `dnajax
design` with --objective pll and --objective expression (also with a trust region of 10 codons), and from DNA
Chisel's CodonOptimize (most frequent codon; codon usage matched), each with its PREDICTED expression (the trees
model), placed as a percentile of the library's MEASURED values (train + val), its codon distance to the nearest
training variant, 5' MFE and CAI. Those are predictions, not measurements: no design here was expressed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

import numpy as np

from dnajax import runtime
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


def finetune_rows(lib: dict, base: str, ft_dir: str, methods: list[str], epochs: int) -> list[dict]:
  """One row per fine-tuning method (val Spearman, wall time), each fine-tuned into ft_dir/<method> (reused)."""
  from dnajax.training import finetune_job

  os.makedirs(ft_dir, exist_ok=True)
  paths = {}
  for split in ("train", "val"):
    paths[split] = os.path.join(ft_dir, f"{split}.csv")
    writers.atomic_write_text(paths[split], "Sequence,Value\n" + "".join(
        f"{c},{v!r}\n" for c, v in zip(lib[split]["seqs"], lib[split]["values"])))
  rows = []
  for method in methods:
    if method not in METHODS:
      raise UserError(f"--methods: {method!r} is not one of {', '.join(METHODS)}")
    kind, _, no = method.partition("_")
    overrides = [("finetune.features", "none" if no else "auto")]
    gradient = kind in ("head", "lora", "full")
    if gradient:
      overrides.append(("finetune.epochs", str(epochs)))
    info = finetune_job.finetune(base, paths, os.path.join(ft_dir, method), "regression", kind, overrides, (0,),
                                 "Sequence", "Value", progress=True)
    run = info["runs"]["0"]
    what = METHODS[method] + (f", {epochs} epochs" if gradient else "")
    rows.append({"model": f"dnajax finetune: {what} ({run['wall_seconds'] / 60:.1f} min)", "fitted": "train",
                 "train": None, "val": run["val"]["spearman"], "minutes": run["wall_seconds"] / 60})
  return rows


METHODS = {"trees": "trees on per-position states + hand features (the default)",
           "trees_nofeatures": "trees on per-position states alone",
           "head": "linear head on the frozen encoder + hand features",
           "head_nofeatures": "linear head on the frozen encoder alone",
           "lora": "LoRA adapters + head + hand features", "lora_nofeatures": "LoRA adapters + head alone",
           "full": "the whole encoder + head + hand features", "full_nofeatures": "the whole encoder + head alone"}


DESIGNS = (  # (row name, objective, --max-codon-changes, start from the median measured training variant, --lock)
    ("dnajax design --objective pll", "pll", None, False, ()),
    ("dnajax design --objective expression", "expression", None, False, ()),
    ("dnajax design --objective expression --max-codon-changes 5", "expression", 5, False, ()),
    ("dnajax design --objective expression --max-codon-changes 10", "expression", 10, False, ()),
    ("dnajax design --objective expression --max-codon-changes 20", "expression", 20, False, ()),
    ("dnajax design --objective expression --start-sequence MEDIAN --lock 1-10", "expression", None, True, ((1, 10),)),
)


def design_rows(lib: dict, base: str, model_dir: str, organism: str) -> tuple[list[dict], float]:
  """(designs for the library's protein by each of DESIGNS and by DNA Chisel, placed by predicted expression; the
  90th percentile of the predictor's output over the library's training rows)."""
  import dnachisel as dc
  from Bio.Seq import Seq

  from dnajax.bio import codons
  from dnajax.design import constraints, expression_search, search
  from dnajax.evaluation.engine import Engine
  from dnajax.evaluation.expression_model import ExpressionModel

  code = codons.ORGANISMS[codons.check_organism(organism)][1]
  train = lib["train"]
  protein = str(Seq(train["seqs"][0]).translate(table=code)).rstrip("*")
  model = ExpressionModel(model_dir)
  engine = Engine.from_workdir(base)
  measured = np.sort(np.concatenate([train["values"], lib["val"]["values"]]))
  usage = codons.codon_usage(organism, code)
  median = train["seqs"][int(np.argsort(train["values"])[len(train["values"]) // 2])]
  seqs, seconds = {}, {}
  for name, objective, bound, from_median, lock in DESIGNS:
    c = constraints.Constraints(start_sequence=median if from_median else "", lock=lock)
    t0 = time.time()
    [found] = search.design_protein(engine, "mRFP1", protein, organism, code, c, 1, 0, search.DEFAULT_ROUNDS[objective],
                                    guide=expression_search.Guide(objective, model, bound), progress=True)
    seqs[name], seconds[name] = found["sequence"], time.time() - t0
    print(f"expression_bench: {name}: {seconds[name]:.0f} s", file=sys.stderr)
  for method, label in (("use_best_codon", "most frequent codon"), ("match_codon_usage", "codon usage matched")):
    t0 = time.time()
    problem = dc.DnaOptimizationProblem(codons.sample_cds(protein, usage, np.random.default_rng(0)),
                                        constraints=constraints.chisel_specs(protein, constraints.Constraints(), code),
                                        objectives=[dc.CodonOptimize(species=organism, method=method)], logger=None)
    problem.resolve_constraints()
    problem.optimize()
    seqs[f"DNA Chisel CodonOptimize ({label})"], seconds[f"DNA Chisel CodonOptimize ({label})"] = (
        problem.sequence, time.time() - t0)
  best = int(np.argmax(train["values"]))
  for what, i in (("best", best), ("median", train["seqs"].index(median))):
    seqs[f"{what} measured training variant (reference)"] = train["seqs"][i]
    seconds[f"{what} measured training variant (reference)"] = None
  pred = model.predict(list(seqs.values()))
  rows = []
  for (name, seq), p in zip(seqs.items(), pred):
    ref = name.endswith("(reference)")
    rows.append({"design": name, "predicted": float(p),
                 "percentile": 100.0 * np.searchsorted(measured, p, side="right") / len(measured),
                 "codon_distance_to_training": model.codon_distance(seq), "mfe_5prime": expression.mfe_5prime(seq),
                 "cai": codons.cai(seq, usage), "seconds": seconds[name],
                 "measured": train["values"][train["seqs"].index(seq)] if ref else None})
  return rows, float(np.percentile(model.predict(train["seqs"]), 90))


def design_table(rows: list[dict], measured_range: tuple[float, float], p90: float) -> str:
  out = ["| mRFP1 coding sequence | PREDICTED expression | percentile of the MEASURED library values | codon "
         "distance to nearest training variant | 5' MFE (kcal/mol) | CAI | seconds (2 cores) |",
         "|---|---|---|---|---|---|---|"]
  for r in rows:
    extra = f" (measured {r['measured']:.2f})" if r["measured"] is not None else ""
    out.append(f"| {r['design']} | {r['predicted']:.3f}{extra} | {r['percentile']:.1f} | "
               f"{render.number(r['codon_distance_to_training'], 'd', '-')} | {r['mfe_5prime']:.1f} | "
               f"{r['cai']:.3f} | {render.number(r['seconds'], '.0f', '-')} |")
  out.append(f"\nMeasured library values range {measured_range[0]:.2f}-{measured_range[1]:.2f} (log scale); the "
             f"predictor's 90th percentile over its own training rows: {p90:.3f}.")
  return "\n".join(out)


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
  p.add_argument("--finetune-dir", help="fine-tune --workdir here with each of --methods (reused when rerun)")
  p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated: {', '.join(METHODS)}")
  p.add_argument("--gradient-epochs", type=int, default=3, help="epochs of head, lora and full (default 3)")
  p.add_argument("--design", action="store_true", help="the design table (needs FT_DIR/trees)")
  args = p.parse_args(argv)
  runtime.setup_logging()
  if (args.finetune_dir or args.design) and not args.workdir:
    print("expression_bench: error: --finetune-dir and --design need --workdir (the base model)", file=sys.stderr)
    return 2
  path = os.path.join(args.data_dir, CSV)
  if not os.path.isfile(path):
    print(f"expression_bench: {path} not present; skipped", file=sys.stderr)
    return 0
  t0 = time.time()
  lib = read_library(path)
  rows, mats = feature_rows(lib, args.organism)
  rows += ridge_rows(lib, mats)
  t_features = time.time() - t0
  designs, p90 = [], None
  try:
    if args.workdir:
      rows += pll_rows(lib, args.workdir, [u for u in args.pll_units.split(",") if u], args.pll_rows)
    if args.finetune_dir:
      rows += finetune_rows(lib, args.workdir, args.finetune_dir, [m for m in args.methods.split(",") if m],
                            args.gradient_epochs)
    if args.design:
      designs, p90 = design_rows(lib, args.workdir, os.path.join(args.finetune_dir or "", "trees"), args.organism)
  except UserError as e:
    print(f"expression_bench: error: {e}", file=sys.stderr)
    return 2
  print(f"### expression (train {len(lib['train']['seqs'])}, val {len(lib['val']['seqs'])} rows; features and "
        f"ridges {t_features:.0f} s, all {time.time() - t0:.0f} s)\n")
  print(table(rows))
  if designs:
    values = lib["train"]["values"] + lib["val"]["values"]
    print("\n" + design_table(designs, (min(values), max(values)), p90))
  if args.output:
    result = {"predictors": rows, "designs": designs, "p90_train_predicted": p90}
    writers.atomic_write_text(args.output, json.dumps(result, indent=1) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
