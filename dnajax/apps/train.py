"""`dnajax train`: train (or resume) a model in --workdir; `--dry-run` compiles the step and reports its size."""

from __future__ import annotations

import sys

from dnajax import config as config_lib
from dnajax import runtime
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
                 help="compile the step for the configured mesh; print parameters, FLOPs, memory; do not train")
  p.add_argument("--stop-at", type=int, metavar="STEP",
                 help="stop (validated and checkpointed) at this step; the schedule still spans train.steps")
  p.add_argument("--coordinator", help="host:port of process 0 (multi-process runs)")
  p.add_argument("--num-processes", type=int)
  p.add_argument("--process-id", type=int)


def main(args, overrides) -> int:
  cfg = config_lib.load(args.config, overrides)
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
