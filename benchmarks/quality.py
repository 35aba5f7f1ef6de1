"""The model-quality benchmark (a program that prints numbers, not a test).

  python -m benchmarks.quality --workdir W [--config configs/cpu.py] [--data-dir ../shared/data]
      [--only synthetic|real] [--output results.json] [--config.KEY=VALUE ...]


Trains one config (default configs/cpu.py) twice and compares it with the baselines:
  * synthetic - on the structured synthetic generator; validation at mask rates 0.15 and 0.30 with the exact
    Bayes-optimal accuracy and cross-entropy on the same masks;
  * real      - on the E. coli K-12 genome (FASTA) with its last 10% held out as a contiguous block; evaluated on
    that block and on other genomes it never saw (the Yersinia pestis plasmid pPCP1, phage lambda).
Each run lives in WORKDIR/<name> and is resumed or reused if already trained. Prints a Markdown table and writes
JSON. The real part needs the data directory (../shared/data beside the project; --data-dir).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from dnajax import cli
from dnajax import config as config_lib
from dnajax.apps import evaluate
from dnajax.data import rundir, writers
from dnajax.data.corpus import Corpus
from dnajax.errors import UserError
from dnajax.evaluation import render
from dnajax.evaluation.engine import Engine
from dnajax.evaluation.validation import Validation
from dnajax.training import loop

REAL_TRAIN = "GCF_000005845.2_ASM584v2_genomic.fna.gz"
REAL_OTHER = (("Y. pestis plasmid pPCP1 (other species)", "NC_005816.gb"),
              ("phage lambda (other genome)", "lambda_phage_NEB3011.fa"))
MASK_RATES = (0.15, 0.30)


def _train(cfg, workdir: str, progress: bool) -> float:
  """Train (or finish) the run in `workdir`; returns the minutes its training took, measured when it ran."""
  record = os.path.join(workdir, "quality_train_time.json")
  if os.path.isfile(record):
    with open(record) as f:
      return json.load(f)["minutes"]
  t0 = time.time()
  loop.train_and_evaluate(cfg, workdir, show_progress=progress)
  minutes = (time.time() - t0) / 60
  with open(record, "w") as f:
    json.dump({"minutes": minutes, "note": "wall time of `dnajax train` incl. corpus, baselines and evaluation"}, f)
  return minutes


def _validation_rows(workdir: str, dataset: str, minutes: float, rates=(None,)) -> list[dict]:
  """The run's own validation split, re-scored at each mask rate (None: the config's)."""
  engine = Engine.from_workdir(workdir)
  corpus = Corpus(rundir.corpus_dir(workdir))
  rows = []
  for rate in rates:
    v = Validation(engine.cfg, corpus, mask_rate=rate).run(engine)
    k = v["baselines"]["kmer_of_training_data"]
    row = {"dataset": f"{dataset}, held out", "mask_rate": rate or engine.cfg.eval.mask_rate,
           "model_accuracy": v["masked_accuracy"], "model_loss": v["loss"], "kmer_accuracy": k["masked_accuracy"],
           "kmer_loss": k["loss"],
           "majority_accuracy": v["baselines"]["majority_base_of_training_data"]["masked_accuracy"],
           "masked_bases": v["num_masked"], "train_minutes": minutes, "step": engine.step}
    if "bayes" in v:
      row.update(bayes_accuracy=v["bayes"]["masked_accuracy"], bayes_loss=v["bayes"]["loss"],
                 fraction_of_bayes=v["fraction_of_bayes"])
    rows.append(row)
  return rows


def run(workdir: str, config: str = "configs/cpu.py", data_dir: str | None = None, only: str | None = None,
        progress: bool = True, overrides=()) -> dict:
  rows = []
  if only in (None, "synthetic"):
    cfg = config_lib.load(config, overrides)
    cfg.data.sources = ("synthetic:structured",)
    d = os.path.join(workdir, "synthetic")
    rows += _validation_rows(d, "structured synthetic", _train(cfg, d, progress), MASK_RATES)
  if only in (None, "real"):
    data_dir = data_dir or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared",
                                        "data")
    if not os.path.isfile(os.path.join(data_dir, REAL_TRAIN)):
      raise UserError(f"{data_dir}: no {REAL_TRAIN}; pass --data-dir with the project's shared data, or --only "
                      "synthetic")
    cfg = config_lib.load(config, overrides)
    cfg.data.sources = (os.path.join(data_dir, REAL_TRAIN),)
    d = os.path.join(workdir, "ecoli")
    minutes = _train(cfg, d, progress)
    rows += _validation_rows(d, "E. coli K-12 genome, last 10%", minutes)
    for name, fname in REAL_OTHER:
      r = evaluate.evaluate(d, [os.path.join(data_dir, fname)], reverse_complement=False, progress=progress)
      k = r["baselines"]["kmer_of_training_data"]
      rows.append({"dataset": name, "mask_rate": r["mask_rate"], "model_accuracy": r["masked_accuracy"],
                   "model_loss": r["loss"], "kmer_accuracy": k["masked_accuracy"], "kmer_loss": k["loss"],
                   "majority_accuracy": r["baselines"]["majority_base_of_training_data"]["masked_accuracy"],
                   "masked_bases": r["num_masked"], "train_minutes": minutes, "step": r["checkpoint_step"]})
  return {"config": config, "overrides": [f"--config.{k}={v}" for k, v in overrides], "rows": rows}


def table(result: dict) -> str:
  def f(x, fmt="{:.4f}"):
    return fmt.format(x) if isinstance(x, (int, float)) else "-"

  lines = ["| dataset (trained on) | mask | model acc | model CE | k-mer acc | k-mer CE | majority acc | Bayes acc | "
           "Bayes CE | fraction of Bayes | beats k-mer (acc, CE) | train min |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
  for r in result["rows"]:
    trained = "synthetic" if "synthetic" in r["dataset"] else "E. coli"
    beats = ("yes" if r["model_accuracy"] > r["kmer_accuracy"] else "no") + ", " + \
            ("yes" if r["model_loss"] < r["kmer_loss"] else "no")
    lines.append(f"| {r['dataset']} ({trained}) | {r['mask_rate']:.2f} | {f(r['model_accuracy'])} | "
                 f"{f(r['model_loss'])} | {f(r['kmer_accuracy'])} | {f(r['kmer_loss'])} | "
                 f"{f(r['majority_accuracy'])} | {f(r.get('bayes_accuracy'))} | {f(r.get('bayes_loss'))} | "
                 f"{f(r.get('fraction_of_bayes'), '{:.1%}')} | {beats} | {r['train_minutes']:.1f} |")
  return "\n".join(lines)


def main(argv: list[str]) -> int:
  argv, overrides = cli.split_overrides(argv)
  p = argparse.ArgumentParser(description="Model quality: train a config on synthetic data and on a real genome, then "
                              "print a table beside the baselines and the Bayes limit.")
  p.add_argument("--workdir", required=True, help="runs go to WORKDIR/synthetic and WORKDIR/ecoli (reused if done)")
  p.add_argument("--config", default="configs/cpu.py")
  p.add_argument("--data-dir", help="the shared data directory (default: ../shared/data beside the project)")
  p.add_argument("--only", choices=("synthetic", "real"))
  p.add_argument("--output", help="write the results as JSON here")
  args = p.parse_args(argv)
  try:
    if args.output:
      writers.check_outputs([("--output", args.output)])  # before training, not after
    r = run(args.workdir, args.config, args.data_dir, args.only, overrides=overrides)
    if args.output:
      writers.atomic_write_text(args.output, render.to_json(r) + "\n")
  except UserError as e:
    print(f"quality: error: {e}", file=sys.stderr)
    return 2
  print(table(r))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
