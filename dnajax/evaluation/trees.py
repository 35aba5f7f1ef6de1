"""Gradient-boosted trees on a frozen encoder (`dnajax finetune`, finetune.method=trees): the predictor `dnajax
predict` and `dnajax design --expression-model` apply.

Each sequence becomes one input row: with `positions` P > 0 (every training sequence has the same length, aligned
inputs such as synonymous variants of one gene), the encoder's hidden states at positions 0..P-1, each projected on
the first `components` principal axes of the training rows' states (float[P * components], NaN past a sequence's end,
which the trees treat as missing); with P = 0 the mean hidden state over the sequence (float[D]). Sequences longer than
a window are read through overlapping windows (`Engine.sequence_hidden_states`). With features=expression the
`hand_features.NAMES` of the coding sequence (CAI, GC, 5' GC, 5' folding energy over several windows, rare
codons) follow. scikit-learn's HistGradientBoostingRegressor (or -Classifier) maps the row to the standardised value
(or the class probabilities; gradient boosting: Friedman 2001, Ann Stat 29:1189; histogram binning as LightGBM, Ke et
al. 2017).

Why trees: on the mRFP synonymous-variant library (Nieuwkoop et al. 2023) the link between sequence and expression is
far from linear - the 5' folding energy matters only in some sequence contexts. Measured on its val split (trained on
train, 400-step configs/cds.py encoder): boosted trees on the projected states and the hand features Spearman 0.82-0.83
(5-fold CV on train+val 0.828), a linear head on the same states 0.73-0.78, SGD fine-tuning (LoRA, mean pooling) 0.39.

Letters: N sequences, P positions, D d_model, C components, F input columns, K outputs.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import pickle

import numpy as np
from tqdm import tqdm

from dnajax.data import labels as labels_lib
from dnajax.data import rundir
from dnajax.errors import UserError
from dnajax.evaluation import hand_features

MODEL_FILE = "trees.pkl"
CHUNK = 128  # sequences whose hidden states are held at once
PCA_SEQUENCES = 128  # training sequences whose states fit the projection
PCA_POSITIONS = 100_000  # positions sampled from them at most


@dataclasses.dataclass
class Representation:
  """How a sequence becomes the trees' input row (module docstring). `mean` float32[D] and `axes` float32[C, D] are
  the projection (positions > 0 only); features: 'none' or 'expression'; organism: the host of the expression
  features."""

  layer: int = -1
  positions: int = 0
  components: int = 3
  features: str = "none"
  organism: str = "e_coli"
  mean: np.ndarray | None = None
  axes: np.ndarray | None = None

  def fit(self, engine, seqs, seed: int = 0) -> Representation:
    """Sets the projection from the states of up to PCA_SEQUENCES of `seqs` (seeded sample; scikit-learn's PCA)."""
    if not self.positions:
      return self
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(seed)
    pick = rng.choice(len(seqs), min(len(seqs), PCA_SEQUENCES), replace=False)
    states = np.concatenate(engine.sequence_hidden_states([seqs[i] for i in pick], self.layer))
    if len(states) > PCA_POSITIONS:
      states = states[rng.choice(len(states), PCA_POSITIONS, replace=False)]
    k = min(self.components, states.shape[1], len(states))
    pca = PCA(k, random_state=seed).fit(states.astype(np.float64))
    self.mean, self.axes = pca.mean_.astype(np.float32), pca.components_.astype(np.float32)
    return self

  def inputs(self, engine, seqs, progress: bool = False, names=None) -> np.ndarray:
    """float32[N, F]: the trees' input rows of `seqs` (token ids), in order."""
    hand = hand_features.matrix(seqs, self.organism, names) if self.features == "expression" else None
    width = self.positions * len(self.axes) if self.positions else engine.cfg.model.d_model
    out = np.full((len(seqs), width), np.nan, np.float32)
    for a in tqdm(range(0, len(seqs), CHUNK), desc="encode", unit="chunk", leave=False,
                  disable=not progress or len(seqs) <= CHUNK):
      part = seqs[a:a + CHUNK]
      if not self.positions:
        out[a:a + len(part)] = engine.mean_hidden_states(part, self.layer)
        continue
      for i, h in enumerate(engine.sequence_hidden_states(part, self.layer)):
        n = min(len(h), self.positions)
        row = np.full((self.positions, len(self.axes)), np.nan, np.float32)
        row[:n] = (h[:n] - self.mean) @ self.axes.T
        out[a + i] = row.reshape(-1)
    return out if hand is None else np.concatenate([out, hand.astype(np.float32)], axis=1)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


def make_model(task: str, iterations: int, learning_rate: float, seed: int):
  """The scikit-learn estimator of the head (no early stopping: the validation rows choose the iteration count)."""
  from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

  kind = HistGradientBoostingClassifier if task == "classification" else HistGradientBoostingRegressor
  return kind(max_iter=int(iterations), learning_rate=float(learning_rate), early_stopping=False, random_state=seed)


def model_outputs(model, task: str, x_NxF: np.ndarray) -> np.ndarray:
  """float32[N, K]: log class probabilities, or the standardised value [N, 1]."""
  if task == "classification":
    return np.log(np.maximum(model.predict_proba(x_NxF), 1e-12)).astype(np.float32)
  return model.predict(x_NxF).astype(np.float32)[:, None]


def staged_outputs(model, task: str, x_NxF: np.ndarray):
  """The outputs (as model_outputs) after each boosting iteration, one array per iteration."""
  if task == "classification":
    for p in model.staged_predict_proba(x_NxF):
      yield np.log(np.maximum(p, 1e-12)).astype(np.float32)
  else:
    for p in model.staged_predict(x_NxF):
      yield p.astype(np.float32)[:, None]


def first_iterations(model, iterations: int, task: str, x_NxF: np.ndarray, want_NxK: np.ndarray):
  """The fitted `model` cut to its first `iterations` boosting iterations, or None where that cannot be done.

  Without subsampling or early stopping (make_model), the first k trees of a fit are the trees a fit with
  max_iter=k grows, so cutting equals fitting again at a fraction of the time. It reads scikit-learn's per-iteration
  tree list (`_predictors`); the cut model's outputs on `x_NxF` must equal `want_NxK` (the staged outputs after
  `iterations`, float32[N, K]), else None and the caller fits again."""
  trees_per_iteration = getattr(model, "_predictors", None)
  if not isinstance(trees_per_iteration, list) or len(trees_per_iteration) < iterations:
    return None
  cut = copy.copy(model)
  cut._predictors = trees_per_iteration[:iterations]
  cut.set_params(max_iter=int(iterations))
  return cut if np.array_equal(model_outputs(cut, task, x_NxF), want_NxK) else None


class TreesPredictor:
  """A boosted-tree head on a frozen encoder: `outputs(seqs)` float32[N, K] and `predict(seqs)` (class probabilities
  float64[N, C] or values float64[N] in the labels' units), as `finetuned.SequencePredictor`.

  Attributes: engine (the base run's), representation, model (scikit-learn), coding, positions."""

  def __init__(self, engine, representation: Representation, model, coding: labels_lib.LabelCoding):
    self.engine, self.representation, self.model, self.coding = engine, representation, model, coding
    self.positions = representation.positions

  @classmethod
  def from_workdir(cls, workdir: str, info: dict, seed: int) -> TreesPredictor:
    """The seed's model of a fine-tuning directory; its base run must still be where it was fine-tuned from.
    Raises UserError for a missing or unreadable model file or base run."""
    from dnajax.evaluation.engine import Engine

    path = os.path.join(rundir.seed_dir(workdir, seed), MODEL_FILE)
    try:
      with open(path, "rb") as f:
        saved = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as e:
      raise UserError(f"{path}: cannot be read ({type(e).__name__}: {e}); rerun `dnajax finetune` into a new "
                      "--output") from None
    base = info["base"]
    if rundir.kind(rundir.resolve(base["workdir"])) != rundir.PRETRAINING:
      raise UserError(f"{workdir}: reads the encoder of its base run {base['workdir']}, which is gone; restore it "
                      "there (a trees model keeps only its head)")
    rep = saved["representation"]
    for key in ("mean", "axes"):
      rep[key] = None if rep[key] is None else np.asarray(rep[key], np.float32)
    engine = Engine.from_workdir(base["workdir"], base["step"])
    return cls(engine, Representation(**rep), saved["model"], labels_lib.LabelCoding(**info["coding"]))

  def save(self, path: str) -> None:
    """Pickles the head and the representation (with the scikit-learn version) to `path`, atomically."""
    import sklearn

    from dnajax.data import writers

    payload = {"representation": self.representation.to_dict(), "model": self.model, "sklearn": sklearn.__version__}
    writers.write_all([("the trees model", path, lambda f: pickle.dump(payload, f))])

  def check_lengths(self, table) -> None:
    """As `labels.check_positions` with this model's positions."""
    labels_lib.check_positions(table, self.positions)

  def outputs(self, seqs, progress: bool = False, names=None) -> np.ndarray:
    """Head outputs float32[N, K] of sequences (token ids), in input order."""
    return model_outputs(self.model, self.coding.task, self.representation.inputs(self.engine, seqs, progress, names))

  def predict(self, seqs, progress: bool = False) -> np.ndarray:
    """Class probabilities float64[N, C] or values float64[N] in the training labels' units."""
    return self.coding.values(self.outputs(seqs, progress))
