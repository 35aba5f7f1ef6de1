"""The masked-nucleotide encoder (Flax NNX): token embedding, RoPE or learned positions, pre-LayerNorm blocks,
final norm, projection to the vocabulary.

The model knows nothing of configs, files or devices. Parameters carry logical axis names (`vocab`, `embed`,
`heads`, `kv`, `mlp`, `length`); `dnajax.sharding` maps them to mesh axes. Parameters are float32; activations use
`ModelConfig.dtype`. Dropout draws from the key passed to `__call__`, so the step function stays pure.

Letters: B batch, L length, D d_model, N heads, H head dim, F d_ff, V vocabulary.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from dnajax.data import tokens
from dnajax.errors import UserError
from dnajax.model import attention
from dnajax.sharding import constrain, tree_shardings

nnx.use_eager_sharding(False)  # parameters get their sharding from jit out_shardings, never eagerly


# Rematerialisation policies: what a block keeps for the backward pass. `full` keeps only its input (least memory,
# ~1/3 more compute); `dots` keeps matmul outputs without batch dimensions and recomputes the elementwise work.
REMAT = {"none": None, "full": jax.checkpoint_policies.nothing_saveable,
         "dots": jax.checkpoint_policies.dots_with_no_batch_dims_saveable}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """The encoder's hyperparameters (frozen). Raises ValueError for inconsistent sizes or unknown choices."""
  vocab_size: int = tokens.VOCAB_SIZE
  d_model: int = 128
  num_heads: int = 4
  num_layers: int = 4
  d_ff: int = 512
  dropout: float = 0.0
  max_len: int = 512  # only bounds learned positions; RoPE works at any length
  pos_encoding: str = "rope"  # rope | learned
  mlp: str = "gelu"  # gelu | swiglu
  tie_embeddings: bool = False
  dtype: str = "float32"  # float32 | bfloat16 (activations; parameters stay float32)
  attention: str = "xla"  # see dnajax.attention.IMPLEMENTATIONS
  rope_base: float = 10000.0
  remat: str = "none"  # none | full | dots: recompute each block's activations in the backward pass (see REMAT)
  # Low-rank adapters (LoRA, Hu et al. 2021) on the attention and MLP projections, for fine-tuning: rank 0 (the
  # default, and every pretraining run) creates none; their output is scaled by lora_alpha / lora_rank.
  lora_rank: int = 0
  lora_alpha: float = 16.0

  def __post_init__(self):
    if self.d_model % self.num_heads:
      raise ValueError(f"model.d_model={self.d_model} is not divisible by model.num_heads={self.num_heads}")
    if self.pos_encoding not in ("rope", "learned"):
      raise ValueError(f"model.pos_encoding={self.pos_encoding!r}: use rope or learned")
    if self.mlp not in ("gelu", "swiglu"):
      raise ValueError(f"model.mlp={self.mlp!r}: use gelu or swiglu")
    if self.dtype not in ("float32", "bfloat16"):
      raise ValueError(f"model.dtype={self.dtype!r}: use float32 or bfloat16")
    if self.attention not in attention.IMPLEMENTATIONS:
      raise ValueError(f"model.attention={self.attention!r}: use one of {', '.join(attention.IMPLEMENTATIONS)}")
    if self.remat not in REMAT:
      raise ValueError(f"model.remat={self.remat!r}: use one of {', '.join(REMAT)}")
    if self.pos_encoding == "rope" and (self.d_model // self.num_heads) % 2:
      raise ValueError("RoPE needs an even head dimension (d_model / num_heads)")
    if self.lora_rank < 0:
      raise ValueError(f"lora_rank={self.lora_rank}: must be 0 (no adapters) or positive")

  @property
  def head_dim(self) -> int:
    """d_model / num_heads."""
    return self.d_model // self.num_heads


def _param(rngs: nnx.Rngs, init, shape, names) -> nnx.Param:
  return nnx.Param(init(rngs.params(), shape, jnp.float32), out_sharding=names)


_dense_init = nnx.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")


def _dropout(x, rate: float, key):
  if key is None or rate <= 0.0:
    return x
  with jax.named_scope("dropout"):
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0).astype(x.dtype)


class LayerNorm(nnx.Module):
  """Layer normalisation (Ba et al. 2016) over the last axis, computed in float32, eps 1e-6; scale and bias
  float32[D] on the `embed` logical axis. Returns the input's dtype."""
  def __init__(self, dim: int):
    self.scale = nnx.Param(jnp.ones((dim,), jnp.float32), out_sharding=("embed",))
    self.bias = nnx.Param(jnp.zeros((dim,), jnp.float32), out_sharding=("embed",))

  def __call__(self, x_BxLxD: jax.Array) -> jax.Array:
    with jax.named_scope("layer_norm"):
      return _layer_norm(x_BxLxD, self.scale[...], self.bias[...])


