"""`dnajax baseline`: the k-mer context model and the base composition of training data, alone, on any files."""

from __future__ import annotations

import os
import tempfile

from dnajax.data import corpus as corpus_lib
from dnajax.data import preparation, readers, tokens, windows
from dnajax.errors import UserError
from dnajax.evaluation import baselines, render


def add_arguments(p) -> None:
  p.add_argument("--data", nargs="+", required=True, help="training data: FASTA/GenBank files or a prepared corpus")
  p.add_argument("--input", nargs="+", required=True, help="files to evaluate on")
  p.add_argument("--mask-rate", type=float, default=0.15, help="fraction of bases masked, 0 < R < 1 (default: 0.15)")
  p.add_argument("--seed", type=int, default=1234, help="seed of the evaluation masks, >= 0 (default: 1234)")
  p.add_argument("--seq-len", type=int, default=128, help="evaluation window length, >= 1 (default: 128)")
  p.add_argument("--format", choices=("fasta", "genbank"))
  p.add_argument("--json", action="store_true")


def run(data: list[str], inputs: list[str], mask_rate: float, seed: int, seq_len: int, fmt: str | None) -> dict:
  """Fit on the training split of `data` (files or a prepared corpus), evaluate on `inputs` with seeded masks:
  {baselines: {uniform, majority_base_of_training_data, kmer_of_training_data}, num_masked, mask_rate, seed,
  inputs}. Raises UserError for bad files, a mask rate outside (0, 1), a window length or seed out of range, inputs
  with no masked A/C/G/T base or training data with no A/C/G/T base in its training split (an accuracy or loss over
  nothing, or of a model fitted on nothing, is not a result)."""
  if not 0.0 < mask_rate < 1.0:
    raise UserError(f"--mask-rate {mask_rate}: must be between 0 and 1")
  if seq_len < 1:
    raise UserError(f"--seq-len {seq_len}: must be an integer >= 1; pass a window length such as 128")
  if seed < 0:
    raise UserError(f"--seed {seed}: must be an integer >= 0")
  records = readers.read_files(inputs, fmt)
  if not any(((r.ids >= tokens.A) & (r.ids <= tokens.T)).any() for r in records):
    raise UserError(f"{', '.join(inputs)}: no A/C/G/T base (only N); nothing to measure, pass files with A/C/G/T "
                    "bases")
  w = windows.tile([r.ids for r in records], [r.soft_masked for r in records], seq_len)
  x, t, wt = windows.eval_masks(w.ids, mask_rate, seed)
  if wt.sum() == 0:
    raise UserError(f"{', '.join(inputs)}: no A/C/G/T base was masked at --mask-rate {mask_rate}; raise --mask-rate "
                    "or use a longer input")
  with tempfile.TemporaryDirectory() as tmp:
    if len(data) == 1 and corpus_lib.is_corpus(data[0]):
      corpus = corpus_lib.Corpus(data[0])
    else:
      files = readers.expand_inputs(data)
      corpus = preparation.prepare(readers.read_files(files, fmt), os.path.join(tmp, "corpus"),
                                  corpus_lib.SplitSettings(), sources=files)
    if corpus.base_counts("train").sum() == 0:
      raise UserError(f"{', '.join(data)}: the training split has no A/C/G/T base, so a baseline fitted on it would be "
                      "fitted on nothing; pass --data with training bases (prepare a corpus with a lower "
                      "--val-fraction)")
    fitted = baselines.TrainingBaselines(corpus, mask_rate, seq_len, seed)
  return {"baselines": fitted.evaluate(x, t, wt), "num_masked": int(wt.sum()), "mask_rate": mask_rate, "seed": seed,
          "inputs": list(inputs)}


def main(args, overrides) -> int:
  r = run(args.data, args.input, args.mask_rate, args.seed, args.seq_len, args.format)
  if args.json:
    print(render.to_json(r))
  else:
    print(f"{r['num_masked']} masked bases (mask rate {r['mask_rate']}, seed {r['seed']})")
    print("\n".join(render.reference_text(r)))
  return 0
