"""`dnajax prepare`: FASTA/GenBank files -> a corpus directory with a train/validation split."""

from __future__ import annotations

import os
import signal

from dnajax.data import corpus as corpus_lib
from dnajax.data import preparation, readers, writers
from dnajax.errors import UserError, warn

# Split options and their defaults (None on the command line: not given, which --append needs to know).
DEFAULTS = {"val_fraction": 0.1, "split": "auto", "n_run": 10, "min_len": 64, "seed": 0}


def add_arguments(p) -> None:
  p.add_argument("--input", nargs="+", required=True,
                 help="FASTA/GenBank files, directories or globs (.gz allowed); each is one source of the corpus")
  p.add_argument("--output", required=True, help="corpus directory to write (or to add to, with --append)")
  p.add_argument("--format", choices=("fasta", "genbank"), help="input format (default: from the extension)")
  p.add_argument("--val-fraction", type=float,
                 help="fraction held out for validation, 0 <= F < 1 (0: no validation split; default: 0.1)")
  p.add_argument("--split", choices=("auto", "records", "blocks"),
                 help="hold out whole records, or a block at the end of each record (default auto: records if >= 5)")
  p.add_argument("--n-run", type=int,
                 help="split records at runs of at least this many N (0: never split at N runs; default: 10)")
  p.add_argument("--min-len", type=int, help="drop segments shorter than this, >= 1 (default: 64)")
  p.add_argument("--seed", type=int, help="seed of the record shuffle of --split records, >= 0 (default: 0)")
  p.add_argument("--weights", type=float, nargs="+",
                 help="sampling weight of each --input source in training, >= 0 (default: in proportion to length; "
                      "train --config.data.weights overrides)")
  p.add_argument("--workers", type=int, default=None,
                 help="files read in parallel processes, >= 1 (default: one per core, at most one per file)")
  p.add_argument("--append", action="store_true",
                 help="add the inputs to the corpus at --output, split by its own settings; what is there stays")
  p.add_argument("--force", action="store_true", help="replace a different corpus at --output")


def _terminate(signum, frame):
  raise KeyboardInterrupt  # SIGTERM: the temporary files go, as on Ctrl-C (`dnajax: interrupted`, exit 130)


def main(args, overrides) -> int:
  signal.signal(signal.SIGTERM, _terminate)
  given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k) is not None}
  if args.workers is not None and args.workers < 1:
    raise UserError(f"--workers {args.workers}: must be an integer >= 1 (files read in parallel processes)")
  if args.weights is not None and len(args.weights) != len(args.input):
    raise UserError(f"--weights: {len(args.weights)} values for {len(args.input)} --input sources; give one weight "
                    "per --input entry, in the same order")
  groups = readers.expand_groups(args.input)
  files, entries = [f for f, _ in groups], [g for _, g in groups]
  weights = dict(zip(args.input, args.weights)) if args.weights is not None else None
  workers = args.workers or os.cpu_count() or 1
  if args.append:
    if args.force:
      raise UserError("--append and --force: choose one (--force replaces the corpus, --append adds to it)")
    c = preparation.append_files(files, args.output, args.format, workers, progress=True, groups=entries,
                                 weights=weights, given=given)
  else:
    values = {**DEFAULTS, **given}
    settings = corpus_lib.SplitSettings(values["val_fraction"], values["split"], values["n_run"], values["min_len"],
                                        values["seed"])  # checks the values
    c = preparation.prepare_files(files, args.output, settings, args.format, force=args.force, workers=workers,
                                  progress=True, groups=entries, weights=weights)
  splits = {k: sum(s["length"] for s in c.split(k)) for k in ("train", "val")}
  print(f"prepared {args.output}: {len(c.segments)} segments from {c.index['num_records']} records, "
        f"{splits['train']:,} train / {splits['val']:,} val bases (split by {c.index['split_mode']})")
  for line in c.source_warnings("--split blocks"):
    warn(line)
  if len(c.sources()) > 1:
    print(writers.tsv_table(c.source_table(), ["source", "files", "records", "train_bases", "val_bases", "weight"]),
          end="")
  return 0
