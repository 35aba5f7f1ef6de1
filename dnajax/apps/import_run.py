"""`dnajax import`: a folder written by `dnajax export` (or by anyone in that format) as a run directory that every
verb taking --workdir reads and `dnajax finetune` starts from; it holds the parameters only, so training does not
resume it (see `dnajax.model.weights`)."""

from __future__ import annotations

import sys

from dnajax.model import weights


def add_arguments(p) -> None:
  p.add_argument("--input", required=True, help="the --output folder of `dnajax export`")
  p.add_argument("--workdir", required=True, help="the run directory to create (must not exist, or be empty)")


def main(args, overrides) -> int:
  info = weights.import_run(args.input, args.workdir)
  sys.stderr.write(f"dnajax: imported {args.input} (step {info['source']['step']}, {len(info['tensors'])} tensors) "
                   f"as the run {args.workdir}\n")
  return 0
