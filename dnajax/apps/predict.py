"""`dnajax predict`: fill the '?' positions of FASTA records with the model's distribution over A/C/G/T; on a
fine-tuning directory (`dnajax finetune --output FT`), predict the label of every sequence of a table.

Fine-tuned: one TSV row per input sequence, in input order: `id<TAB>prediction` and, for a classifier, `p_<class>`
per class (the class labels as written in the training file); a regressor's prediction is in the training labels'
units. When the table carries the label column, the metrics over its labelled rows go to stderr (and with --json, as
one JSON object on stdout when the TSV goes to --output).

Long sequences are covered by overlapping windows (half a window apart); each position takes its prediction from the
window in which it sits farthest from an edge. Every '?' is predicted from unmasked context only ('?' are MASK).

The filled FASTA is the input letter for letter except at the '?': soft-masked (lowercase) bases, U and IUPAC codes
are written back as they were (the records keep their letters: `readers.read_files(..., keep_letters=True)`), and a
filled base follows its record's conventions (`tokens.fill_letters`: the case of its left neighbour, U in RNA).
"""

from __future__ import annotations

import logging
import os
import sys

import numpy as np

from dnajax.data import labels as labels_lib
from dnajax.data import readers, rundir, tables, tokens, writers
from dnajax.errors import UserError
from dnajax.evaluation import finetuned, render
from dnajax.evaluation.engine import Engine

log = logging.getLogger("dnajax")
HEADER = "record\tposition\tA\tC\tG\tT\tpredicted"


def add_arguments(p) -> None:
  p.add_argument("--workdir", required=True)
  p.add_argument("--input", required=True, help="FASTA with ? at the positions to fill; for a fine-tuning "
                 "directory, a table of sequences (CSV/TSV/FASTA)")
  p.add_argument("--output", help="TSV path (the filled FASTA goes beside it); default: TSV on stdout")
  p.add_argument("--step", type=int, help="checkpoint step of a pretraining run (default: the latest)")
  p.add_argument("--seed", type=int, help="fine-tuned: the seed's model (default: the best on validation)")
  p.add_argument("--sequence-column", help="fine-tuned: the sequence column (default: the training file's)")
  p.add_argument("--label-column", help="fine-tuned: the label column, scored when present (default: the training "
                 "file's)")
  p.add_argument("--json", action="store_true", help="fine-tuned, with --output: the metrics as JSON on stdout")
  p.add_argument("--no-progress", action="store_true", help="no progress bar")


def output_paths(output: str | None) -> list[tuple[str, str]]:
  """(label, path) of each file `predict` writes for `--output`: the TSV and the filled FASTA beside it (the TSV's
  path with its extension replaced by .fasta); none without --output (the TSV goes to stdout)."""
  if output is None:
    return []
  return [("--output", output), ("the filled FASTA (--output with its extension replaced by .fasta)",
                                 os.path.splitext(output)[0] + ".fasta")]


def predict(workdir: str, input_path: str, output: str | None = None, step: int | None = None,
            fmt: str | None = None, progress: bool = True) -> tuple[str, str | None]:
  """Writes the TSV (to `output`, or returns it as text) and the filled FASTA beside it: (TSV path or text, FASTA
  path or None). The FASTA equals the input letter for letter except at the '?' (see the module docstring).
  Raises UserError for a bad input, one without '?', a bad workdir, or an output path that cannot be written (checked
  before any work; both files are written or neither)."""
  outputs = output_paths(output)
  writers.check_outputs(outputs, [("--input", input_path)])
  rundir.pretraining(workdir)  # not a run at all: said before the input is read
  if tables.is_table(input_path):
    raise UserError(f"--input {input_path}: a table; {workdir} is a pretraining run, which fills in masked bases of "
                    "FASTA records ('?'); tables of labelled sequences go to a fine-tuning directory (`dnajax "
                    "finetune`)")
  records = readers.read_files([input_path], fmt, allow_query=True, keep_letters=True)
  readers.warn_repeated_ids([r.name for r in records], input_path)  # TSV rows and FASTA records are named by id
  queries = [np.flatnonzero(r.ids == tokens.MASK) for r in records]
  if not any(len(q) for q in queries):
    raise UserError(f"{input_path}: no '?' positions to fill; write ? where a base should be predicted")
  engine = Engine.from_workdir(workdir, step)
  logps = engine.sequence_log_probs([r.ids for r in records], progress=progress)
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