@jax.custom_vjp
def _layer_norm(x, scale, bias):
  return _layer_norm_forward(x, scale, bias)[0]


def _row_mean(x):
  """Mean over the last axis as a matrix-vector product: XLA's CPU backend runs it far faster than a reduction
  over a short minor axis (measured: LayerNorm forward+backward on [4096, 64] 0.59 -> 0.34 ms)."""
  return (x @ jnp.full((x.shape[-1],), 1.0 / x.shape[-1], x.dtype))[..., None]


def _layer_norm_forward(x_in, scale, bias):
  x = x_in.astype(jnp.float32)
  mean = _row_mean(x)
  xc = x - mean
  rstd = jax.lax.rsqrt(_row_mean(xc * xc) + 1e-6)
  xhat = xc * rstd
  return (xhat * scale + bias).astype(x_in.dtype), (xhat, rstd, scale)


def _layer_norm_backward(res, dy):
  xhat, rstd, scale = res
  dtype, dy = dy.dtype, dy.astype(jnp.float32)  # the output's dtype is the input's
  g = dy * scale
  dx = rstd * (g - _row_mean(g) - xhat * _row_mean(g * xhat))
  dy_RxD, xhat_RxD = dy.reshape(-1, dy.shape[-1]), xhat.reshape(-1, dy.shape[-1])
  return dx.astype(dtype), (dy_RxD * xhat_RxD).sum(0), dy_RxD.sum(0)


_layer_norm.defvjp(_layer_norm_forward, _layer_norm_backward)


@jax.custom_vjp
def gelu(x: jax.Array) -> jax.Array:
  """GELU, tanh approximation (Hendrycks & Gimpel 2016; `jax.nn.gelu(approximate=True)`, PyTorch's
  `gelu(approximate="tanh")`), with its derivative written out for the backward: autodiff's chain through tanh ran
  1.8x slower on XLA's CPU backend ([8192, 512] forward+backward: 3.8 -> 2.1 ms). Any float dtype, same shape."""
  return jax.nn.gelu(x, approximate=True)


def _gelu_forward(x):
  return gelu(x), x


def _gelu_backward(x, dy):
  c = np.float32(np.sqrt(2 / np.pi))
  x32 = x.astype(jnp.float32)
  t = jnp.tanh(c * (x32 + 0.044715 * x32 * x32 * x32))
  slope = 0.5 * (1 + t) + 0.5 * x32 * (1 - t * t) * c * (1 + 3 * 0.044715 * x32 * x32)
  return ((dy.astype(jnp.float32) * slope).astype(dy.dtype),)


gelu.defvjp(_gelu_forward, _gelu_backward)


