import jax
import numpy as np

from dnajax.data import masking, tokens

# Jitted as in the train step (the rates fixed; seed and step traced here, so one compile serves every test).
mask_for_training = jax.jit(masking.mask_for_training, static_argnums=(3, 4))


def test_training_mask_statistics():
  rng = np.random.default_rng(0)
  ids = rng.integers(tokens.A, tokens.T + 1, (4, 50_000)).astype(np.uint8)
  ids[:, :250] = tokens.N
  ids[:, -250:] = tokens.PAD
  batch = jax.device_get(mask_for_training(ids, 0, 7, 0.15, 0.0))
  inputs, targets, weights = batch["inputs"], batch["targets"], batch["weights"]
  assert inputs.dtype == targets.dtype == np.uint8 and weights.dtype == np.float32
  sel = weights > 0
  assert not sel[:, :250].any() and not sel[:, -250:].any()  # never N or padding
  assert abs(sel[:, 250:-250].mean() - 0.15) < 0.005
  assert np.array_equal(targets, ids)
  masked = inputs[sel] == tokens.MASK
  changed = (inputs[sel] != ids[sel]) & ~masked
  same = inputs[sel] == ids[sel]
  assert abs(masked.mean() - 0.8) < 0.01
  # 10% random bases, a quarter of which happen to equal the original: 7.5% changed, 12.5% unchanged.
  assert abs(changed.mean() - 0.075) < 0.01 and abs(same.mean() - 0.125) < 0.01
  assert set(np.unique(inputs[sel][~masked])) <= set(tokens.BASE_IDS.tolist())
  assert np.array_equal(inputs[~sel], ids[~sel])


def test_training_masks_depend_on_seed_step_and_row():
  ids = np.random.default_rng(1).integers(tokens.A, tokens.T + 1, (8, 256)).astype(np.uint8)
  a = jax.device_get(mask_for_training(ids, 3, 5, 0.3, 0.0))
  # Row b's mask is drawn from row b's key: other windows in the same rows get the same selection.
  other = np.random.default_rng(2).integers(tokens.A, tokens.T + 1, (8, 256)).astype(np.uint8)
  np.testing.assert_array_equal(jax.device_get(mask_for_training(other, 3, 5, 0.3, 0.0))["weights"], a["weights"])
  for changed in ((4, 5), (3, 6)):  # another seed or step: other masks
    assert not np.array_equal(jax.device_get(mask_for_training(ids, *changed, 0.3, 0.0))["weights"], a["weights"])
  assert not np.array_equal(a["weights"][0], a["weights"][1])  # rows differ


def test_mask_rate_range_varies_per_row():
  ids = np.random.default_rng(3).integers(tokens.A, tokens.T + 1, (64, 256)).astype(np.uint8)
  rates = jax.device_get(mask_for_training(ids, 0, 0, 0.1, 0.5))["weights"].mean(1)
  assert rates.min() < 0.2 and rates.max() > 0.35 and 0.2 < rates.mean() < 0.4


def test_eval_mask_is_all_mask_and_deterministic():
  ids = np.random.default_rng(1).integers(tokens.A, tokens.T + 1, 5000).astype(np.uint8)
  a = masking.mask_for_eval(ids, 0.3, np.random.default_rng(7))
  b = masking.mask_for_eval(ids, 0.3, np.random.default_rng(7))
  for x, y in zip(a, b):
    assert np.array_equal(x, y)
  inputs, _, w = a
  assert (inputs[w > 0] == tokens.MASK).all() and abs(w.mean() - 0.3) < 0.03
