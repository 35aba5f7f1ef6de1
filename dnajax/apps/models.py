"""`dnajax models`: the pretrained models installed with dnajax, which every verb taking --workdir accepts by name.

Each was trained by the command it lists, on data whose source and licence it names; its validation numbers stand
beside the baselines measured on the same masked positions (`benchmarks/shipped_models.py --retrain` trains them
again and compares).
"""

from __future__ import annotations

import os
import sys

from dnajax.data import rundir
from dnajax.evaluation import render


def add_arguments(p) -> None:
  p.add_argument("--json", action="store_true", help="a JSON list of objects (name, kind, trained_on, command, ...)")


def size_mb(name: str) -> float:
  """The shipped model's size on disk in MB (10^6 bytes)."""
  total = 0
  for d, _, files in os.walk(os.path.join(rundir.SHIPPED, name)):
    total += sum(os.path.getsize(os.path.join(d, f)) for f in files)
  return total / 1e6


def describe(m: dict) -> str:
  """A few lines about one shipped model: name and use, data and licence, numbers beside baselines, command."""
  v, b = m["validation"], m["baselines"]
  return (f"{m['name']}  ({m['kind']} model, {m['parameters']:,} parameters, {size_mb(m['name']):.1f} MB; for "
          f"{', '.join(m['use_for'])})\n"
          f"  trained on: {m['trained_on']} (licence: {m['licence']})\n"
          f"  {m['validation_set']}: masked accuracy {render.number(v['masked_accuracy'])}, loss "
          f"{render.number(v['loss'])} nats at mask rate {m['mask_rate']} ({v['num_masked']:,} masked bases); "
          f"k-mer {render.number(b['kmer']['masked_accuracy'])} / {render.number(b['kmer']['loss'])}, "
          f"majority base {render.number(b['majority_base']['masked_accuracy'])}, uniform 0.25\n"
          f"  trained by: {m['command']}  ({m['train_minutes']:.0f} min on {m['machine']})\n")


def main(args, overrides) -> int:
  models = [dict(m, size_mb=round(size_mb(m["name"]), 2)) for m in rundir.shipped_models()]
  if args.json:
    sys.stdout.write(render.to_json(models) + "\n")
  elif not models:
    sys.stdout.write("no shipped models are installed\n")
  else:
    sys.stdout.write("\n".join(describe(m) for m in models))
    sys.stdout.write("\nUse one by name: dnajax design --workdir NAME ..., dnajax vep --workdir NAME ...\n")
  return 0
