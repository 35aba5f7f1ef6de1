import jax.numpy as jnp
import numpy as np
from Bio.Seq import Seq

from dnajax.data import tokens
from dnajax.evaluation import metrics
from dnajax.evaluation import strata as strata_lib


def _probs(ids, rng):
  p = rng.random(ids.shape + (4,)).astype(np.float32)
  return p / p.sum(-1, keepdims=True)


def test_reverse_strand_mapping_round_trip():
  rng = np.random.default_rng(0)
  ids = rng.integers(tokens.A, tokens.T + 1, (3, 10)).astype(np.uint8)
  ids[2, 7:] = tokens.PAD
  ids[0, 4] = tokens.MASK
  rc = strata_lib.reverse_complement_windows(ids)
  assert rc[0, 5] == tokens.MASK and (rc[2, 7:] == tokens.PAD).all()
  assert tokens.decode(rc[2, :7]) == str(Seq(tokens.decode(ids[2, :7])).reverse_complement())
  np.testing.assert_array_equal(strata_lib.reverse_complement_windows(rc), ids)
  # A "model" that is exactly strand-symmetric: predicting on the reverse strand and mapping back gives the same
  # distribution at every position, so agreement is 1 and the distance 0.
  p = _probs(ids, rng)
  p_rc = strata_lib.from_reverse_strand(p, ids)  # what the symmetric model predicts on rc (the same map both ways)
  back = strata_lib.from_reverse_strand(p_rc, rc)
  real = ids != tokens.PAD
  np.testing.assert_allclose(back[real], p[real])
  targets = np.where(real, ids, tokens.PAD)
  weights = real.astype(np.float32)
  s = strata_lib.strand_consistency(np.log(p), np.log(back), targets, weights)
  assert s["agreement"] == 1.0 and s["mean_tv_distance"] < 1e-6
  # An unrelated reverse-strand prediction agrees about a quarter of the time.
  big = rng.integers(tokens.A, tokens.T + 1, (200, 50)).astype(np.uint8)
  s = strata_lib.strand_consistency(np.log(_probs(big, rng)), np.log(_probs(big, rng)), big,
                                    np.ones(big.shape, np.float32))
  assert 0.2 < s["agreement"] < 0.3


def test_masked_sums_summary_and_strata():
  rng = np.random.default_rng(1)
  ids = rng.integers(tokens.A, tokens.T + 1, (4, 20)).astype(np.uint8)
  ids[0] = tokens.G  # one GC-rich window
  p = np.full(ids.shape + (4,), 0.1, np.float32)
  p[..., 1] = 0.7  # always predicts C (index 1)
  weights = np.ones(ids.shape, np.float32)
  weights[:, ::2] = 0
  codon = np.tile(np.array([0, 1, 2, 3], np.int8), 5)[None].repeat(4, 0)
  strata = {**strata_lib.gc_strata(ids), **strata_lib.codon_strata(codon)}
  r = metrics.summarize(metrics.masked_sums(np.log(p), ids, weights, strata))
  masked = weights > 0
  assert r["num_masked"] == 40
  assert np.isclose(r["masked_accuracy"], (ids[masked] == tokens.C).mean())
  assert r["per_base_accuracy"]["C"] == 1.0 and r["per_base_accuracy"]["A"] == 0.0
  assert np.isclose(r["loss"], np.where(ids[masked] == tokens.C, -np.log(0.7), -np.log(0.1)).mean())
  assert r["strata"]["gc_0.65-1.00"]["num_masked"] >= 10  # the all-G window
  assert sum(v["num_masked"] for k, v in r["strata"].items() if k.startswith("gc_")) == 40
  # Odd columns are masked: codon labels 1 and 3 only; positions 2 and non-coding (0) are never masked.
  assert set(r["strata"]) >= {"coding", "codon_position_1", "codon_position_3"}
  assert "codon_position_2" not in r["strata"] and "non_coding" not in r["strata"]


def test_one_kernel_on_host_and_device_and_over_nothing():
  """The same sums from NumPy (float64) and from JAX arrays (float32, as inside a jitted step); a result over zero
  masked bases has None values, never NaN or 0."""
  rng = np.random.default_rng(2)
  ids = rng.integers(tokens.A, tokens.T + 1, (3, 16)).astype(np.uint8)
  logp = np.log(_probs(ids, rng))
  w = (rng.random(ids.shape) < 0.5).astype(np.float32)
  sel = {"first_half": np.arange(16)[None].repeat(3, 0) < 8}
  host = metrics.summarize(metrics.masked_sums(logp, ids, w, sel))
  device = metrics.summarize(metrics.masked_sums(jnp.asarray(logp), jnp.asarray(ids), jnp.asarray(w),
                                                 {k: jnp.asarray(v) for k, v in sel.items()}))
  assert host["num_masked"] == device["num_masked"] == int(w.sum())
  np.testing.assert_allclose([host["loss"], host["masked_accuracy"], host["strata"]["first_half"]["loss"]],
                             [device["loss"], device["masked_accuracy"], device["strata"]["first_half"]["loss"]],
                             rtol=1e-6)
  empty = metrics.summarize(metrics.masked_sums(logp, ids, np.zeros_like(w)))
  assert empty == {"masked_accuracy": None, "loss": None, "perplexity": None, "num_masked": 0,
                   "per_base_accuracy": dict.fromkeys("ACGT"), "strata": {}}
