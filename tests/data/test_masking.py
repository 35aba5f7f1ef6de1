import numpy as np

from dnajax.data import masking, tokens


def test_training_mask_statistics():
  rng = np.random.default_rng(0)
  ids = rng.integers(tokens.A, tokens.T + 1, 200_000).astype(np.uint8)
  ids[:1000] = tokens.N
  ids[-1000:] = tokens.PAD
  inputs, targets, weights = masking.mask_for_training(ids, 0.15, rng)
  sel = weights > 0
  assert not sel[:1000].any() and not sel[-1000:].any()  # never N or padding
  assert abs(sel[1000:-1000].mean() - 0.15) < 0.005
  assert np.array_equal(targets, ids)
  masked = inputs[sel] == tokens.MASK
  changed = (inputs[sel] != ids[sel]) & ~masked
  same = inputs[sel] == ids[sel]
  assert abs(masked.mean() - 0.8) < 0.01
  # 10% random bases, a quarter of which happen to equal the original: 7.5% changed, 12.5% unchanged.
  assert abs(changed.mean() - 0.075) < 0.01 and abs(same.mean() - 0.125) < 0.01
  assert set(np.unique(inputs[sel][~masked])) <= set(tokens.BASE_IDS.tolist())
  assert np.array_equal(inputs[~sel], ids[~sel])


def test_eval_mask_is_all_mask_and_deterministic():
  ids = np.random.default_rng(1).integers(tokens.A, tokens.T + 1, 5000).astype(np.uint8)
  a = masking.mask_for_eval(ids, 0.3, np.random.default_rng(7))
  b = masking.mask_for_eval(ids, 0.3, np.random.default_rng(7))
  for x, y in zip(a, b):
    assert np.array_equal(x, y)
  inputs, _, w = a
  assert (inputs[w > 0] == tokens.MASK).all() and abs(w.mean() - 0.3) < 0.03
