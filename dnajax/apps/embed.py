"""`dnajax embed`: hidden states of a checkpoint for a table of sequences, as a NumPy .npz archive.

The input is a sequence table (`dnajax.data.tables`: FASTA, or CSV/TSV with a sequence column). Sequences of any
length are covered by overlapping windows, each position taken from the window in which it sits farthest from an
edge; `--pool mean` (the default) averages each sequence's positions (padding never included), `--pool none` keeps
every position. The archive is written whole or not at all, at exactly the path given.

Keys: `embeddings` float32[N, D] (mean) or float32[sum of lengths, D] (none, sequences one after another, sequence
i at rows offsets[i]:offsets[i + 1]); `offsets` int64[N + 1] (none only); `ids` unicode[N]; and 0-d arrays `layer`
(int64), `pool` (unicode) and `checkpoint_step` (int64).
"""

from __future__ import annotations

import sys

import numpy as np

from dnajax import runtime
from dnajax.data import tables, writers
from dnajax.errors import UserError
from dnajax.evaluation.engine import Engine

POOLS = ("mean", "none")


def add_arguments(p) -> None:
  p.add_argument("--workdir", required=True)
  p.add_argument("--input", required=True, help="FASTA, or CSV/TSV with a sequence column (optionally .gz)")
  p.add_argument("--output", required=True, help="the .npz archive to write")
  p.add_argument("--pool", choices=POOLS, default="mean",
                 help="mean: one vector per sequence; none: one per position, with offsets")
  p.add_argument("--layer", type=int, default=-1,
                 help="-1: final normalised output (default); 0: token embedding; k: output of block k")
  p.add_argument("--sequence-column", default="sequence", help="CSV/TSV column holding the sequences")
  p.add_argument("--step", type=int, help="checkpoint step (default: the latest)")


def check_output(path: str, input_path: str = "") -> None:
  """Raises UserError unless `path` names an .npz file that can be written: not a directory, in a directory that
  exists and is writable or can be created, and not the input table `input_path`."""
  writers.check_outputs([("--output", path)], [("--input", input_path)])
  if not path.lower().endswith(".npz"):
    raise UserError(f"--output {path}: embed writes a NumPy .npz archive; give a path ending in .npz")


def save_npz(path: str, arrays: dict[str, np.ndarray]) -> None:
  """`arrays` as an uncompressed .npz at exactly `path` (no suffix added), whole or not at all: a temporary sibling,
  then an atomic rename; creates the parent directory. Raises UserError when it cannot be written."""
  writers.write_all([("--output", path, lambda f: np.savez(f, **arrays))])


def embed(workdir: str, input_path: str, output: str, pool: str = "mean", layer: int = -1,
          sequence_column: str = "sequence", step: int | None = None, progress: bool = True) -> dict:
  """Embeds every sequence of the table `input_path` with checkpoint `step` of `workdir` and writes `output` (keys in
  the module docstring). Returns {output, sequences, positions, d_model, layer, pool, checkpoint_step}.

  Raises UserError for a bad output path, a bad table (before any model work), a bad workdir or step, an unknown
  pool or a layer the model does not have; nothing is written then."""
  if pool not in POOLS:
    raise UserError(f"--pool {pool!r}: use mean or none")
  check_output(output, input_path)
  table = tables.read_table(input_path, sequence_column)
  engine = Engine.from_workdir(workdir, step)
  engine.check_layer(layer)
  lengths = np.array([len(s) for s in table.seqs], np.int64)
  arrays = {"ids": np.array(table.ids, dtype=str)}
  if pool == "mean":
    arrays["embeddings"] = engine.mean_hidden_states(table.seqs, layer, progress)
  else:
    arrays["embeddings"] = np.concatenate(engine.sequence_hidden_states(table.seqs, layer, progress))
    arrays["offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
  checkpoint_step = -1 if engine.step is None else int(engine.step)
  arrays["layer"], arrays["pool"] = np.array(layer, np.int64), np.array(pool)
  arrays["checkpoint_step"] = np.array(checkpoint_step, np.int64)
  if runtime.is_main():  # every process computed the same arrays (gathered); one writes
    save_npz(output, arrays)
  return {"output": output, "sequences": len(table), "positions": int(lengths.sum()),
          "d_model": int(arrays["embeddings"].shape[1]), "layer": layer, "pool": pool,
          "checkpoint_step": checkpoint_step}


def main(args, overrides) -> int:
  r = embed(args.workdir, args.input, args.output, args.pool, args.layer, args.sequence_column, args.step)
  what = (f"{r['sequences']:,} embeddings (mean over positions)" if r["pool"] == "mean" else
          f"{r['positions']:,} position embeddings of {r['sequences']:,} sequences (rows offsets[i]:offsets[i+1])")
  print(f"wrote {r['output']}: {what}, d_model {r['d_model']}, layer {r['layer']}, checkpoint step "
        f"{r['checkpoint_step']}", file=sys.stderr)
  return 0
