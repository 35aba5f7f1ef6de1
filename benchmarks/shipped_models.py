"""The models shipped with dnajax: how they are made, and a check that their commands reproduce their numbers.

  python -m benchmarks.shipped_models build --run ecoli-cds=runs/ecoli-cds --run human-chr17=runs/human-chr17
      each trained run -> `dnajax export` -> `dnajax import` into dnajax/shipped/NAME (parameters only), and
      dnajax/shipped/models.json with SPEC's description and the run's final validation numbers and baselines;
  python -m benchmarks.shipped_models retrain [--name NAME] [--workdir DIR]
      trains each model again with its listed command (in DIR/NAME, from the repository root, where ../shared/data
      is) and prints the shipped and retrained numbers side by side (same data, seed and config: equal up to the
      float rounding of the machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from dnajax.data import rundir
from dnajax.model import weights
from dnajax.training.writer import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NCBI = "NCBI RefSeq; public domain (US government work, NCBI's data-use policy)"
SPEC = {
    "ecoli-cds": {
        "kind": "cds", "use_for": ["design", "score", "features", "finetune", "embed"],
        "trained_on": "E. coli K-12 MG1655 coding sequences: the 4,116 in-frame CDS features of GenBank "
                      "GCF_000005845.2 (NC_000913.3), 10% of the genes held out for validation",
        "licence": NCBI, "validation_set": "held-out genes",
        "command": "dnajax train --config configs/cds.py --data "
                   "../shared/data/GCF_000005845.2_ASM584v2_genomic.gbff.gz --workdir runs/ecoli-cds",
        "train_minutes": 17.0,
    },
    "human-chr17": {
        "kind": "genome", "use_for": ["vep", "evaluate", "embed", "predict", "score", "finetune"],
        "trained_on": "human GRCh38 chr17:42,425,000-43,600,000 (1.18 Mb around BRCA1), the last 10% "
                      "of the region held out for validation",
        "licence": "Genome Reference Consortium GRCh38 via NCBI/UCSC; public domain, no restrictions on use",
        "validation_set": "held-out last 10% of the region",
        "command": "dnajax train --config configs/cpu.py --data ../shared/data/GRCh38_chr17_42425000-43600000.fa "
                   "--workdir runs/human-chr17",
        "train_minutes": None,  # set from the run's log by `build --minutes`
    },
}


def final_validation(workdir: str) -> dict:
  """The last validation line of a run's metrics.jsonl, as {validation: {...}, baselines: {...}, mask_rate}."""
  val = read_metrics(workdir)["val"][-1]
  cfg = rundir.pretraining(workdir)
  b = "val/baselines/"
  return {
      "step": val["step"], "mask_rate": float(cfg.eval.mask_rate),
      "validation": {"masked_accuracy": round(val["val/masked_accuracy"], 4), "loss": round(val["val/loss"], 4),
                     "num_masked": val["val/num_masked"]},
      "baselines": {"kmer": {"masked_accuracy": round(val[b + "kmer_of_training_data/masked_accuracy"], 4),
                             "loss": round(val[b + "kmer_of_training_data/loss"], 4)},
                    "majority_base": {
                        "masked_accuracy": round(val[b + "majority_base_of_training_data/masked_accuracy"], 4)},
                    "uniform": {"masked_accuracy": 0.25}},
  }


def build(runs: dict[str, str], minutes: dict[str, float]) -> None:
  """Replace dnajax/shipped with the given runs (name -> trained run directory) and write models.json."""
  catalog = []
  os.makedirs(rundir.SHIPPED, exist_ok=True)
  for name, workdir in runs.items():
    with tempfile.TemporaryDirectory() as tmp:
      info = weights.export(workdir, tmp)
      target = os.path.join(rundir.SHIPPED, name)
      shutil.rmtree(target, ignore_errors=True)
      weights.import_run(tmp, target)
    spec = dict(SPEC[name])
    spec["train_minutes"] = minutes.get(name, spec["train_minutes"])
    catalog.append({"name": name, **spec, "parameters": weights.num_parameters(info),
                    "machine": "2-core x86-64 CPU, no GPU", **final_validation(workdir)})
  with open(rundir.SHIPPED_CATALOG, "w") as f:
    json.dump(catalog, f, indent=1)
    f.write("\n")
  print(f"wrote {len(catalog)} models to {rundir.SHIPPED}")


def retrain(names: list[str], workdir: str) -> None:
  """Train each model again with its command and print shipped vs retrained numbers."""
  rows = []
  for m in rundir.shipped_models():
    if names and m["name"] not in names:
      continue
    out = os.path.join(workdir, m["name"])
    shutil.rmtree(out, ignore_errors=True)
    argv = m["command"].split()
    argv[argv.index("--workdir") + 1] = out
    t0 = time.time()
    subprocess.run([os.path.join(os.path.dirname(sys.executable), "dnajax"), *argv[1:], "--no-progress"],
                   cwd=ROOT, check=True)
    again = final_validation(out)
    for key in ("masked_accuracy", "loss"):
      rows.append((m["name"], key, m["validation"][key], again["validation"][key], m["baselines"]["kmer"][key],
                   again["baselines"]["kmer"][key], (time.time() - t0) / 60))
  print("| model | metric | shipped | retrained | k-mer (shipped) | k-mer (retrained) | retrain minutes |")
  print("|---|---|---|---|---|---|---|")
  for r in rows:
    print(f"| {r[0]} | {r[1]} | {r[2]:.4f} | {r[3]:.4f} | {r[4]:.4f} | {r[5]:.4f} | {r[6]:.1f} |")


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  sub = p.add_subparsers(dest="what", required=True)
  b = sub.add_parser("build")
  b.add_argument("--run", action="append", required=True, help="NAME=WORKDIR")
  b.add_argument("--minutes", action="append", default=[], help="NAME=MINUTES: measured training time")
  r = sub.add_parser("retrain")
  r.add_argument("--name", action="append", default=[])
  r.add_argument("--workdir", default=os.path.join(ROOT, "runs", "shipped_retrain"))
  a = p.parse_args()
  if a.what == "build":
    build(dict(x.split("=", 1) for x in a.run), {k: float(v) for k, v in (x.split("=", 1) for x in a.minutes)})
  else:
    retrain(a.name, a.workdir)


if __name__ == "__main__":
  main()
