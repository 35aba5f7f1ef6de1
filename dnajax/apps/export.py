"""`dnajax export`: a pretraining run's weights as safetensors, a JSON manifest and a PyTorch module (see
`dnajax.model.weights` for the format); `dnajax import` reads the folder back into a run directory."""

from __future__ import annotations

import sys

from dnajax.data import writers
from dnajax.errors import UserError
from dnajax.model import weights


def add_arguments(p) -> None:
  p.add_argument("--workdir", required=True, help="a pretraining run (or a shipped model's name: `dnajax models`)")
  p.add_argument("--output", required=True, help="folder to write model.safetensors, model.json, modeling_dnajax.py")
  p.add_argument("--step", type=int, help="checkpoint step (default: the latest)")


def main(args, overrides) -> int:
  if not args.output:
    raise UserError("--output is empty; pass the folder to write")
  writers.check_outputs([("--output", f"{args.output}/{name}")
                         for name in (weights.WEIGHTS, weights.MANIFEST, weights.TORCH_MODULE)])
  info = weights.export(args.workdir, args.output, args.step)
  sys.stderr.write(f"dnajax: exported step {info['source']['step']} of {args.workdir} ({len(info['tensors'])} "
                   f"tensors, {weights.num_parameters(info):,} parameters) to {args.output}/\n")
  return 0
