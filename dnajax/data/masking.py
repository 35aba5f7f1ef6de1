"""Masking for the masked-nucleotide objective.

Training (`mask_for_training`): each maskable base (A/C/G/T; never N or padding) is selected with probability
`rate`; of the selected, 80% become MASK, 10% a random base from A/C/G/T, 10% stay. Evaluation and prediction
(`mask_for_eval`) replace every selected base with MASK, so a masked base is truly unobserved - the condition under
which the Bayes limit is the ceiling. Both return (inputs, targets, weights) with weight 1 exactly at the selected
positions. Randomness comes from the caller's Generator, so rows are reproducible from (seed, step, row).
"""

from __future__ import annotations

import numpy as np

from dnajax.data import tokens


def maskable(ids: np.ndarray) -> np.ndarray:
  """bool, same shape: True at A/C/G/T (never N, PAD or MASK)."""
  return (ids >= tokens.A) & (ids <= tokens.T)


def mask_for_training(ids_L: np.ndarray, rate: float, rng: np.random.Generator):
  """BERT's 80/10/10 masking (Devlin et al. 2019) of one window of token ids uint8[L]: each A/C/G/T selected with
  probability `rate`. Returns (inputs uint8[L], targets uint8[L] = ids, weights float32[L] 1 at the selected)."""
  u = rng.random((3,) + ids_L.shape)
  selected = maskable(ids_L) & (u[0] < rate)
  inputs = ids_L.copy()
  to_mask = selected & (u[1] < 0.8)
  to_random = selected & (u[1] >= 0.8) & (u[1] < 0.9)
  inputs[to_mask] = tokens.MASK
  random_bases = tokens.BASE_IDS[np.minimum((u[2] * 4).astype(np.int64), 3)]
  inputs[to_random] = random_bases[to_random]
  return inputs, ids_L.copy(), selected.astype(np.float32)


def mask_for_eval(ids_L: np.ndarray, rate: float, rng: np.random.Generator):
  """Every selected A/C/G/T replaced by MASK (the base is truly unobserved). Returns (inputs uint8[L], targets
  uint8[L], weights float32[L])."""
  selected = maskable(ids_L) & (rng.random(ids_L.shape) < rate)
  inputs = np.where(selected, np.uint8(tokens.MASK), ids_L).astype(np.uint8)
  return inputs, ids_L.copy(), selected.astype(np.float32)
