"""`dnajax predict`: fill the '?' positions of FASTA records with the model's distribution over A/C/G/T.

Long sequences are covered by overlapping windows (half a window apart); each position takes its prediction from the
window in which it sits farthest from an edge. Every '?' is predicted from unmasked context only ('?' are MASK).

The filled FASTA is the input letter for letter except at the '?': soft-masked (lowercase) bases, U and IUPAC codes
are written back as they were (the records keep their letters: `readers.read_files(..., keep_letters=True)`), and a
filled base follows its record's conventions (`tokens.fill_letters`: the case of its left neighbour, U in RNA).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from dnajax.data import readers, tokens, writers
from dnajax.errors import UserError
from dnajax.evaluation.engine import Engine

HEADER = "record\tposition\tA\tC\tG\tT\tpredicted"


def add_arguments(p) -> None:
  p.add_argument("--workdir", required=True)
  p.add_argument("--input", required=True, help="FASTA with ? at the positions to fill")
  p.add_argument("--output", help="TSV path (the filled FASTA goes beside it); default: TSV on stdout")
  p.add_argument("--step", type=int)


def output_paths(output: str | None) -> list[tuple[str, str]]:
  """(label, path) of each file `predict` writes for `--output`: the TSV and the filled FASTA beside it (the TSV's
  path with its extension replaced by .fasta); none without --output (the TSV goes to stdout)."""
  if output is None:
    return []
  return [("--output", output), ("the filled FASTA (--output with its extension replaced by .fasta)",
                                 os.path.splitext(output)[0] + ".fasta")]


def predict(workdir: str, input_path: str, output: str | None = None, step: int | None = None,
            fmt: str | None = None) -> tuple[str, str | None]:
  """Writes the TSV (to `output`, or returns it as text) and the filled FASTA beside it: (TSV path or text, FASTA
  path or None). The FASTA equals the input letter for letter except at the '?' (see the module docstring).
  Raises UserError for a bad input, one without '?', a bad workdir, or an output path that cannot be written (checked
  before any work; both files are written or neither)."""
  outputs = output_paths(output)
  writers.check_outputs(outputs, [("--input", input_path)])
  records = readers.read_files([input_path], fmt, allow_query=True, keep_letters=True)
  queries = [np.flatnonzero(r.ids == tokens.MASK) for r in records]
  if not any(len(q) for q in queries):
    raise UserError(f"{input_path}: no '?' positions to fill; write ? where a base should be predicted")
  engine = Engine.from_workdir(workdir, step)
  logps = engine.sequence_log_probs([r.ids for r in records], progress=True)
  lines, fasta = [HEADER], []
  for r, q, lp in zip(records, queries, logps):
    pq = np.exp(lp[q].astype(np.float64))
    pq /= pq.sum(axis=1, keepdims=True)
    best = pq.argmax(axis=1)
    for pos, row, k in zip(q, pq, best):
      lines.append(f"{r.name}\t{pos}\t" + "\t".join(f"{x:.8f}" for x in row) + f"\t{tokens.BASES[k]}")
    filled = tokens.fill_letters(r.letters, q, tokens.BASE_IDS[best])
    fasta.append(writers.fasta_entry(r.name, filled.decode("ascii")))
  tsv, fa = "\n".join(lines) + "\n", "".join(fasta)
  if output is None:
    return tsv, None
  writers.write_all([(label, path, text) for (label, path), text in zip(outputs, (tsv, fa))])
  return output, outputs[1][1]


def main(args, overrides) -> int:
  out, fasta = predict(args.workdir, args.input, args.output, args.step)
  if fasta is None:
    sys.stdout.write(out)
  else:
    print(f"wrote {out} and {fasta}", file=sys.stderr)
  return 0
