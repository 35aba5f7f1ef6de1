"""The fine-tuning benchmark (a program that prints numbers, not a test): GUE prom_core_tata.

  python -m benchmarks.finetune_bench --workdir W [--data-dir ../shared/data] [--methods head,full,lora]
      [--seeds 0] [--output results.json] [--config.finetune.KEY=VALUE ...]

1. Pretrains the base model the acceptance names, if W/base does not hold it yet: `dnajax train --config
   configs/default.py --data GRCh38_chr17_42425000-43600000.fa hg38_chr13_chr4_regions.fa` (human sequence only).
2. Fine-tunes it on gue_prom_core_tata_train.csv (70-nt human core promoters, TATA or not; DNABERT-2's GUE, Zhou et
   al. 2024) with each method, selecting on the dev split, in W/<method> (reused when rerun).
3. Prints a Markdown table on the dev split (the test split is not provided): MCC, accuracy, AUROC, wall time for
   each method, the k-mer baseline fitted on the same rows, and the published fine-tuned MCCs (on the test split,
   DNABERT-2 paper, Table 3) for scale.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from dnajax import cli, runtime
from dnajax.data import writers
from dnajax.errors import UserError
from dnajax.evaluation import render
from dnajax.training import finetune_job

BASE_DATA = ("GRCh38_chr17_42425000-43600000.fa", "hg38_chr13_chr4_regions.fa")
TRAIN, DEV = "gue_prom_core_tata_train.csv", "gue_prom_core_tata_dev.csv"
# MCC x 100 on GUE prom_core_tata (test split), fine-tuned: Zhou et al. 2024 (DNABERT-2), Table 3.
PUBLISHED = (("DNABERT (3-mer)", 78.15), ("DNABERT-2 (117M)", 74.17), ("NT-2500M-multi", 72.97),
             ("NT-500M-human", 71.34))


def base_model(workdir: str, data_dir: str, progress: bool) -> tuple[str, float]:
  """(the base run's directory, its training minutes): trained here once, reused after."""
  base = os.path.join(workdir, "base")
  record = os.path.join(base, "bench_train_time.json")
  if os.path.isfile(record):
    with open(record) as f:
      return base, json.load(f)["minutes"]
  t0 = time.time()
  argv = ["train", "--config", "configs/default.py", "--workdir", base, "--data",
          *(os.path.join(data_dir, f) for f in BASE_DATA)] + ([] if progress else ["--no-progress"])
  if cli.run(argv) != 0:
    raise UserError("the base model's training failed")
  minutes = (time.time() - t0) / 60
  writers.atomic_write_text(record, json.dumps({"minutes": minutes}))
  return base, minutes


def table(rows: list[dict], baselines: dict, n_seeds: int) -> str:
  """The Markdown table of the methods, the baseline and the published numbers (dev split)."""
  def cell(summary, key):
    m = summary[key]
    return render.number(m["mean"]) + (f" +- {render.number(m['std'])}" if n_seeds > 1 and m["std"] is not None
                                       else "")
  out = ["| model (GUE prom_core_tata) | split | MCC | accuracy | AUROC | wall time (2 CPU cores) |",
         "|---|---|---|---|---|---|"]
  for r in rows:
    s = r["summary"]["val"]
    out.append(f"| dnajax {r['method']} ({n_seeds} seed{'s' * (n_seeds > 1)}) | dev | {cell(s, 'mcc')} | "
               f"{cell(s, 'accuracy')} | {cell(s, 'auroc')} | {r['minutes']:.1f} min |")
  for name, what in finetune_job.BASELINE_NAMES.items():
    if name in baselines:
      b = baselines[name]["val"]
      out.append(f"| {what} + logistic regression | dev | {render.number(b['mcc'])} | "
                 f"{render.number(b['accuracy'])} | {render.number(b['auroc'])} | < 1 min |")
  for name, mcc in PUBLISHED:
    out.append(f"| {name}, published | test | {mcc / 100:.4f} | - | - | - |")
  return "\n".join(out)


def main(argv=None) -> int:
  runtime.setup_logging()
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", required=True)
  p.add_argument("--data-dir", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
  p.add_argument("--methods", default="head,full,lora")
  p.add_argument("--seeds", default="0")
  p.add_argument("--output", help="write the results as JSON here")
  p.add_argument("--no-progress", action="store_true")
  argv, overrides = cli.split_overrides(sys.argv[1:] if argv is None else argv)
  args = p.parse_args(argv)
  try:
    for name in (*BASE_DATA, TRAIN, DEV):
      if not os.path.isfile(os.path.join(args.data_dir, name)):
        raise UserError(f"{os.path.join(args.data_dir, name)}: missing; pass --data-dir (../shared/data)")
    base, base_minutes = base_model(args.workdir, args.data_dir, not args.no_progress)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for method in args.methods.split(","):
      t0 = time.time()
      info = finetune_job.finetune(base, {"train": os.path.join(args.data_dir, TRAIN),
                                          "val": os.path.join(args.data_dir, DEV)},
                                   os.path.join(args.workdir, method), "classification", method, overrides, seeds,
                                   progress=not args.no_progress)
      if info.get("interrupted"):
        return 0
      minutes = sum(r["wall_seconds"] for r in info["runs"].values()) / 60 / len(seeds)
      rows.append({"method": method, "minutes": minutes, "summary": info["summary"], "runs": info["runs"],
                   "measured_seconds_this_call": time.time() - t0})
  except UserError as e:
    print(f"finetune_bench: error: {e}", file=sys.stderr)
    return 2
  print(f"Base model: configs/default.py on {' + '.join(BASE_DATA)} ({base_minutes:.1f} min).")
  print(table(rows, info["baselines"], len(seeds)))
  if args.output:
    writers.atomic_write_text(args.output, render.to_json({"base_minutes": base_minutes, "methods": rows,
                                                           "baselines": info["baselines"]}) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