def predict_finetuned(workdir: str, input_path: str, output: str | None = None, seed: int | None = None,
                      sequence_column: str | None = None, label_column: str | None = None,
                      progress: bool = True) -> tuple[str, dict | None]:
  """Predictions of a fine-tuned model for every sequence of the table `input_path`: (the TSV written to `output`,
  or its text, metrics over the labelled rows or None). Raises UserError for a bad table, a label that is not one
  of the training classes (or not a number), or an output that cannot be written (checked before any work)."""
  info = rundir.read_info(workdir)
  writers.check_outputs([("--output", output)] if output else [], [("--input", input_path)])
  table = tables.read_table(input_path, sequence_column or info["columns"]["sequence"],
                            label_column or info["columns"]["label"])
  if label_column is not None and table.labels is None:
    raise UserError(f"{input_path}: no label column {label_column!r} (--label-column); name an existing column, or "
                    "leave the option out to predict without scoring")
  model = finetuned.load(workdir, seed)
  model.check_lengths(table)
  coding = model.coding
  labelled = [k for k, label in enumerate(table.labels or []) if label]
  part = tables.SequenceTable([table.ids[k] for k in labelled], [table.seqs[k] for k in labelled],
                              [table.labels[k] for k in labelled], table.source, table.format)
  targets = coding.targets(part) if labelled else None  # bad labels refused before any model work
  if labelled:
    coding.say_absent(part.source, targets)
  short = sum(len(x) < model.positions for x in table.seqs)
  if short:
    log.warning("%s: %d sequence(s) shorter than the %d positions this model reads each on its own; the positions "
                "after their end read as empty", input_path, short, model.positions)
  outputs = model.outputs(table.seqs, progress=progress,
                          names=[labels_lib.row_name(table, i) for i in range(len(table))])
  values = coding.values(outputs)
  if coding.task == "classification":
    columns = ["id", "prediction"] + [f"p_{c}" for c in coding.classes]
    rows = [{"id": i, "prediction": coding.classes[int(p.argmax())],
             **{f"p_{c}": f"{x:.6f}" for c, x in zip(coding.classes, p)}} for i, p in zip(table.ids, values)]
  else:
    columns = ["id", "prediction"]
    rows = [{"id": i, "prediction": f"{v:.6g}"} for i, v in zip(table.ids, values)]
  tsv = writers.tsv_table(rows, columns)
  metrics = finetuned.split_metrics(coding, outputs[labelled], targets) if labelled else None
  if output is None:
    return tsv, metrics
  writers.write_all([("--output", output, tsv)])
  return output, metrics


def _main_finetuned(args) -> int:
  if args.step is not None:
    raise UserError(f"--step: {args.workdir} is a fine-tuning directory, which predicts with each seed's best "
                    "validation checkpoint; pass --seed to choose a seed")
  if args.json and args.output is None:
    raise UserError("--json: the metrics go to stdout as JSON only when the TSV goes to a file; add --output FILE")
  out, metrics = predict_finetuned(args.workdir, args.input, args.output, args.seed, args.sequence_column,
                                   args.label_column, not args.no_progress)
  if args.output is None:
    sys.stdout.write(out)
  else:
    print(f"wrote {out}", file=sys.stderr)
  if metrics is not None:
    keys = [k for k in ("mcc", "accuracy", "macro_f1", "auroc", "spearman", "pearson", "r2", "rmse") if k in metrics]
    print(f"metrics on {metrics['num_rows']} labelled rows: "
          + ", ".join(f"{k} {render.number(metrics[k])}" for k in keys), file=sys.stderr)
  if args.json:  # null when the table has no labelled row: no metric over nothing
    print(render.to_json(metrics))
  return 0


def main(args, overrides) -> int:
  if rundir.kind(args.workdir) == rundir.FINETUNING:
    return _main_finetuned(args)
  for flag in ("seed", "sequence_column", "label_column", "json"):
    if getattr(args, flag) not in (None, False):
      raise UserError(f"--{flag.replace('_', '-')}: applies to a fine-tuning directory; {args.workdir} is a "
                      "pretraining run")
  out, fasta = predict(args.workdir, args.input, args.output, args.step, progress=not args.no_progress)
  if fasta is None:
    sys.stdout.write(out)
  else:
    print(f"wrote {out} and {fasta}", file=sys.stderr)
  return 0