class Block(nnx.Module):
  """One pre-LayerNorm transformer block: x + attention(LN(x)), then x + MLP(LN(x)) (GELU or SwiGLU, Shazeer
  2020). `__call__(x float[B, L, D], mask bool[B, L], key) -> float[B, L, D]`; dropout only with a key."""
  def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
    self.cfg = cfg
    D, N, H, F = cfg.d_model, cfg.num_heads, cfg.head_dim, cfg.d_ff
    self.ln_attn = LayerNorm(D)
    self.qkv = _param(rngs, _dense_init, (D, 3, N, H), ("embed", None, "heads", "kv"))
    self.out = _param(rngs, nnx.initializers.variance_scaling(1.0, "fan_in", "truncated_normal", in_axis=(0, 1),
                                                              out_axis=2), (N, H, D), ("heads", "kv", "embed"))
    self.ln_mlp = LayerNorm(D)
    n_in = 2 if cfg.mlp == "swiglu" else 1
    self.w_in = _param(rngs, nnx.initializers.variance_scaling(1.0, "fan_in", "truncated_normal", in_axis=0,
                                                               out_axis=(1, 2)), (D, n_in, F), ("embed", None, "mlp"))
    self.w_out = _param(rngs, _dense_init, (F, D), ("mlp", "embed"))
    if cfg.lora_rank:  # Flax's LoRA modules (A random, B zero: the adapted model starts as the pretrained one)
      r = cfg.lora_rank
      self.lora_qkv = nnx.LoRA(D, r, 3 * N * H, rngs=rngs)
      self.lora_out = nnx.LoRA(N * H, r, D, rngs=rngs)
      self.lora_in = nnx.LoRA(D, r, n_in * F, rngs=rngs)
      self.lora_mlp_out = nnx.LoRA(F, r, D, rngs=rngs)

  def _adapt(self, name: str, x_RxI: jax.Array) -> jax.Array | int:
    """The scaled LoRA update of projection `name` for rows x, or 0 without adapters."""
    if not self.cfg.lora_rank:
      return 0
    return getattr(self, name)(x_RxI) * (self.cfg.lora_alpha / self.cfg.lora_rank)

  def __call__(self, x_BxLxD, mask_BxL, key):
    cfg, dt = self.cfg, x_BxLxD.dtype
    B, L, D = x_BxLxD.shape
    keys = jax.random.split(key, 3) if key is not None else (None,) * 3
    # Projections are 2-D matmuls over [B*L] rows, one per weight slice: then the weight gradients are plain
    # matmuls too. With (B, L) rows or a stacked output axis, XLA's CPU backend transposes the activations for
    # each weight gradient (measured: the MLP's forward+backward took 1.55x as long).
    h_RxD = self.ln_attn(x_BxLxD).reshape(B * L, D)
    w_Dx3xNxH = self.qkv[...].astype(dt)
    N, H = cfg.num_heads, cfg.head_dim
    lora_Rx3xNxH = self._adapt("lora_qkv", h_RxD)
    if cfg.lora_rank:
      lora_Rx3xNxH = lora_Rx3xNxH.reshape(B * L, 3, N, H).astype(dt)
    q_BxLxNxH, k_BxLxNxH, v_BxLxNxH = (
        constrain((jnp.einsum("rd,dnh->rnh", h_RxD, w_Dx3xNxH[:, i])
                   + (lora_Rx3xNxH[:, i] if cfg.lora_rank else 0)).reshape(B, L, N, H),
                  ("batch", "length", "heads", None))
        for i in range(3))
    with jax.named_scope("attention"):  # named scopes label the ops in profiles (docs/verbs/bench.md)
      a_BxLxNxH = attention.attend(q_BxLxNxH, k_BxLxNxH, v_BxLxNxH, mask_BxL, cfg.attention,
                                   rope_base=cfg.rope_base if cfg.pos_encoding == "rope" else None)
    a_RxNxH = a_BxLxNxH.reshape(B * L, N, H)
    a_RxD = jnp.einsum("rnh,nhd->rd", a_RxNxH, self.out[...].astype(dt)) + self._adapt("lora_out",
                                                                                         a_RxNxH.reshape(B * L, N * H))
    x_BxLxD = x_BxLxD + _dropout(a_RxD.reshape(B, L, D), cfg.dropout, keys[0])
    h_RxD = self.ln_mlp(x_BxLxD).reshape(B * L, D)
    w_DxKxF = self.w_in[...].astype(dt)
    lora_in = self._adapt("lora_in", h_RxD)
    pre = [h_RxD @ w_DxKxF[:, k] + (lora_in[:, k * cfg.d_ff:(k + 1) * cfg.d_ff] if cfg.lora_rank else 0)
           for k in range(w_DxKxF.shape[1])]
    with jax.named_scope("activation"):
      u_RxF = jax.nn.silu(pre[0]) * pre[1] if cfg.mlp == "swiglu" else gelu(pre[0])
    u_BxLxF = _dropout(constrain(u_RxF.reshape(B, L, cfg.d_ff), ("batch", "length", "mlp")), cfg.dropout, keys[1])
    u_RxF = u_BxLxF.reshape(B * L, cfg.d_ff)
    m_RxD = jnp.einsum("rf,fd->rd", u_RxF, self.w_out[...].astype(dt)) + self._adapt("lora_mlp_out", u_RxF)
    return constrain(x_BxLxD + _dropout(m_RxD.reshape(B, L, D), cfg.dropout, keys[2]), ("batch", "length", None))


