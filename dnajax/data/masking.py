"""Masking for the masked-nucleotide objective.

Training (`mask_for_training`, JAX, run inside the jitted train step): each maskable base (A/C/G/T; never N or
padding) is selected with probability `rate`; of the selected, 80% become MASK, 10% a random base from A/C/G/T,
10% stay. Its randomness is `jax.random` from a key of (seed, step, row of the global batch), so a row's mask does
not depend on the mesh, the process count or a resume. Evaluation and prediction (`mask_for_eval`, NumPy, on the
host: evaluation masks are built once per validation set and shared with the host-side Bayes limit and baselines)
replace every selected base with MASK, so a masked base is truly unobserved - the condition under which the Bayes
limit is the ceiling. Both give (inputs, targets, weights) with weight 1 exactly at the selected positions.

Letters: B batch rows, L window length.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from dnajax import sharding
from dnajax.data import tokens

# The training masks' random stream: key(seed) folded with this tag, then the step, then the row. Dropout uses
# fold_in(key(seed), step) directly, so the two streams never meet (steps stay far below the tag).
MASK_STREAM = 0x6D61736B  # "mask"


def maskable(ids):
  """bool, same shape (NumPy or JAX array in, the same kind out): True at A/C/G/T (never N, PAD or MASK)."""
  return (ids >= tokens.A) & (ids <= tokens.T)


def mask_for_training(ids_BxL: jax.Array, seed: int, step, rate: float, rate_max: float = 0.0) -> dict:
  """BERT's 80/10/10 masking (Devlin et al. 2019) of the global batch's windows, on the device.

  Args:
    ids_BxL: uint8[B, L] token ids; row b is row b of the global batch (its mask depends on b, not on which device
      or process holds it).
    seed: the run's seed; step: the step (int or int32 scalar, traced inside the train step).
    rate: each A/C/G/T is selected with this probability; rate_max > rate: each row draws its own rate uniformly
      from [rate, rate_max].
  Returns {"inputs": uint8[B, L] masked ids, "targets": uint8[B, L] = ids, "weights": float32[B, L] 1 at the
  selected bases}. Row b's mask is a function of (seed, step, b, L) only.
  """
  ids_BxL = jnp.asarray(ids_BxL, jnp.uint8)
  B, L = ids_BxL.shape
  key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), MASK_STREAM), step)

  def row(b):
    k_rate, k_select, k_kind, k_base = jax.random.split(jax.random.fold_in(key, b), 4)
    r = jax.random.uniform(k_rate, minval=rate, maxval=rate_max) if rate_max > rate else rate
    return (jax.random.uniform(k_select, (L,)) < r, jax.random.uniform(k_kind, (L,)),
            jax.random.randint(k_base, (L,), tokens.A, tokens.T + 1).astype(jnp.uint8))

  rows_B = sharding.constrain(jnp.arange(B), ("batch",))  # in the train step: each device draws its own rows
  selected_BxL, kind_BxL, random_base_BxL = jax.vmap(row)(rows_B)
  selected_BxL = selected_BxL & maskable(ids_BxL)
  inputs_BxL = jnp.where(kind_BxL < 0.8, jnp.uint8(tokens.MASK), jnp.where(kind_BxL < 0.9, random_base_BxL, ids_BxL))
  return {"inputs": jnp.where(selected_BxL, inputs_BxL, ids_BxL), "targets": ids_BxL,
          "weights": selected_BxL.astype(jnp.float32)}


def mask_for_eval(ids_L: np.ndarray, rate: float, rng: np.random.Generator):
  """Every selected A/C/G/T replaced by MASK (the base is truly unobserved). Returns (inputs uint8[L], targets
  uint8[L], weights float32[L])."""
  selected = maskable(ids_L) & (rng.random(ids_L.shape) < rate)
  inputs = np.where(selected, np.uint8(tokens.MASK), ids_L).astype(np.uint8)
  return inputs, ids_L.copy(), selected.astype(np.float32)
