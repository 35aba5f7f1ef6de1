"""`dnajax train`: train (or resume) a model in --workdir; `--dry-run` compiles the step and reports its size."""

from __future__ import annotations

import sys

from dnajax import config as config_lib
from dnajax import runtime
from dnajax.errors import UserError
from dnajax.evaluation import render
from dnajax.training import aot, loop

CONFIG_OVERRIDES = True


def add_arguments(p) -> None:
  p.epilog = "Any config field can be overridden: --config.model.num_layers=2"
  p.add_argument("--config", default="default", help="a shipped config name (default, tiny, cpu, ...) or a file "
                 "such as configs/default.py (default: default)")
  p.add_argument("--workdir", required=True)
  p.add_argument("--data", nargs="+", help="FASTA/GenBank files or a prepared corpus (replaces data.sources)")
  p.add_argument("--no-progress", action="store_true", help="no progress bar")
  p.add_argument("--dry-run", action="store_true",
                 help="compile the step for the configured mesh; print parameters, FLOPs, its memory per device "
                 "against the device's (train.memory_limit_gib) and the train.grad_accum that fits; do not train")
  p.add_argument("--stop-at", type=int, metavar="STEP",
                 help="stop (validated and checkpointed) at this step, >= 1; the schedule still spans train.steps")
  p.add_argument("--coordinator", help="host:port of process 0 (multi-process runs)")
  p.add_argument("--num-processes", type=int, help="processes of a multi-process run, >= 1")
  p.add_argument("--process-id", type=int, help="this process's index, 0 .. --num-processes - 1")


def check_arguments(args) -> None:
  """--stop-at, --num-processes and --process-id in range; UserError (one line) otherwise."""
  if args.stop_at is not None and args.stop_at < 1:
    raise UserError(f"--stop-at {args.stop_at}: must be a step >= 1; pass the step to stop at, or leave it out to "
                    "train for train.steps")
  if args.num_processes is not None and args.num_processes < 1:
    raise UserError(f"--num-processes {args.num_processes}: must be an integer >= 1")
  if args.process_id is not None and (args.process_id < 0 or (args.num_processes is not None
                                                              and args.process_id >= args.num_processes)):
    raise UserError(f"--process-id {args.process_id}: must be in 0 .. --num-processes - 1 "
                    f"({'N' if args.num_processes is None else args.num_processes - 1})")


def main(args, overrides) -> int:
  check_arguments(args)
  cfg = config_lib.load(args.config, overrides)  # checks every value's range (config.check)
  if args.data:
    with cfg.data.unlocked():
      cfg.data.sources = tuple(args.data)
  runtime.initialize(args.coordinator, args.num_processes, args.process_id)
  runtime.quiet_unless_main()
  if args.dry_run:
    print(aot.describe_dry_run(aot.dry_run(cfg)))
    return 0
  final = loop.train_and_evaluate(cfg, args.workdir, show_progress=not args.no_progress, stop_at=args.stop_at)
  if final.get("interrupted"):
    print(f"stopped by {final['signal']} after step {final['checkpoint_step']} (checkpoint saved); rerun the "
          "same command to resume", file=sys.stderr)
  elif runtime.is_main():
    print(f"final validation (step {final['checkpoint_step']}, {final['wall_seconds']:.0f} s): "
          f"{render.validation_line(final)}")
  return 0
