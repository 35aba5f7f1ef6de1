"""`dnajax prepare`: FASTA/GenBank files -> a corpus directory with a train/validation split."""

from __future__ import annotations

import os

from dnajax.data import corpus as corpus_lib
from dnajax.data import preparation, readers
from dnajax.errors import UserError


def add_arguments(p) -> None:
  p.add_argument("--input", nargs="+", required=True, help="FASTA/GenBank files or directories (.gz allowed)")
  p.add_argument("--output", required=True, help="corpus directory to write")
  p.add_argument("--format", choices=("fasta", "genbank"), help="input format (default: from the extension)")
  p.add_argument("--val-fraction", type=float, default=0.1,
                 help="fraction held out for validation, 0 <= F < 1 (0: no validation split; default: 0.1)")
  p.add_argument("--split", choices=("auto", "records", "blocks"), default="auto",
                 help="hold out whole records, or a block at the end of each record (default auto: records if >= 5)")
  p.add_argument("--n-run", type=int, default=10,
                 help="split records at runs of at least this many N (0: never split at N runs; default: 10)")
  p.add_argument("--min-len", type=int, default=64, help="drop segments shorter than this, >= 1 (default: 64)")
  p.add_argument("--seed", type=int, default=0, help="seed of the record shuffle of --split records, >= 0 "
                 "(default: 0)")
  p.add_argument("--workers", type=int, default=None,
                 help="files read in parallel processes, >= 1 (default: one per core, at most one per file)")
  p.add_argument("--force", action="store_true", help="replace a different corpus at --output")


def main(args, overrides) -> int:
  settings = corpus_lib.SplitSettings(args.val_fraction, args.split, args.n_run, args.min_len, args.seed)  # checks
  if args.workers is not None and args.workers < 1:
    raise UserError(f"--workers {args.workers}: must be an integer >= 1 (files read in parallel processes)")
  files = readers.expand_inputs(args.input)
  c = preparation.prepare_files(files, args.output, settings, args.format, force=args.force,
                               workers=args.workers or os.cpu_count() or 1, progress=True)
  splits = {k: sum(s["length"] for s in c.split(k)) for k in ("train", "val")}
  print(f"prepared {args.output}: {len(c.segments)} segments from {c.index['num_records']} records, "
        f"{splits['train']:,} train / {splits['val']:,} val bases (split by {c.index['split_mode']})")
  return 0
