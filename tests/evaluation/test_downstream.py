import numpy as np
import pytest

from dnajax.data import tokens
from dnajax.evaluation import downstream


def test_kmer_counts():
  x = downstream.kmer_counts([tokens.encode("ACGTA"), tokens.encode("ANA")])
  assert x.shape == (2, 4 + 16 + 64 + 256)
  assert x[0, :4].tolist() == [2, 1, 1, 1]  # A C G T
  assert x[0, 4 + 0 * 4 + 1] == 1 and x[0, 4:20].sum() == 4  # AC once; 4 dimers
  assert x[1, :4].tolist() == [2, 0, 0, 0] and x[1, 4:].sum() == 0  # no k-mer spans the N


def test_metrics_against_hand_values():
  m = downstream.classification_metrics([0, 1, 1, 0], np.array([[.9, .1], [.2, .8], [.6, .4], [.4, .6]]), ["a", "b"])
  assert m["accuracy"] == 0.5 and m["mcc"] == 0.0 and m["auroc"] == 0.75 and m["num_rows"] == 4
  assert downstream.classification_metrics([1, 1], np.array([[.2, .8], [.3, .7]]), ["a", "b"])["auroc"] is None
  three = downstream.classification_metrics([0, 1, 2], np.eye(3), ["a", "b", "c"])
  assert three["mcc"] == 1.0 and three["macro_f1"] == 1.0 and three["auroc"] == 1.0
  r = downstream.regression_metrics([1.0, 2.0, 3.0, 4.0], [1.1, 1.9, 3.2, 3.9])
  assert r["spearman"] == 1.0 and r["pearson"] > 0.99 and r["r2"] > 0.95 and r["rmse"] == pytest.approx(0.1323, 1e-3)
  assert downstream.regression_metrics([1.0, 1.0], [2.0, 3.0])["spearman"] is None


def test_kmer_baseline_learns_a_motif():
  rng = np.random.default_rng(0)
  seqs, y = [], []
  for i in range(300):
    s = "".join(rng.choice(list("ACGT"), 60))
    if i % 2:
      s = s[:20] + "TATAAA" + s[26:]
    seqs.append(tokens.encode(s))
    y.append(i % 2)
  b = downstream.KmerBaseline("classification").fit(seqs[:200], y[:200])
  m = downstream.classification_metrics(y[200:], b.predict(seqs[200:], 2), ["no", "yes"])
  assert m["mcc"] > 0.6
  r = downstream.KmerBaseline("regression").fit(seqs[:200], np.array(y[:200]) * 2.5)
  assert downstream.regression_metrics(np.array(y[200:]) * 2.5, r.predict(seqs[200:]))["spearman"] > 0.6
