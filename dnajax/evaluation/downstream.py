"""Downstream (labelled-sequence) metrics and the k-mer baseline every downstream number stands beside.

Metrics come from scikit-learn and SciPy (not hand-written): classification accuracy, the Matthews correlation
coefficient (MCC; its multi-class generalisation, Gorodkin 2004, for more than two classes - the number GUE reports,
Zhou et al. 2024), macro F1 and AUROC (binary; one-vs-rest macro for more classes); regression Spearman and Pearson
correlation, R^2 and RMSE. A metric that is undefined on the rows given (AUROC with one class present, a
correlation of a constant) is None, never NaN.

Baselines, fitted on the training rows only: counts of every 1- to 4-mer (340 features per sequence, k-mers with N
skipped; `KmerBaseline`, the one the fine-tuning acceptance names) and, for aligned fixed-length inputs, the base at
each position one-hot (`PositionBaseline`, a position weight matrix learned discriminatively); each standardised, then
a logistic regression (classification) or a ridge regression with its penalty chosen by cross-validation
(regression).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from dnajax.data import tokens

KMER_SIZES = (1, 2, 3, 4)


def kmer_counts(seqs, sizes=KMER_SIZES) -> np.ndarray:
  """float32[N, sum(4**k)]: counts of every k-mer of each size in each sequence (token ids), k-mers holding a base
  that is not A/C/G/T left out; columns ordered by k, then lexicographically over ACGT."""
  out = np.zeros((len(seqs), sum(4 ** k for k in sizes)), np.float32)
  for i, ids in enumerate(seqs):
    codes = np.asarray(ids, np.int64) - tokens.A
    ok = (codes >= 0) & (codes <= 3)
    col = 0
    for k in sizes:
      n = len(codes) - k + 1
      if n > 0:
        idx = np.zeros(n, np.int64)
        valid = np.ones(n, bool)
        for j in range(k):
          idx = idx * 4 + np.clip(codes[j:j + n], 0, 3)
          valid &= ok[j:j + n]
        out[i, col:col + 4 ** k] = np.bincount(idx[valid], minlength=4 ** k)
      col += 4 ** k
  return out


def _finite(x) -> float | None:
  x = float(x)
  return x if math.isfinite(x) else None


def classification_metrics(y_true, probs, classes) -> dict:
  """{accuracy, mcc, macro_f1, auroc, num_rows} for true labels `y_true` (int class indices [N]) and predicted
  class probabilities float[N, C] (columns in the order of `classes`); the prediction is the argmax. MCC and AUROC
  are None when the true labels hold one class (MCC of constant predictions is 0, sklearn's convention)."""
  from sklearn import metrics as skm

  y_true, probs = np.asarray(y_true), np.asarray(probs, np.float64)
  y_pred = probs.argmax(1)
  with warnings.catch_warnings():  # one class on both sides: MCC is 0 by sklearn's convention, said here instead
    warnings.simplefilter("ignore", UserWarning)
    mcc = skm.matthews_corrcoef(y_true, y_pred)
  if len(np.unique(y_true)) < 2:  # one class present: MCC has no value (0/0), not 0
    mcc = None
  out = {"accuracy": _finite(skm.accuracy_score(y_true, y_pred)), "mcc": None if mcc is None else _finite(mcc),
         "macro_f1": _finite(skm.f1_score(y_true, y_pred, average="macro", labels=range(len(classes)),
                                          zero_division=0)),
         "auroc": None, "num_rows": int(len(y_true))}
  present = np.unique(y_true)
  if len(present) == len(classes) > 1:
    if len(classes) == 2:
      out["auroc"] = _finite(skm.roc_auc_score(y_true, probs[:, 1]))
    else:
      p = probs / probs.sum(1, keepdims=True)
      out["auroc"] = _finite(skm.roc_auc_score(y_true, p, multi_class="ovr", average="macro"))
  return out


def regression_metrics(y_true, y_pred) -> dict:
  """{spearman, pearson, r2, rmse, num_rows} for float targets and predictions [N] (in the targets' units)."""
  from scipy import stats
  from sklearn import metrics as skm

  y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
  constant = len(y_true) < 2 or np.ptp(y_true) == 0 or np.ptp(y_pred) == 0
  return {"spearman": None if constant else _finite(stats.spearmanr(y_true, y_pred).statistic),
          "pearson": None if constant else _finite(stats.pearsonr(y_true, y_pred).statistic),
          "r2": _finite(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else None,
          "rmse": _finite(math.sqrt(skm.mean_squared_error(y_true, y_pred))), "num_rows": int(len(y_true))}


def position_onehot(seqs, positions: int) -> np.ndarray:
  """float32[N, 4 * positions]: the base (A/C/G/T; N and positions after the end all zero) at positions
  0..positions-1 of each sequence (token ids), one-hot."""
  out = np.zeros((len(seqs), positions, 4), np.float32)
  for i, ids in enumerate(seqs):
    codes = np.asarray(ids[:positions], np.int64) - tokens.A
    ok = (codes >= 0) & (codes <= 3)
    out[i, np.flatnonzero(ok), codes[ok]] = 1.0
  return out.reshape(len(seqs), -1)


class LinearBaseline:
  """Features of each sequence (`features(seqs) -> float[N, F]`), standardised, then logistic regression
  (`task="classification"`, classes as int indices 0..C-1) or ridge regression with cross-validated penalty
  (`"regression"`). `fit` on training rows, then `predict` (class probabilities float[N, C] or values float[N])."""

  def __init__(self, task: str, features, seed: int = 0):
    from sklearn.linear_model import LogisticRegression, RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if task not in ("classification", "regression"):
      raise ValueError(f"task {task!r}: classification or regression")
    self.task, self.features = task, features
    estimator = (LogisticRegression(max_iter=5000, random_state=seed) if task == "classification"
                 else RidgeCV(alphas=np.logspace(-3, 4, 15)))
    self.model = make_pipeline(StandardScaler(), estimator)

  def fit(self, seqs, y) -> LinearBaseline:
    self.model.fit(self.features(seqs), np.asarray(y))
    return self

  def predict(self, seqs, num_classes: int | None = None) -> np.ndarray:
    x = self.features(seqs)
    if self.task == "regression":
      return self.model.predict(x).astype(np.float64)
    p = self.model.predict_proba(x)
    out = np.zeros((len(x), num_classes or p.shape[1]))
    out[:, self.model.classes_] = p  # classes absent from the training rows get probability 0
    return out


class KmerBaseline(LinearBaseline):
  """`LinearBaseline` on 1- to 4-mer counts (`kmer_counts`)."""

  def __init__(self, task: str, seed: int = 0):
    super().__init__(task, kmer_counts, seed)


class PositionBaseline(LinearBaseline):
  """`LinearBaseline` on the one-hot base at each of the first `positions` positions (`position_onehot`)."""

  def __init__(self, task: str, positions: int, seed: int = 0):
    super().__init__(task, lambda seqs: position_onehot(seqs, positions), seed)