class Encoder(nnx.Module):
  """tokens int[B, L] -> logits float32[B, L, V]. Padding (PAD) keys are masked out of attention."""

  def __init__(self, cfg: ModelConfig, rngs: nnx.Rngs):
    self.cfg = cfg
    self.embed = _param(rngs, nnx.initializers.normal(1.0), (cfg.vocab_size, cfg.d_model), ("vocab", "embed"))
    if cfg.pos_encoding == "learned":
      self.pos = _param(rngs, nnx.initializers.normal(0.02), (cfg.max_len, cfg.d_model), ("length", "embed"))
    for i in range(cfg.num_layers):
      setattr(self, f"layer_{i}", Block(cfg, rngs))
    self.ln_final = LayerNorm(cfg.d_model)
    if not cfg.tie_embeddings:
      self.head = _param(rngs, _dense_init, (cfg.d_model, cfg.vocab_size), ("embed", "vocab"))
    self.head_bias = nnx.Param(jnp.zeros((cfg.vocab_size,), jnp.float32), out_sharding=("vocab",))

  def encode(self, tokens_BxL: jax.Array, layer: int = -1, dropout_key: jax.Array | None = None) -> jax.Array:
    """Hidden states float[B, L, D] (`dtype`) after `layer` blocks: 0 is the token (+ learned position)
    embedding, k in 1..num_layers the output of block k, -1 the final normalised output (what the head reads).

    Raises ValueError for a layer outside -1..num_layers."""
    cfg = self.cfg
    if not -1 <= layer <= cfg.num_layers:
      raise ValueError(f"layer {layer}: the model has blocks 1..{cfg.num_layers} (0: embedding, -1: final output)")
    dt = jnp.dtype(cfg.dtype)
    L = tokens_BxL.shape[1]
    mask_BxL = tokens_BxL != tokens.PAD
    # One-hot matmul rather than a gather: the vocabulary is tiny, and a matmul shards cleanly over any mesh.
    x_BxLxD = jnp.einsum("blv,vd->bld", jax.nn.one_hot(tokens_BxL, cfg.vocab_size, dtype=jnp.float32),
                         self.embed[...])
    if cfg.pos_encoding == "learned":
      x_BxLxD = x_BxLxD + self.pos[...][:L][None]
    x_BxLxD = constrain(x_BxLxD.astype(dt), ("batch", "length", None))

    def run_block(block, x, mask, key):
      return block(x, mask, key)

    if cfg.remat != "none":
      run_block = nnx.remat(run_block, policy=REMAT[cfg.remat])
    for i in range(cfg.num_layers if layer < 0 else layer):
      key = None if dropout_key is None else jax.random.fold_in(dropout_key, i)
      x_BxLxD = run_block(getattr(self, f"layer_{i}"), x_BxLxD, mask_BxL, key)
    return self.ln_final(x_BxLxD) if layer < 0 else x_BxLxD

  def __call__(self, tokens_BxL: jax.Array, dropout_key: jax.Array | None = None) -> jax.Array:
    """Logits float32[B, L, V] for token ids int[B, L]; dropout only when `dropout_key` is given."""
    cfg = self.cfg
    h_BxLxD = self.encode(tokens_BxL, -1, dropout_key)
    w_DxV = self.embed[...].T if cfg.tie_embeddings else self.head[...]
    logits_BxLxV = jnp.einsum("bld,dv->blv", h_BxLxD, w_DxV.astype(h_BxLxD.dtype)).astype(jnp.float32)
    return logits_BxLxV + self.head_bias[...]


def count_params(params) -> int:
  """Number of scalars in a parameter tree (arrays or ShapeDtypeStructs)."""
  return int(sum(x.size for x in jax.tree.leaves(params)))


def config_from(mapping) -> ModelConfig:
  """A ModelConfig from the `model` group of a config (a mapping); UserError naming the bad field."""
  try:
    return ModelConfig(**dict(mapping))
  except (ValueError, TypeError) as e:
    raise UserError(f"config: {e}; fix --config.model.*") from None


def init_params(cfg: ModelConfig, seed: int) -> dict:
  """Freshly initialised parameters as a pure dict of float32 arrays (what checkpoints hold under "params")."""
  return nnx.to_pure_dict(nnx.state(Encoder(cfg, nnx.Rngs(seed)), nnx.Param))


def graph_of(make):
  """(graphdef, logical PartitionSpecs of the parameters as a pure dict) of the module `make()` builds, without
  allocating parameters; the graphdef and a parameter dict give the module back with `nnx.merge`."""
  abstract = nnx.eval_shape(make)
  graphdef, params = nnx.split(abstract, nnx.Param)
  return graphdef, nnx.to_pure_dict(nnx.get_partition_spec(params))


def model_graph(cfg: ModelConfig):
  """`graph_of` the encoder of `cfg`."""
  return graph_of(lambda: Encoder(cfg, nnx.Rngs(0)))


def sharded_abstract_params(cfg: ModelConfig, mesh, rules) -> dict:
  """The parameters as jax.ShapeDtypeStructs carrying their NamedShardings on `mesh` (logical axes mapped by
  `rules`): the target a checkpoint is restored into, or the out_shardings of an initialisation."""
  _, specs = model_graph(cfg)
  abstract = jax.eval_shape(functools.partial(init_params, cfg, 0))
  shardings = tree_shardings(specs, abstract, mesh, rules)
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
