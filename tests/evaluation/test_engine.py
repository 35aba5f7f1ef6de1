"""The engine's hidden states of whole sequences: overlapping windows, any layer, mean pooling without padding,
independent of batch size, chunking and the other sequences."""

import numpy as np
import pytest

from dnajax.data import tokens
from dnajax.errors import UserError
from dnajax.evaluation import engine as engine_lib
from dnajax.evaluation.engine import Engine


@pytest.fixture(scope="module")
def engine(tiny_run):
  return Engine.from_workdir(tiny_run[0])


def _seqs(lengths, seed=0):
  rng = np.random.default_rng(seed)
  return [rng.integers(tokens.A, tokens.N + 1, n).astype(np.uint8) for n in lengths]


def _by_hand(engine, seq, layer):
  """Each position's state from the window (starts half a window apart, the last one flush with the end) in which
  it sits farthest from an edge, the first such window on a tie."""
  L = engine.seq_len
  starts = list(range(0, max(len(seq) - L, 0) + 1, L // 2))
  if starts[-1] + L < len(seq):
    starts.append(len(seq) - L)
  windows = np.full((len(starts), L), tokens.PAD, np.uint8)
  for k, a in enumerate(starts):
    windows[k, :len(seq[a:a + L])] = seq[a:a + L]
  states = engine.hidden_states(windows, layer)
  out = np.zeros((len(seq), engine.model_config.d_model), np.float32)
  for p in range(len(seq)):
    edge = [min(p - a, min(L, len(seq) - a) - 1 - (p - a)) if a <= p < a + L else -1 for a in starts]
    k = int(np.argmax(edge))
    out[p] = states[k][p - starts[k]]
  return out


def test_shapes_layers_and_overlapping_windows(engine):
  D, L = engine.model_config.d_model, engine.seq_len
  seqs = _seqs([5, L, 200])  # 1 + 1 + 6 windows: one batch shape (8 rows) here and by hand
  for layer in (-1, 0, 1, 2):
    per_position = engine.sequence_hidden_states(seqs, layer)
    assert [x.shape for x in per_position] == [(len(s), D) for s in seqs]
    assert all(x.dtype == np.float32 and np.isfinite(x).all() for x in per_position)
    np.testing.assert_allclose(per_position[2], _by_hand(engine, seqs[2], layer), rtol=1e-5, atol=1e-5)
    mean = engine.mean_hidden_states(seqs, layer)
    assert mean.shape == (3, D) and mean.dtype == np.float32
    np.testing.assert_allclose(mean, [x.mean(axis=0) for x in per_position], rtol=1e-5, atol=1e-5)
  final, block2 = engine.sequence_hidden_states(seqs[:1], -1), engine.sequence_hidden_states(seqs[:1], 2)
  assert not np.allclose(final[0], block2[0])  # -1 is the normalised output, not the last block's
  for layer in (-2, engine.model_config.num_layers + 1):
    with pytest.raises(UserError, match=rf"--layer {layer}: this model has blocks 1\.\.2"):
      engine.mean_hidden_states(seqs, layer)


def test_padding_batch_size_and_chunking_do_not_change_results(engine, monkeypatch):
  short = _seqs([17, 40], seed=1)
  alone = engine.mean_hidden_states(short)
  mixed = _seqs([300, 17, 500, 40, 64], seed=2)
  mixed[1], mixed[3] = short
  together = engine.mean_hidden_states(mixed)
  np.testing.assert_allclose(together[[1, 3]], alone, rtol=1e-5, atol=1e-5)
  base = engine.batch_size
  try:
    engine.batch_size = 8
    small = engine.sequence_hidden_states(mixed)
    engine.batch_size = 64
    large = engine.sequence_hidden_states(mixed)
    monkeypatch.setattr(engine_lib, "CHUNK_FLOATS", 1)  # a chunk per batch of 8 windows: several chunks
    engine.batch_size = 8
    chunked, chunked_mean = engine.sequence_hidden_states(mixed), engine.mean_hidden_states(mixed)
  finally:
    engine.batch_size = base
  for a, b, c in zip(small, large, chunked):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(chunked_mean, together, rtol=1e-5, atol=1e-5)
  assert engine.mean_hidden_states([]).shape == (0, engine.model_config.d_model)
