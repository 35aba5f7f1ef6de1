"""From `config.data` to a prepared corpus in the workdir: user files, an existing corpus, or synthetic data."""

from __future__ import annotations

import dataclasses
import logging
import os

import numpy as np

from dnajax.data import corpus as corpus_lib
from dnajax.data import preparation, readers, rundir, synthetic
from dnajax.errors import UserError

SYNTHETIC_PREFIX = "synthetic:"
log = logging.getLogger("dnajax")


def split_settings(data_cfg, seed: int) -> corpus_lib.SplitSettings:
  """The corpus split settings of `config.data`."""
  return corpus_lib.SplitSettings(val_fraction=data_cfg.val_fraction, mode=data_cfg.split, n_run=data_cfg.n_run,
                                  min_len=data_cfg.min_len, seed=seed)


def synthetic_records(name: str, total_bases: int, record_len: int, seed: int) -> list[readers.Record]:
  """About `total_bases` bases of the synthetic generator `name` (iid | structured) in records of `record_len`,
  seeded. Raises UserError for an unknown generator."""
  try:
    hmm = synthetic.get_hmm(name)
  except ValueError:
    raise UserError(f"data.sources: unknown synthetic generator {name!r}; use synthetic:iid or "
                    "synthetic:structured") from None
  n = max(2, -(-total_bases // record_len))
  ids = synthetic.sample(hmm, n, record_len, np.random.default_rng([seed, 7919]))
  return [readers.Record(f"{name}_{i}", ids[i], np.zeros(record_len, bool), f"synthetic:{name}") for i in range(n)]


def build_corpus(data_cfg, workdir: str, seed: int) -> corpus_lib.Corpus:
  """Sources -> a corpus: an existing corpus directory is used as is; anything else is prepared into
  `workdir/corpus` (reused on resume when the sources and settings are unchanged). Raises UserError when the
  training or the validation split is empty (a new corpus is then not written)."""
  corpus = _open_or_prepare(data_cfg, workdir, seed)
  for split, what in (("train", "training"), ("val", "validation")):
    if not corpus.split(split):
      raise UserError(f"{corpus.path}: the {what} split is empty; training needs both splits: prepare it again with "
                      "a validation fraction above 0 and below 1 (--val-fraction) or pass FASTA/GenBank files")
  return corpus


def _open_or_prepare(data_cfg, workdir: str, seed: int) -> corpus_lib.Corpus:
  sources = [s for s in data_cfg.sources if s]
  if not sources:
    raise UserError("data.sources is empty; pass --data FILE or a synthetic:NAME source")
  if len(sources) == 1 and corpus_lib.is_corpus(sources[0]):
    return corpus_lib.Corpus(sources[0])
  out = rundir.corpus_dir(workdir)
  settings = split_settings(data_cfg, seed)
  synth = [s for s in sources if s.startswith(SYNTHETIC_PREFIX)]
  if synth:
    if len(sources) > 1:
      raise UserError("data.sources: a synthetic source cannot be mixed with files; pass one or the other")
    name = synth[0][len(SYNTHETIC_PREFIX):]
    extra = {"synthetic": name, "synthetic_bases": data_cfg.synthetic_bases,
             "synthetic_record_len": data_cfg.synthetic_record_len}
    if corpus_lib.is_corpus(out):
      existing = corpus_lib.Corpus(out)
      if all(existing.index.get(k) == v for k, v in extra.items()) and existing.index["settings"] == \
          dataclasses.asdict(settings):
        return existing
    records = synthetic_records(name, data_cfg.synthetic_bases, data_cfg.synthetic_record_len, seed)
    return preparation.prepare(records, out, settings, extra=extra, force=True, require_val=True)
  groups = readers.expand_groups(sources)
  files = [f for f, _ in groups]
  if data_cfg.cds:  # coding sequences only, each in frame from its first base: windows start on codon boundaries
    records, counts = readers.read_coding_sequences(files, data_cfg.format or None)
    log.info("coding sequences: %s", ", ".join(f"{k} {v}" for k, v in counts.items() if v))
    return preparation.prepare(records, out, settings, sources=files, force=True, require_val=True,
                              extra={"codon_aligned": True, "coding_sequences": counts})
  return preparation.prepare_files(files, out, settings, data_cfg.format or None, force=True,  # reused when unchanged
                                  require_val=True, progress=True, groups=[g for _, g in groups],
                                  workers=os.cpu_count() or 1)
