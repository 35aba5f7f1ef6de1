"""`dnajax evaluate`: any checkpoint on any FASTA/GenBank files, on fixed seeded masks, with baselines beside it."""

from __future__ import annotations

import os

import numpy as np

from dnajax import baselines, checkpoint, config as config_lib, corpus as corpus_lib, io, metrics, tokens
from dnajax.errors import UserError


def load_run(workdir: str, step: int | None = None):
  """(config, Program, params, step) for a checkpoint in `workdir` (the latest unless `step`)."""
  from dnajax import train  # heavy import, only when a checkpoint is needed

  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise UserError(f"{workdir}: not a dnajax workdir (no config.json); pass the --workdir of a training run")
  with open(path) as f:
    cfg = config_lib.from_json(f.read())
  ckpt = checkpoint.Checkpointer(workdir, keep=cfg.ckpt.keep, async_save=False, create=False,
                                 directory=cfg.ckpt.dir)
  try:
    step = ckpt.resolve_step(step)
    program = train.Program(cfg)
    state, _ = program.restore(ckpt, step)
  finally:
    ckpt.close()
  return cfg, program, state["params"], step


def evaluate(workdir: str, inputs: list[str], step: int | None = None, mask_rate: float | None = None,
             seed: int | None = None, fmt: str | None = None, progress: bool = False,
             reverse_complement: bool = True) -> dict:
  """Model and baselines on every masked base of `inputs`, with strata (repeat, coding/codon position, GC bin) and
  the reverse-complement consistency (a second pass over the reverse strand) unless turned off."""
  records = io.read_files(inputs, fmt)  # read first: a bad file fails before any model work
  cfg, program, params, step = load_run(workdir, step)
  mask_rate = cfg.eval.mask_rate if mask_rate is None else mask_rate
  seed = cfg.eval.seed if seed is None else seed
  if not 0.0 < mask_rate < 1.0:
    raise UserError(f"--mask-rate {mask_rate}: must be between 0 and 1")
  w = corpus_lib.tile([r.ids for r in records], [r.soft_masked for r in records], cfg.data.seq_len)
  inputs_, targets, weights = corpus_lib.eval_masks(w.ids, mask_rate, seed)
  if weights.sum() == 0:
    raise UserError(f"{', '.join(inputs)}: no A/C/G/T base was masked; raise --mask-rate or use a longer input")
  probs = program.predict_windows(params, inputs_, cfg.eval.batch, progress=progress)
  nll, correct = metrics.position_scores(probs, targets)
  strata = metrics.gc_strata(w.ids)
  if w.soft.any():
    strata.update(repeat=w.soft, non_repeat=~w.soft)
  if any(r.codon_position is not None for r in records):
    labels = [r.codon_position if r.codon_position is not None else np.zeros(len(r.ids), np.int8) for r in records]
    strata.update(metrics.codon_strata(corpus_lib.tile([r.ids for r in records], labels, cfg.data.seq_len).soft))
  out = metrics.position_report(nll, correct, targets, weights, strata)
  if reverse_complement:
    rc_inputs = metrics.reverse_complement_windows(inputs_)
    back = metrics.from_reverse_strand(program.predict_windows(params, rc_inputs, cfg.eval.batch, progress), rc_inputs)
    out["reverse_complement"] = metrics.strand_consistency(probs, back, targets, weights)
  counts = np.array([sum(int((r.ids == b).sum()) for r in records) for b in tokens.BASE_IDS])
  out["baselines"] = {"uniform": 0.25,
                      "majority_base_of_input": metrics.majority_base_accuracy(counts, targets, weights)}
  train_index = os.path.join(workdir, "corpus", "index.json")
  if os.path.isfile(train_index):
    train_corpus = corpus_lib.Corpus(os.path.dirname(train_index))
    out["baselines"]["majority_base_of_training_data"] = metrics.majority_base_accuracy(
        train_corpus.base_counts("train"), targets, weights)
    kmer = baselines.select_and_fit(baselines.train_sequences(train_corpus), mask_rate, cfg.data.seq_len, seed)
    out["baselines"]["kmer_of_training_data"] = baselines.kmer_report(kmer, inputs_, targets, weights)
  out.update(checkpoint_step=step, mask_rate=mask_rate, seed=seed, inputs=list(inputs),
             devices=int(program.mesh.devices.size),
             num_sequences=len(records), num_windows=int(len(w.ids)), seq_len=cfg.data.seq_len)
  return out


def format_text(r: dict) -> str:
  lines = [f"checkpoint step {r['checkpoint_step']}, mask rate {r['mask_rate']}, seed {r['seed']}, "
           f"{r['num_sequences']} sequences, {r['num_masked']} masked bases",
           f"masked_accuracy {r['masked_accuracy']:.4f}   loss {r['loss']:.4f} nats/base   "
           f"perplexity {r['perplexity']:.3f}",
           "per base: " + "  ".join(f"{b} {v:.4f}" if v is not None else f"{b} -"
                                    for b, v in r["per_base_accuracy"].items())]
  for name, st in r.get("strata", {}).items():
    lines.append(f"  {name:18s} masked_accuracy {st['masked_accuracy']:.4f}  loss {st['loss']:.4f}  "
                 f"n {st['num_masked']}")
  rc = r.get("reverse_complement")
  if rc:
    lines.append(f"reverse complement: same prediction at {100 * rc['agreement']:.1f}% of masked bases, mean "
                 f"total-variation distance {rc['mean_tv_distance']:.4f}, accuracy from the reverse strand "
                 f"{rc['masked_accuracy_from_reverse_strand']:.4f}")
  b = r["baselines"]
  lines.append(f"baselines: uniform 0.25   majority base of input ({b['majority_base_of_input']['base']}) "
               f"{b['majority_base_of_input']['masked_accuracy']:.4f}")
  if "kmer_of_training_data" in b:
    k = b["kmer_of_training_data"]
    lines.append(f"k-mer context model of the training data (k={k['max_k']}): masked_accuracy "
                 f"{k['masked_accuracy']:.4f}  loss {k['loss']:.4f}")
  return "\n".join(lines)
