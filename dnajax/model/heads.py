"""A pretrained encoder with a prediction head for labelled sequences (fine-tuning).

`SequenceModel` reads each sequence through one or more windows (token ids [S, W, L], each position counted once,
its weight 1 in `weights_SxWxL`), mean-pools the encoder's final normalised hidden states over the sequence's own
positions (padding excluded), standardises the pooled vector, and maps it through dropout and a linear layer to the
outputs: the
class logits (classification) or one value (regression, in standardised units). With `num_features` F > 0 a vector of
F hand features per sequence (e.g. the expression features of a coding sequence, `evaluation.hand_features`) is
standardised the same way and enters the linear layer next to the pooled vector. With `ModelConfig.lora_rank` > 0
the encoder carries low-rank adapters (Flax's `nnx.LoRA`).

Letters: S sequences, W windows per sequence, L window length, D d_model, K outputs, F hand features.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from flax import nnx

from dnajax.model import encoder
from dnajax.model.encoder import Encoder, ModelConfig
from dnajax.sharding import tree_shardings


class SequenceModel(nnx.Module):
  """Encoder + pooling over each sequence + standardisation + dropout + linear head.

  Pooling: with `positions` 0, the mean of the final hidden states over the sequence's own positions (any length,
  any number of windows); with `positions` P > 0, the hidden states of positions 0..P-1 side by side (float[P * D],
  zeros after a sequence's end; one window per sequence, P <= L), so the head can weigh each position on its own -
  what aligned, fixed-length inputs (promoters around a TSS, splice sites) need, since mean pooling and relative
  (RoPE) positions cannot tell where in the sequence a motif sits.

  `__call__(tokens int[S, W, L], weights float[S, W, L], features float[S, F] or None, dropout_key=None) ->
  float32[S, K]`; `features` is required exactly when `num_features` > 0."""

  def __init__(self, cfg: ModelConfig, num_outputs: int, head_dropout: float, rngs: nnx.Rngs, positions: int = 0,
               num_features: int = 0):
    self.encoder = Encoder(cfg, rngs)
    self.head_dropout, self.positions, self.num_features = head_dropout, positions, num_features
    width = cfg.d_model * max(positions, 1)
    self.head = nnx.Param(nnx.initializers.normal(0.02)(rngs.params(), (width, num_outputs), jnp.float32),
                          out_sharding=("embed", None))
    self.head_bias = nnx.Param(jnp.zeros((num_outputs,), jnp.float32), out_sharding=(None,))
    # The pooled vector is standardised before the head: (x - pool_shift) * pool_scale, set from the training rows'
    # pooled features when fine-tuning starts (as a StandardScaler before a linear model), then trained with the
    # head. Without it a mean over ~100 positions varies little between sequences, and the head's weights, moving
    # by at most the learning rate per Adam step, cannot grow fast enough to use it (measured: training loss stuck).
    self.pool_shift = nnx.Param(jnp.zeros((width,), jnp.float32), out_sharding=("embed",))
    self.pool_scale = nnx.Param(jnp.ones((width,), jnp.float32), out_sharding=("embed",))
    if num_features:  # few columns: replicated; standardised as the pooled vector (feature_shift / feature_scale)
      F = num_features
      self.feature_head = nnx.Param(nnx.initializers.normal(0.02)(rngs.params(), (F, num_outputs), jnp.float32),
                                    out_sharding=(None, None))
      self.feature_shift = nnx.Param(jnp.zeros((F,), jnp.float32), out_sharding=(None,))
      self.feature_scale = nnx.Param(jnp.ones((F,), jnp.float32), out_sharding=(None,))

  def pooled(self, tokens_SxWxL: jax.Array, weights_SxWxL: jax.Array, dropout_key=None) -> jax.Array:
    """The pooled final hidden states, float32[S, D] (mean over each sequence's weighted positions) or float32[S,
    P * D] (positions 0..P-1 of the first window, zero where the weight is 0)."""
    S, W, L = tokens_SxWxL.shape
    w_SxWxL = weights_SxWxL.astype(jnp.float32)
    if self.positions:
      P = self.positions
      h_SxPxD = self.encoder.encode(tokens_SxWxL[:, 0, :].astype(jnp.int32), -1, dropout_key)[:, :P]
      return (h_SxPxD.astype(jnp.float32) * w_SxWxL[:, 0, :P, None]).reshape(S, -1)
    h_RxLxD = self.encoder.encode(tokens_SxWxL.reshape(S * W, L).astype(jnp.int32), -1, dropout_key)
    total_SxD = (h_RxLxD.astype(jnp.float32).reshape(S, W * L, -1) * w_SxWxL.reshape(S, W * L, 1)).sum(1)
    return total_SxD / jnp.maximum(w_SxWxL.sum((1, 2)), 1.0)[:, None]

  def __call__(self, tokens_SxWxL: jax.Array, weights_SxWxL: jax.Array, features_SxF: jax.Array | None = None,
               dropout_key=None) -> jax.Array:
    enc_key = head_key = None
    if dropout_key is not None:
      enc_key, head_key = jax.random.split(dropout_key)
    x_SxD = (self.pooled(tokens_SxWxL, weights_SxWxL, enc_key) - self.pool_shift[...]) * self.pool_scale[...]
    if head_key is not None and self.head_dropout > 0:
      keep = jax.random.bernoulli(head_key, 1.0 - self.head_dropout, x_SxD.shape)
      x_SxD = jnp.where(keep, x_SxD / (1.0 - self.head_dropout), 0.0)
    out_SxK = x_SxD @ self.head[...] + self.head_bias[...]
    if self.num_features:
      f_SxF = (features_SxF.astype(jnp.float32) - self.feature_shift[...]) * self.feature_scale[...]
      out_SxK = out_SxK + f_SxF @ self.feature_head[...]
    return out_SxK


def model_graph(cfg: ModelConfig, num_outputs: int, head_dropout: float = 0.0, positions: int = 0,
                num_features: int = 0):
  """(graphdef, logical PartitionSpecs of the parameters as a pure dict) of a `SequenceModel`, without allocating
  parameters (as `encoder.model_graph`)."""
  return encoder.graph_of(lambda: SequenceModel(cfg, num_outputs, head_dropout, nnx.Rngs(0), positions, num_features))


def init_params(cfg: ModelConfig, num_outputs: int, head_dropout: float, seed: int, positions: int = 0,
                num_features: int = 0) -> dict:
  """Freshly initialised `SequenceModel` parameters, a pure dict of float32 arrays: {"encoder": ..., "head": float32[D,
  K], "head_bias": float32[K]} (with `cfg.lora_rank` > 0 the encoder's blocks hold `lora_*` adapters; with
  `num_features` F > 0 also feature_head float32[F, K], feature_shift and feature_scale float32[F])."""
  model = SequenceModel(cfg, num_outputs, head_dropout, nnx.Rngs(seed), positions, num_features)
  return nnx.to_pure_dict(nnx.state(model, nnx.Param))


def sharded_abstract_params(cfg: ModelConfig, num_outputs: int, mesh, rules, positions: int = 0,
                            num_features: int = 0) -> dict:
  """The `SequenceModel` parameters as jax.ShapeDtypeStructs with their NamedShardings on `mesh` (adapters, which
  carry no logical axes, replicated)."""
  _, specs = model_graph(cfg, num_outputs, 0.0, positions, num_features)
  abstract = jax.eval_shape(functools.partial(init_params, cfg, num_outputs, 0.0, 0, positions, num_features))
  shardings = tree_shardings(specs, abstract, mesh, rules)
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
