"""`dnajax evaluate`: any checkpoint on any FASTA/GenBank files, on fixed seeded masks, with baselines beside it,
strata (repeat, GC bin, coding/codon position from GenBank CDS features) and the reverse-complement consistency."""

from __future__ import annotations

import numpy as np

from dnajax.data import corpus as corpus_lib
from dnajax.data import readers, rundir, tokens, windows
from dnajax.errors import UserError, warn
from dnajax.evaluation import baselines, metrics, render, strata
from dnajax.evaluation.engine import Engine


def add_arguments(p) -> None:
  p.add_argument("--workdir", required=True)
  p.add_argument("--input", nargs="+", required=True)
  p.add_argument("--step", type=int, help="checkpoint step (default: latest)")
  p.add_argument("--mask-rate", type=float, help="default: the training config's eval.mask_rate")
  p.add_argument("--seed", type=int, help="mask seed (default: the training config's eval.seed)")
  p.add_argument("--format", choices=("fasta", "genbank"))
  p.add_argument("--json", action="store_true", help="print one JSON object")
  p.add_argument("--no-reverse-complement", action="store_true",
                 help="skip the reverse-strand pass (the strand-consistency score; halves the time)")


def evaluate(workdir: str, inputs: list[str], step: int | None = None, mask_rate: float | None = None,
             seed: int | None = None, fmt: str | None = None, progress: bool = False,
             reverse_complement: bool = True) -> dict:
  """The model and the baselines on every masked base of `inputs` (the result schema of
  `dnajax.evaluation.metrics.summarize`, plus baselines, reverse_complement and the run's settings).

  Raises UserError for bad files, a bad workdir or step, a mask rate outside (0, 1) or nothing masked."""
  records = readers.read_files(inputs, fmt)  # read first: a bad file fails before any model work
  if not any(((r.ids >= tokens.A) & (r.ids <= tokens.T)).any() for r in records):
    raise UserError(f"{', '.join(inputs)}: holds no A/C/G/T base (only N); nothing to evaluate: pass sequence with "
                    "bases")
  engine = Engine.from_workdir(workdir, step)
  cfg = engine.cfg
  mask_rate = cfg.eval.mask_rate if mask_rate is None else mask_rate
  seed = cfg.eval.seed if seed is None else seed
  if not 0.0 < mask_rate < 1.0:
    raise UserError(f"--mask-rate {mask_rate}: must be between 0 and 1")
  if seed < 0:
    raise UserError(f"--seed {seed}: must be 0 or more")
  w = windows.tile([r.ids for r in records], [r.soft_masked for r in records], engine.seq_len)
  inputs_, targets, weights = windows.eval_masks(w.ids, mask_rate, seed)
  if weights.sum() == 0:
    raise UserError(f"{', '.join(inputs)}: no A/C/G/T base was masked; raise --mask-rate or use a longer input")
  logp = engine.log_probs(inputs_, progress=progress)
  selections = {**strata.gc_strata(w.ids), **strata.repeat_strata(w.soft)}
  if any(r.codon_position is not None for r in records):
    # A record that cannot carry CDS features (FASTA) is in neither coding nor non_coding: -1, unknown.
    labels = [r.codon_position if r.codon_position is not None else np.full(len(r.ids), -1, np.int8)
              for r in records]
    selections.update(strata.codon_strata(windows.tile([r.ids for r in records], labels, engine.seq_len).soft))
  files = {path: k for k, path in enumerate(dict.fromkeys(r.source for r in records))}
  labels = readers.short_names(list(files))
  record_file = np.array([files[r.source] for r in records], np.int64)
  selections.update(strata.source_strata(record_file[w.seq_index], labels, engine.seq_len))
  out = metrics.summarize(metrics.masked_sums(logp, targets, weights, selections))
  counts = np.array([sum(int((r.ids == b).sum()) for r in records) for b in tokens.BASE_IDS])
  out["baselines"] = {"uniform": baselines.UNIFORM_ACCURACY,
                      "majority_base_of_input": baselines.majority_base_result(counts, targets, weights, selections)}
  if corpus_lib.is_corpus(rundir.corpus_dir(workdir)):
    train = baselines.TrainingBaselines(corpus_lib.Corpus(rundir.corpus_dir(workdir)), mask_rate, engine.seq_len,
                                        seed)
    out["baselines"].update(train.evaluate(inputs_, targets, weights, selections))
  else:
    warn(f"{workdir}: no training corpus here (a shipped or imported model), so the k-mer context model and the "
         "training data's majority base cannot be fitted; the input's majority base and uniform stand beside the "
         "model")
  strata.pop_sources(strata.attach_baselines(out), labels)
  for label, s in out["sources"].items():
    if not s["num_masked"]:
      warn(f"{label}: no A/C/G/T base was masked (only N, or too short at --mask-rate {mask_rate}); its `sources` "
           "entry has null values")
  if reverse_complement:
    rc_inputs = strata.reverse_complement_windows(inputs_)
    back = strata.from_reverse_strand(engine.log_probs(rc_inputs, progress=progress), rc_inputs)
    out["reverse_complement"] = strata.strand_consistency(logp, back, targets, weights)
  cds = [r.cds_counts for r in records if r.cds_counts is not None]
  if cds:  # how the GenBank CDS features behind the coding strata were read (dnajax.data.features.KINDS)
    out["cds_features"] = {k: sum(c[k] for c in cds) for k in cds[0]}
  out.update(checkpoint_step=engine.step, mask_rate=mask_rate, seed=seed, inputs=list(inputs),
             devices=int(engine.mesh.devices.size), num_sequences=len(records), num_windows=int(len(w.ids)),
             seq_len=engine.seq_len)
  return out


def main(args, overrides) -> int:
  r = evaluate(args.workdir, args.input, args.step, args.mask_rate, args.seed, args.format, progress=True,
               reverse_complement=not args.no_reverse_complement)
  if args.json:
    print(render.to_json(r))
  else:
    print(f"checkpoint step {r['checkpoint_step']}, mask rate {r['mask_rate']}, seed {r['seed']}, "
          f"{r['num_sequences']} sequences")
    print("\n".join(render.result_text(r)))
    if "cds_features" in r:
      print("CDS features: " + ", ".join(f"{k} {v}" for k, v in r["cds_features"].items() if v))
  return 0
