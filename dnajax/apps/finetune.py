"""`dnajax finetune`: a pretrained run + labelled sequences -> a classifier or regressor (head, full or LoRA).

Inputs are sequence tables (`dnajax.data.tables`: CSV/TSV with a sequence and a label column, or FASTA with
`label=...` in the title line). The metrics on the validation rows (and `--test` rows) stand beside a k-mer baseline
fitted on the same training rows. `dnajax predict --workdir FT --input FILE` applies the result.
"""

from __future__ import annotations

import sys

from dnajax import runtime
from dnajax.data import labels as labels_lib
from dnajax.errors import UserError
from dnajax.training import finetune_job
from dnajax.training.finetune_program import METHODS

CONFIG_OVERRIDES = True


def add_arguments(p) -> None:
  p.epilog = ("Settings: --config.finetune.KEY=VALUE (learning_rate, epochs, batch, lora_rank, head_dropout, "
              "patience, ...; see configs/default.py)")
  p.add_argument("--workdir", required=True, help="the pretraining run to start from")
  p.add_argument("--train", required=True, help="labelled training table (CSV/TSV/FASTA, optionally .gz)")
  p.add_argument("--val", required=True, help="labelled validation table: picks the best checkpoint, stops early")
  p.add_argument("--test", help="labelled test table: scored once with each seed's best checkpoint")
  p.add_argument("--output", required=True, help="the fine-tuning directory (resumed when rerun)")
  p.add_argument("--task", choices=labels_lib.TASKS, default="classification")
  p.add_argument("--method", choices=METHODS, help="default: finetune.method of the config (auto: lora for "
                 "classification, trees for regression)")
  p.add_argument("--seeds", default="0", help="comma-separated seeds, one model each (mean +- std), e.g. 0,1,2")
  p.add_argument("--sequence-column", default="sequence", help="CSV/TSV column holding the sequences")
  p.add_argument("--label-column", default="label", help="CSV/TSV column (FASTA: title key) holding the labels")
  p.add_argument("--step", type=int, help="checkpoint step of the pretraining run (default: the latest)")
  p.add_argument("--json", action="store_true", help="print the whole result as JSON on stdout")
  p.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_seeds(text: str) -> list[int]:
  """'0,1,2' -> [0, 1, 2]; UserError for anything but distinct integers >= 0."""
  try:
    seeds = [int(x) for x in text.split(",") if x.strip()]
  except ValueError:
    seeds = []
  if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
    raise UserError(f"--seeds {text!r}: give distinct integers >= 0 separated by commas, e.g. --seeds 0,1,2")
  return seeds


def main(args, overrides) -> int:
  seeds = parse_seeds(args.seeds)
  paths = {"train": args.train, "val": args.val, **({"test": args.test} if args.test else {})}
  info = finetune_job.finetune(args.workdir, paths, args.output, args.task, args.method, overrides, seeds,
                               args.sequence_column, args.label_column, args.step, not args.no_progress)
  if info.get("interrupted"):
    print(f"stopped by {info['signal']} after step {info['checkpoint_step']} of seed {info['seed']} (checkpoint "
          "saved); rerun the same command to resume", file=sys.stderr)
    return 0
  if runtime.is_main():
    if args.json:
      from dnajax.evaluation import render
      print(render.to_json(info))
    else:
      print(finetune_job.summary_table(info))
      print(f"wrote {args.output} ({info['wall_seconds']:.0f} s); apply it with `dnajax predict --workdir "
            f"{args.output} --input FILE`", file=sys.stderr)
  return 0
