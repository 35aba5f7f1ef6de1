"""A pretrained encoder with a prediction head for labelled sequences (fine-tuning).

`SequenceModel` reads each sequence through one or more windows (token ids [S, W, L], each position counted once,
its weight 1 in `weights_SxWxL`), mean-pools the encoder's final normalised hidden states over the sequence's own
positions (padding excluded), and maps the pooled vector through dropout and a linear layer to the outputs: the
class logits (classification) or one value (regression, in standardised units). With `ModelConfig.lora_rank` > 0
the encoder carries low-rank adapters (Flax's `nnx.LoRA`).

Letters: S sequences, W windows per sequence, L window length, D d_model, K outputs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from dnajax.model.encoder import Encoder, ModelConfig


class SequenceModel(nnx.Module):
  """Encoder + mean pooling over each sequence's windows + dropout + linear head.

  `__call__(tokens int[S, W, L], weights float[S, W, L], dropout_key=None) -> float32[S, K]`."""

  def __init__(self, cfg: ModelConfig, num_outputs: int, head_dropout: float, rngs: nnx.Rngs):
    self.encoder = Encoder(cfg, rngs)
    self.head_dropout = head_dropout
    self.head = nnx.Param(nnx.initializers.normal(0.02)(rngs.params(), (cfg.d_model, num_outputs), jnp.float32),
                          out_sharding=("embed", None))
    self.head_bias = nnx.Param(jnp.zeros((num_outputs,), jnp.float32), out_sharding=(None,))

  def pooled(self, tokens_SxWxL: jax.Array, weights_SxWxL: jax.Array, dropout_key=None) -> jax.Array:
    """The mean of the final hidden states over each sequence's weighted positions, float32[S, D]."""
    S, W, L = tokens_SxWxL.shape
    h_RxLxD = self.encoder.encode(tokens_SxWxL.reshape(S * W, L).astype(jnp.int32), -1, dropout_key)
    w_SxWxL = weights_SxWxL.astype(jnp.float32)
    total_SxD = (h_RxLxD.astype(jnp.float32).reshape(S, W * L, -1) * w_SxWxL.reshape(S, W * L, 1)).sum(1)
    return total_SxD / jnp.maximum(w_SxWxL.sum((1, 2)), 1.0)[:, None]

  def __call__(self, tokens_SxWxL: jax.Array, weights_SxWxL: jax.Array, dropout_key=None) -> jax.Array:
    enc_key = head_key = None
    if dropout_key is not None:
      enc_key, head_key = jax.random.split(dropout_key)
    x_SxD = self.pooled(tokens_SxWxL, weights_SxWxL, enc_key)
    if head_key is not None and self.head_dropout > 0:
      keep = jax.random.bernoulli(head_key, 1.0 - self.head_dropout, x_SxD.shape)
      x_SxD = jnp.where(keep, x_SxD / (1.0 - self.head_dropout), 0.0)
    return x_SxD @ self.head[...] + self.head_bias[...]
