import itertools

import numpy as np

from dnajax.data import synthetic, tokens
from dnajax.evaluation import baselines


def _tiny_hmm():
  trans = np.array([[0.8, 0.2], [0.3, 0.7]])
  emit = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.2, 0.6]])
  return synthetic.HMM(start=synthetic._stationary(trans), trans=trans, emit=emit)


def _brute_force(hmm, ids, observed):
  """p(base_i | observed) by enumerating every hidden path and every unobserved base."""
  L = len(ids)
  probs = np.zeros((L, 4))
  total = 0.0
  for path in itertools.product(range(len(hmm.start)), repeat=L):
    p_path = hmm.start[path[0]] * np.prod([hmm.trans[a, b] for a, b in zip(path, path[1:])])
    like = np.prod([hmm.emit[s, ids[i] - tokens.A] if observed[i] else 1.0 for i, s in enumerate(path)])
    w = p_path * like
    total += w
    for i, s in enumerate(path):
      probs[i] += w * hmm.emit[s]
  return probs / total


def test_forward_backward_matches_brute_force():
  hmm = _tiny_hmm()
  rng = np.random.default_rng(3)
  ids = synthetic.sample(hmm, 3, 6, rng)
  observed = rng.random(ids.shape) > 0.4
  fb = synthetic.posterior_predictive(hmm, ids, observed)
  for b in range(3):
    np.testing.assert_allclose(fb[b], _brute_force(hmm, ids[b], observed[b]), rtol=1e-10, atol=1e-12)


def test_iid_bayes_limit_is_quarter():
  hmm = synthetic.iid_hmm()
  rng = np.random.default_rng(0)
  ids = synthetic.sample(hmm, 20, 100, rng)
  w = (rng.random(ids.shape) < 0.3).astype(float)
  inputs = np.where(w > 0, tokens.MASK, ids)
  s = baselines.bayes_result(hmm, inputs, ids, w)
  assert abs(s["loss"] - np.log(4)) < 1e-9
  # Every base is equally likely, so the Bayes decision is arbitrary and its accuracy is near 1/4.
  assert abs(s["masked_accuracy"] - 0.25) < 0.05


def test_structured_generator_is_valid_and_informative():
  hmm = synthetic.structured_hmm()
  np.testing.assert_allclose(hmm.trans.sum(1), 1.0)
  np.testing.assert_allclose(hmm.start @ hmm.trans, hmm.start, atol=1e-10)
  rng = np.random.default_rng(1)
  ids = synthetic.sample(hmm, 40, 256, rng)
  w = (rng.random(ids.shape) < 0.15).astype(float)
  s = baselines.bayes_result(hmm, np.where(w > 0, tokens.MASK, ids), ids, w)
  assert 0.4 < s["masked_accuracy"] < 0.6
  assert s["loss"] < np.log(4) - 0.2


def test_sample_is_deterministic():
  hmm = synthetic.structured_hmm()
  a = synthetic.sample(hmm, 2, 50, np.random.default_rng(5))
  b = synthetic.sample(hmm, 2, 50, np.random.default_rng(5))
  assert np.array_equal(a, b)
