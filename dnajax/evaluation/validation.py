"""Training validation: fixed windows and masks over a corpus's validation split, scored by the model, with the
baselines fitted on the training split and, for synthetic data, the exact Bayes limit on the same masks."""

from __future__ import annotations

import copy

import numpy as np

from dnajax.data import synthetic, windows
from dnajax.data.corpus import Corpus
from dnajax.errors import UserError
from dnajax.evaluation import baselines, metrics, strata
from dnajax.evaluation.engine import Engine


class Validation:
  """Built once per run (windows, masks and baselines are fixed); `run(engine)` scores the engine's parameters.

  Raises UserError when the validation split is empty."""

  def __init__(self, cfg, corpus: Corpus, mask_rate: float | None = None):
    self.mask_rate = cfg.eval.mask_rate if mask_rate is None else mask_rate
    w = windows.split_windows(corpus, "val", cfg.data.seq_len, cfg.eval.max_windows)
    if not len(w.ids):
      raise UserError(f"{corpus.path}: the validation split is empty; raise data.val_fraction or add records")
    self.inputs, self.targets, self.weights = windows.eval_masks(w.ids, self.mask_rate, cfg.eval.seed)
    self.strata = strata.repeat_strata(w.soft)
    self.sources = corpus.source_labels()
    if len(self.sources) > 1:  # each source's validation windows beside the overall number
      self.strata.update(strata.source_strata(corpus.segment_sources("val")[w.seq_index], self.sources,
                                              cfg.data.seq_len))
    self.baselines = baselines.TrainingBaselines(corpus, self.mask_rate, cfg.data.seq_len, cfg.eval.seed).evaluate(
        self.inputs, self.targets, self.weights, self.strata)
    self.bayes = None
    if corpus.synthetic:
      self.bayes = baselines.bayes_result(synthetic.get_hmm(corpus.synthetic), self.inputs, self.targets,
                                          self.weights)

  @property
  def num_masked(self) -> int:
    """Masked bases in the validation set."""
    return int(np.count_nonzero(self.weights))

  def run(self, engine: Engine) -> dict:
    """The result schema: masked_accuracy, loss, perplexity, num_masked, per_base_accuracy, strata, baselines,
    for a corpus of several sources `sources` ({label: masked_accuracy, loss, ...}, `Corpus.source_labels`; each
    stratum and source with its `baselines` {kmer_of_training_data, majority_base_of_training_data}), and
    for synthetic data bayes, fraction_of_bayes and excess_loss."""
    logp = engine.log_probs(self.inputs)
    out = metrics.summarize(metrics.masked_sums(logp, self.targets, self.weights, self.strata))
    out["baselines"] = copy.deepcopy(self.baselines)
    strata.attach_baselines(out)
    if len(self.sources) > 1:
      strata.pop_sources(out, self.sources)
    if self.bayes:
      out["bayes"] = dict(self.bayes)
      defined = out["num_masked"] > 0 and self.bayes["masked_accuracy"]
      out["fraction_of_bayes"] = out["masked_accuracy"] / self.bayes["masked_accuracy"] if defined else None
      out["excess_loss"] = out["loss"] - self.bayes["loss"] if defined else None
    return out
