"""Attention kernels, chosen by `ModelConfig.attention`.

Shapes: B batch, T query length, S key length, N heads, H head dim. `mask_BxS` is True where a key is real
(not padding).
  * `auto`  - `jax.nn.dot_product_attention` choosing itself (cuDNN's fused kernel where it applies).
  * `xla`   - `jax.nn.dot_product_attention` (XLA's implementation; works on every backend).
  * `cudnn` - `jax.nn.dot_product_attention(implementation="cudnn")`: cuDNN's fused kernel, GPU only.
  * `einsum`- the same maths written out; on CPU it compiles to faster code than `xla` at short lengths.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

IMPLEMENTATIONS = ("auto", "xla", "cudnn", "einsum")


def attend(q_BxTxNxH: jax.Array, k_BxSxNxH: jax.Array, v_BxSxNxH: jax.Array, mask_BxS: jax.Array,
           implementation: str = "xla") -> jax.Array:
  if implementation in ("auto", "xla", "cudnn"):
    mask = mask_BxS[:, None, None, :]
    return jax.nn.dot_product_attention(q_BxTxNxH, k_BxSxNxH, v_BxSxNxH, mask=mask,
                                        implementation=None if implementation == "auto" else implementation)
  if implementation == "einsum":
    # Heads-major layout first: XLA's CPU batched matmul is fastest with the batch dimensions leading.
    q_BxNxTxH, k_BxNxSxH, v_BxNxSxH = (jnp.swapaxes(a, 1, 2) for a in (q_BxTxNxH, k_BxSxNxH, v_BxSxNxH))
    scale = q_BxTxNxH.shape[-1] ** -0.5
    logits_BxNxTxS = jnp.einsum("bnth,bnsh->bnts", q_BxNxTxH * scale, k_BxNxSxH).astype(jnp.float32)
    logits_BxNxTxS = jnp.where(mask_BxS[:, None, None, :], logits_BxNxTxS, -1e9)
    probs_BxNxTxS = jax.nn.softmax(logits_BxNxTxS, axis=-1).astype(v_BxSxNxH.dtype)
    return jnp.swapaxes(jnp.einsum("bnts,bnsh->bnth", probs_BxNxTxS, v_BxNxSxH), 1, 2)
  raise ValueError(f"unknown attention implementation {implementation!r}; use one of {IMPLEMENTATIONS}")
