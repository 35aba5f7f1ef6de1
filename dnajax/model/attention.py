"""Attention kernels, chosen by `ModelConfig.attention`.

Shapes: B batch, T query length, S key length, N heads, H head dim. `mask_BxS` is True where a key is real
(not padding).
  * `auto`  - per backend: on CPU `fused` where its kernel builds (`native.available()`), else `flash` from
              `cpu_flash_min_length()` positions (512 on a CPU with AVX-512, 256 without) and `einsum` below;
              `cudnn` on GPU for bfloat16/float16; else `xla`.
  * `xla`   - `jax.nn.dot_product_attention` (XLA's implementation; works on every backend).
  * `cudnn` - `jax.nn.dot_product_attention(implementation="cudnn")`: cuDNN's fused kernel, GPU only.
  * `einsum`- the same maths written out (the reference the others are tested against).
  * `flash` - blockwise attention with an online softmax and its own backward pass (below): memory linear in
              the length; the fastest XLA-only choice on CPU from 256-512 positions.
  * `fused` - dnajax's C++ kernel for the CPU (`cpu_attention.cc`, FlashAttention's algorithm with a query block's
              logits kept in cache), built on first use with the host's compiler; CPU only, float32 inside.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from dnajax import runtime, sharding
from dnajax.errors import UserError
from dnajax.model import native

IMPLEMENTATIONS = ("auto", "xla", "cudnn", "einsum", "flash", "fused")


def cpu_flash_min_length() -> int:
  """The key length from which `auto` picks `flash` on the CPU: 512 where the CPU has AVX-512, 256 elsewhere.

  Measured forward+backward per layer (docs/verbs/bench.md): on a 2-core AMD EPYC with AVX-512, at B32 N4 T256
  H32, einsum 54 ms and flash 65-70 ms (configs/cpu.py trained at 15.7k vs 13.2k tokens/s), at B16 N8 T512 H32
  flash 164 ms and einsum 206 ms; on a 2-core AVX2 EPYC einsum led at 128 positions and flash at 512."""
  return 512 if "avx512f" in runtime.cpu_description()["isa_extensions"] else 256


def resolve(implementation: str, key_length: int, dtype) -> str:
  """The kernel `implementation` runs as for keys of `key_length` positions in `dtype` on JAX's default backend:
  `auto` resolved as the module docstring says; any other name unchanged."""
  if implementation != "auto":
    return implementation
  backend = jax.default_backend()
  if backend == "cpu":
    if native.available():
      return "fused"
    return "flash" if key_length >= cpu_flash_min_length() else "einsum"
  if backend == "gpu" and jnp.dtype(dtype) in (jnp.bfloat16, jnp.float16):
    return "cudnn"
  return "xla"


def rope_tables(length: int, head_dim: int, base: float) -> tuple[jax.Array, jax.Array]:
  """Rotary position embedding tables (Su et al. 2021, rotate-half form): cos and signed sin, float32
  [length, head_dim], such that rope(x)[t] = x[t] * cos[t] + roll(x[t], head_dim // 2) * sin[t]."""
  inv_freq = base ** (-jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim)
  angles_LxH2 = jnp.arange(length, dtype=jnp.float32)[:, None] * inv_freq[None, :]
  cos_LxH = jnp.concatenate([jnp.cos(angles_LxH2)] * 2, axis=-1)
  sin_LxH = jnp.concatenate([-jnp.sin(angles_LxH2), jnp.sin(angles_LxH2)], axis=-1)
  return cos_LxH, sin_LxH


def rope(x_BxLxNxH: jax.Array, base: float) -> jax.Array:
  """Rotary position embedding (rotate-half form) over the last axis of [B, L, N, H] (H even), any float dtype
  (rotated in float32, returned in the input's): x * cos + rotate_half(x) * sin, with rotate_half written as a
  roll and a sign folded into sin (slices and a concatenate ran 4x slower on CPU)."""
  L, H = x_BxLxNxH.shape[1], x_BxLxNxH.shape[-1]
  with jax.named_scope("rope"):
    cos_LxH, sin_LxH = rope_tables(L, H, base)
    x = x_BxLxNxH.astype(jnp.float32)
    return (x * cos_LxH[:, None, :] + jnp.roll(x, H // 2, axis=-1) * sin_LxH[:, None, :]).astype(x_BxLxNxH.dtype)


def attend(q_BxTxNxH: jax.Array, k_BxSxNxH: jax.Array, v_BxSxNxH: jax.Array, mask_BxS: jax.Array,
           implementation: str = "xla", rope_base: float | None = None) -> jax.Array:
  """Scaled dot-product attention (Vaswani et al. 2017) of queries [B, T, N, H] over keys and values [B, S, N, H]
  (any float dtype; the softmax runs in float32 where the implementation allows), keys masked where `mask_BxS`
  (bool [B, S]) is False; with `rope_base`, queries and keys are first rotated by `rope` (inside the kernel for
  `fused`). Returns [B, T, N, H] in the dtype of v. Raises ValueError for an unknown implementation (and `cudnn`
  off a GPU fails in JAX)."""
  implementation = resolve(implementation, k_BxSxNxH.shape[1], q_BxTxNxH.dtype)
  if implementation == "fused":
    return fused_attention(q_BxTxNxH, k_BxSxNxH, v_BxSxNxH, mask_BxS, rope_base)
  if rope_base is not None:
    q_BxTxNxH, k_BxSxNxH = rope(q_BxTxNxH, rope_base), rope(k_BxSxNxH, rope_base)
  if implementation == "flash":
    return flash_attention(q_BxTxNxH, k_BxSxNxH, v_BxSxNxH, mask_BxS)
  if implementation == "cudnn":  # cuDNN takes padding as sequence lengths (keys are real up to the first PAD)
    lengths = mask_BxS.sum(-1).astype(jnp.int32)
    return jax.nn.dot_product_attention(q_BxTxNxH, k_BxSxNxH, v_BxSxNxH, query_seq_lengths=lengths,
                                        key_value_seq_lengths=lengths, implementation="cudnn")
  if implementation == "xla":
    return jax.nn.dot_product_attention(q_BxTxNxH, k_BxSxNxH, v_BxSxNxH, mask=mask_BxS[:, None, None, :],
                                        implementation="xla")
  if implementation == "einsum":
    # Heads-major layout first: XLA's CPU batched matmul is fastest with the batch dimensions leading.
    q_BxNxTxH, k_BxNxSxH, v_BxNxSxH = (jnp.swapaxes(a, 1, 2) for a in (q_BxTxNxH, k_BxSxNxH, v_BxSxNxH))
    scale = q_BxTxNxH.shape[-1] ** -0.5
    logits_BxNxTxS = jnp.einsum("bnth,bnsh->bnts", q_BxNxTxH * scale, k_BxNxSxH).astype(jnp.float32)
    logits_BxNxTxS = jnp.where(mask_BxS[:, None, None, :], logits_BxNxTxS, -1e9)
    probs_BxNxTxS = jax.nn.softmax(logits_BxNxTxS, axis=-1).astype(v_BxSxNxH.dtype)
    return jnp.swapaxes(jnp.einsum("bnts,bnsh->bnth", probs_BxNxTxS, v_BxNxSxH), 1, 2)
  raise ValueError(f"unknown attention implementation {implementation!r}; use one of {IMPLEMENTATIONS}")


# ------------------------------------------------------------------------------------- blockwise ("flash")
# FlashAttention's algorithm in plain JAX for backends without a fused kernel (the CPU): keys are visited in blocks
# with an online softmax, so the forward keeps only the output and the softmax max/sum, never the T x S probabilities;
# the backward recomputes them block by block. (batch, head) rows are processed in pieces (lax.map) sized so one
# piece's T x block intermediates stay in cache. In the backward, the two products that contract over the query rows
# (dV = P^T dO, dK = dS^T Q) are computed as dV^T = dO^T P and dK^T = Q^T dS with the small transposes done first
# and fenced by an optimization barrier: XLA's CPU matmul is several times faster in that layout.
_PIECE_BYTES = 512 * 2**10


def _piece_rows(R: int, T: int, block: int) -> int:
  """Rows (batch x head pairs) per piece: the largest divisor of R whose P x T x block float32 tile fits
  _PIECE_BYTES (about a core's L2), so each piece's intermediates stay in cache."""
  best = 1
  for p in range(1, R + 1):
    if R % p == 0 and p * T * block * 4 <= _PIECE_BYTES:
      best = p
  return best


def _flash_fwd_piece(q_PxTxH, k_PxSxH, v_PxSxH, mask_PxS, block):
  S = k_PxSxH.shape[1]
  P, T, H = q_PxTxH.shape
  m = jnp.full((P, T), -jnp.inf, jnp.float32)
  denom = jnp.zeros((P, T), jnp.float32)
  acc = jnp.zeros((P, T, H), jnp.float32)
  for start in range(0, S, block):
    k, v = k_PxSxH[:, start:start + block], v_PxSxH[:, start:start + block]
    s = jnp.where(mask_PxS[:, None, start:start + block], jnp.einsum("pth,psh->pts", q_PxTxH, k), -1e9)
    m_new = jnp.maximum(m, s.max(-1))
    p = jnp.exp(s - m_new[..., None])
    corr = jnp.exp(m - m_new)
    denom = denom * corr + p.sum(-1)
    acc = acc * corr[..., None] + jnp.einsum("pts,psh->pth", p, v)
    m = m_new
  return acc / denom[..., None], jnp.stack([m, denom])  # max and sum, not m + log(sum): exact for fully masked rows


def _flash_bwd_piece(q, k, v, mask_PxS, out, stats, d_out, block):
  S = k.shape[1]
  delta_PxT = (d_out * out).sum(-1)
  # Small transposes first, fenced so XLA cannot fold them back into the big products.
  d_out_t, q_t = jax.lax.optimization_barrier((jnp.swapaxes(d_out, -1, -2), jnp.swapaxes(q, -1, -2)))
  dq = jnp.zeros_like(q)
  dk_t, dv_t = [], []
  for start in range(0, S, block):
    kb, vb = k[:, start:start + block], v[:, start:start + block]
    keep = mask_PxS[:, None, start:start + block]
    s = jnp.where(keep, jnp.einsum("pth,psh->pts", q, kb), -1e9)
    p = jnp.exp(s - stats[0][..., None]) / stats[1][..., None]
    dp = jnp.einsum("pth,psh->pts", d_out, vb)
    ds = jnp.where(keep, p * (dp - delta_PxT[..., None]), 0.0)  # masked logits are constants: no gradient
    dq = dq + jnp.einsum("pts,psh->pth", ds, kb)
    dv_t.append(jnp.einsum("pht,pts->phs", d_out_t, p))  # (dO^T P): [P, H, block]
    dk_t.append(jnp.einsum("pht,pts->phs", q_t, ds))
  dk = jnp.swapaxes(jnp.concatenate(dk_t, axis=-1), -1, -2)
  dv = jnp.swapaxes(jnp.concatenate(dv_t, axis=-1), -1, -2)
  return dq, dk, dv


def _pieces(x_RxTxH, P):
  R = x_RxTxH.shape[0]
  return x_RxTxH.reshape((R // P, P) + x_RxTxH.shape[1:])


@functools.partial(jax.custom_vjp, nondiff_argnums=(4,))
def _flash(q_RxTxH, k_RxSxH, v_RxSxH, mask_RxS, block):
  return _flash_forward(q_RxTxH, k_RxSxH, v_RxSxH, mask_RxS, block)[0]


def _flash_forward(q, k, v, mask, block):
  R, T, H = q.shape
  P = _piece_rows(R, T, min(block, k.shape[1]))
  out, stats = jax.lax.map(lambda a: _flash_fwd_piece(*a, block),
                         (_pieces(q, P), _pieces(k, P), _pieces(v, P), _pieces(mask, P)))
  out = out.reshape(R, T, H)
  stats = jnp.moveaxis(stats, 1, 0).reshape(2, R, T)  # [pieces, 2, P, T] -> [2, R, T]
  return out, (q, k, v, mask, out, stats)


def _flash_backward(block, res, d_out):
  q, k, v, mask, out, stats = res
  R, T, H = q.shape
  P = _piece_rows(R, T, min(block, k.shape[1]))
  dq, dk, dv = jax.lax.map(lambda a: _flash_bwd_piece(*a, block),
                           (_pieces(q, P), _pieces(k, P), _pieces(v, P), _pieces(mask, P), _pieces(out, P),
                            jnp.moveaxis(stats.reshape(2, R // P, P, T), 1, 0), _pieces(d_out, P)))
  return dq.reshape(q.shape), dk.reshape(k.shape), dv.reshape(v.shape), None


_flash.defvjp(lambda q, k, v, mask, block: _flash_forward(q, k, v, mask, block), _flash_backward)


def flash_attention(q_BxTxNxH, k_BxSxNxH, v_BxSxNxH, mask_BxS, block: int = 256):
  """Blockwise attention (float32 inside), same result as `attend(..., "xla")` to float32 rounding.

  Batch and heads are flattened into R = B x N independent rows, processed in cache-sized pieces."""
  dtype = q_BxTxNxH.dtype
  B, T, N, H = q_BxTxNxH.shape
  S = k_BxSxNxH.shape[1]
  scale = H ** -0.5

  def rows(x, L):  # [B, L, N, H] -> [B*N, L, H]
    return jnp.swapaxes(x, 1, 2).reshape(B * N, L, H).astype(jnp.float32)

  mask_RxS = jnp.broadcast_to(mask_BxS[:, None, :], (B, N, S)).reshape(B * N, S)
  out_RxTxH = _flash(rows(q_BxTxNxH * scale, T), rows(k_BxSxNxH, S), rows(v_BxSxNxH, S), mask_RxS, block)
  return jnp.swapaxes(out_RxTxH.reshape(B, N, T, H), 1, 2).astype(dtype)


# ------------------------------------------------------------------------------------- fused CPU kernel ("fused")
# The forward keeps the probabilities for the backward where they take at most this much per call (per device);
# above it the backward recomputes them from the softmax statistics (FlashAttention's choice: memory linear in T).
# Keeping them saves about a fifth of the kernel's time (measured at B32 T256 N4 H32: 42 -> 34 ms per layer).
FUSED_SAVED_PROBS_BYTES = 64 * 2**20

@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _fused(q, k, v, mask_u8, scale, rope_base):
  return _fused_forward(q, k, v, mask_u8, scale, rope_base)[0]


def _fused_tables(q, k, rope_base):
  if rope_base is None:
    return jnp.zeros((0,), jnp.float32), jnp.zeros((0,), jnp.float32)
  return rope_tables(max(q.shape[1], k.shape[1]), q.shape[-1], rope_base)


def _fused_forward(q, k, v, mask_u8, scale, rope_base):
  B, T, N, _ = q.shape
  S = k.shape[1]
  probs_shape = (B, N, T, S) if B * N * T * S * 4 <= FUSED_SAVED_PROBS_BYTES else (0,)
  out, stats, probs = jax.ffi.ffi_call(
      native.FORWARD, (jax.ShapeDtypeStruct(q.shape, jnp.float32), jax.ShapeDtypeStruct((B, N, T, 2), jnp.float32),
                       jax.ShapeDtypeStruct(probs_shape, jnp.float32)),
      vmap_method="sequential")(q, k, v, mask_u8, *_fused_tables(q, k, rope_base), scale=np.float32(scale))
  return out, (q, k, v, mask_u8, out, stats, probs)


def _fused_backward(scale, rope_base, res, d_out):
  q, k, v, mask_u8, out, stats, probs = res
  grads = jax.ffi.ffi_call(native.BACKWARD, tuple(jax.ShapeDtypeStruct(a.shape, jnp.float32) for a in (q, k, v)),
                           vmap_method="sequential")(q, k, v, mask_u8, *_fused_tables(q, k, rope_base), out, stats,
                                                     probs, d_out.astype(jnp.float32), scale=np.float32(scale))
  return (*grads, None)


_fused.defvjp(_fused_forward, _fused_backward)


def fused_attention(q_BxTxNxH, k_BxSxNxH, v_BxSxNxH, mask_BxS, rope_base: float | None = None):
  """Attention through dnajax's fused C++ kernel for the CPU (`dnajax/model/cpu_attention.cc`, built on first use
  by `dnajax.model.native`), with the rotary embedding of q and k (`rope`) applied inside where `rope_base` is
  given: float32 inside, same result as `attend(..., "einsum", rope_base)` to float32 rounding. Memory: the
  forward keeps the probabilities for the backward up to FUSED_SAVED_PROBS_BYTES, else two softmax statistics per
  query (linear in the length). Raises UserError where the kernel cannot be built (`native.unavailable_reason()`
  says why)."""
  if jax.default_backend() != "cpu":
    raise UserError(f"model.attention=fused runs on the CPU only (this is {jax.default_backend()}); "
                    "use model.attention=auto")
  if not native.available():
    raise UserError(f"model.attention=fused: the CPU kernel is unavailable ({native.unavailable_reason()}); "
                    "fix that, or use model.attention=auto")
  dtype = q_BxTxNxH.dtype
  q, k, v = (a.astype(jnp.float32) for a in (q_BxTxNxH, k_BxSxNxH, v_BxSxNxH))
  scale = q.shape[-1] ** -0.5
  rows = ("batch", None, "heads", None)  # independent per batch row and head: each device runs its own block
  kernel = sharding.per_shard(lambda q, k, v, m: _fused(q, k, v, m, scale, rope_base),
                              (rows, rows, rows, ("batch", None)), rows)
  return kernel(q, k, v, mask_BxS.astype(jnp.uint8)).astype(dtype)
