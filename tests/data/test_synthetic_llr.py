"""The exact substitution log-likelihood ratio under a synthetic HMM: the forward algorithm against enumeration of
hidden paths, and against the posterior predictive with the substituted position unobserved."""

import itertools

import numpy as np

from dnajax.data import synthetic, tokens


def _tiny_hmm():
  trans = np.array([[0.8, 0.2], [0.3, 0.7]])
  emit = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.2, 0.6]])
  return synthetic.HMM(start=synthetic._stationary(trans), trans=trans, emit=emit)


def _brute_force_log_likelihood(hmm, ids):
  """log P(ids) by summing over every hidden path (positions that are not A/C/G/T contribute 1)."""
  total = 0.0
  for path in itertools.product(range(len(hmm.start)), repeat=len(ids)):
    p = hmm.start[path[0]] * np.prod([hmm.trans[a, b] for a, b in zip(path, path[1:])])
    p *= np.prod([hmm.emit[s, x - tokens.A] if tokens.A <= x <= tokens.T else 1.0 for s, x in zip(path, ids)])
    total += p
  return np.log(total)


def test_log_likelihood_matches_enumeration_with_masked_and_n_positions():
  hmm = _tiny_hmm()
  ids = synthetic.sample(hmm, 4, 7, np.random.default_rng(0))
  ids[1, 2], ids[2, 0], ids[3, 6] = tokens.MASK, tokens.N, tokens.MASK
  got = synthetic.log_likelihood(hmm, ids)
  want = [_brute_force_log_likelihood(hmm, row) for row in ids]
  np.testing.assert_allclose(got, want, rtol=1e-12)


def test_log_likelihood_of_every_sequence_sums_to_one():
  hmm = _tiny_hmm()
  ids = np.array(list(itertools.product(tokens.BASE_IDS, repeat=4)), np.uint8)
  assert abs(np.exp(synthetic.log_likelihood(hmm, ids)).sum() - 1.0) < 1e-12


def test_substitution_llr_matches_enumeration_and_posterior_predictive():
  hmm = _tiny_hmm()
  rng = np.random.default_rng(1)
  ids = synthetic.sample(hmm, 6, 6, rng)
  pos = rng.integers(0, 6, 6)
  alt = tokens.BASE_IDS[(ids[np.arange(6), pos] - tokens.A + rng.integers(1, 4, 6)) % 4]
  llr = synthetic.substitution_llr(hmm, ids, pos, alt)
  for b in range(6):
    alt_row = ids[b].copy()
    alt_row[pos[b]] = alt[b]
    want = _brute_force_log_likelihood(hmm, alt_row) - _brute_force_log_likelihood(hmm, ids[b])
    assert abs(llr[b] - want) < 1e-10
  observed = np.ones(ids.shape, bool)
  observed[np.arange(6), pos] = False
  post = synthetic.posterior_predictive(hmm, ids, observed)[np.arange(6), pos]
  via_post = np.log(post[np.arange(6), alt - tokens.A]) - np.log(post[np.arange(6), ids[np.arange(6), pos] - tokens.A])
  np.testing.assert_allclose(llr, via_post, rtol=1e-9, atol=1e-12)


def test_substitution_llr_on_long_structured_windows_is_finite_and_agrees():
  hmm = synthetic.structured_hmm()
  rng = np.random.default_rng(2)
  ids = synthetic.sample(hmm, 16, 1000, rng)
  pos = rng.integers(0, 1000, 16)
  alt = tokens.BASE_IDS[(ids[np.arange(16), pos] - tokens.A + rng.integers(1, 4, 16)) % 4]
  llr = synthetic.substitution_llr(hmm, ids, pos, alt)
  assert np.isfinite(synthetic.log_likelihood(hmm, ids)).all()
  observed = np.ones(ids.shape, bool)
  observed[np.arange(16), pos] = False
  post = synthetic.posterior_predictive(hmm, ids, observed)[np.arange(16), pos]
  rows = np.arange(16)
  via_post = np.log(post[rows, alt - tokens.A]) - np.log(post[rows, ids[rows, pos] - tokens.A])
  np.testing.assert_allclose(llr, via_post, rtol=1e-7, atol=1e-9)
  assert np.isnan(synthetic.substitution_llr(hmm, np.full((1, 5), tokens.N, np.uint8), [2], [tokens.A])).all()


def test_substitution_to_the_reference_base_is_zero():
  hmm = synthetic.structured_hmm()
  ids = synthetic.sample(hmm, 3, 50, np.random.default_rng(4))
  np.testing.assert_array_equal(synthetic.substitution_llr(hmm, ids, [0, 25, 49], ids[[0, 1, 2], [0, 25, 49]]), 0.0)
