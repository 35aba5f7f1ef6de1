"""Every attention implementation against the plain einsum reference: outputs and q/k/v gradients."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dnajax.model import attention, native

needs_native = pytest.mark.skipif(not native.available(), reason="no C++ compiler for the fused CPU kernel")


def _inputs(B, T, N, H, lengths, seed=0):
  r = np.random.default_rng(seed)
  q, k, v = (jnp.asarray(r.standard_normal((B, T, N, H)), jnp.float32) for _ in range(3))
  mask = jnp.asarray(np.arange(T)[None, :] < np.asarray(lengths)[:, None])
  return q, k, v, mask


@pytest.mark.parametrize("impl", ["flash", "xla", "auto", pytest.param("fused", marks=needs_native)])
@pytest.mark.parametrize("shape,lengths,block", [((2, 200, 4, 8), (200, 163), 256),
                                                 ((3, 300, 2, 16), (300, 1, 0), 128),  # partial block; empty row
                                                 ((1, 512, 8, 32), (512,), 128)])
def test_matches_reference(impl, shape, lengths, block):
  q, k, v, mask = _inputs(*shape, lengths)
  weights = jnp.arange(shape[-1], dtype=jnp.float32)

  def loss(name):
    if name == "flash":
      return lambda q, k, v: (attention.flash_attention(q, k, v, mask, block) * weights).sum()
    return lambda q, k, v: (attention.attend(q, k, v, mask, name) * weights).sum()

  ref = attention.attend(q, k, v, mask, "einsum")
  out = attention.flash_attention(q, k, v, mask, block) if impl == "flash" else attention.attend(q, k, v, mask, impl)
  np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
  g_ref = jax.grad(loss("einsum"), argnums=(0, 1, 2))(q, k, v)
  g = jax.grad(loss(impl), argnums=(0, 1, 2))(q, k, v)
  for a, b in zip(g, g_ref):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5 * float(jnp.abs(b).max()))


def test_flash_memory_is_linear_in_length():
  """The forward keeps no T x T probabilities for the backward: residuals are O(T)."""
  q, k, v, mask = _inputs(1, 1024, 2, 16, (1024,))
  f = lambda q: attention.flash_attention(q, k, v, mask).sum()
  residual_bytes = sum(int(np.prod(a.shape)) * 4 for a in jax.tree.leaves(jax.vjp(f, q)[1]))
  assert residual_bytes < 1024 * 1024 * 4  # far below one 1024 x 1024 float32 matrix per head


@needs_native
def test_fused_keeps_probabilities_only_below_a_size_and_is_deterministic(monkeypatch):
  """Above FUSED_SAVED_PROBS_BYTES the forward keeps the output and two softmax statistics per query, not the
  T x S probabilities, and the backward recomputes them: the same gradients either way. Pairs run on several
  threads but each is computed by one, so results repeat exactly."""
  q, k, v, mask = _inputs(2, 256, 2, 16, (256, 100))
  f = lambda q: (attention.fused_attention(q, k, v, mask) ** 2).sum()

  def residual_bytes():
    return sum(int(np.prod(a.shape)) * a.dtype.itemsize for a in jax.tree.leaves(jax.vjp(f, q)[1]))

  kept = residual_bytes()
  g_kept = jax.jit(jax.grad(f))(q)
  monkeypatch.setattr(attention, "FUSED_SAVED_PROBS_BYTES", 0)
  assert residual_bytes() < 2 * 256 * 256 * 4 < kept  # below one head's 256 x 256 probabilities
  g = jax.jit(jax.grad(f))
  np.testing.assert_allclose(g(q), g_kept, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(g(q), g(q))


@needs_native
@pytest.mark.parametrize("shape,lengths", [((2, 37, 3, 16), (37, 20)), ((1, 130, 2, 32), (0,))])
def test_fused_applies_rope_inside(shape, lengths):
  """With rope_base the kernel rotates q and k itself (and its backward rotates their gradients back): the same
  outputs and gradients as rotating first and attending with einsum."""
  q, k, v, mask = _inputs(*shape, lengths)
  w = jnp.asarray(np.random.default_rng(3).standard_normal(shape), jnp.float32)
  loss = lambda impl: lambda q, k, v: (attention.attend(q, k, v, mask, impl, rope_base=500.0) * w).sum()
  np.testing.assert_allclose(attention.attend(q, k, v, mask, "fused", rope_base=500.0),
                             attention.attend(q, k, v, mask, "einsum", rope_base=500.0), rtol=1e-5, atol=1e-5)
  for a, b in zip(jax.grad(loss("fused"), argnums=(0, 1, 2))(q, k, v),
                  jax.grad(loss("einsum"), argnums=(0, 1, 2))(q, k, v)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5 * float(jnp.abs(b).max()))


@needs_native
def test_fused_in_bfloat16_and_under_vmap():
  q, k, v, mask = _inputs(2, 24, 2, 8, (24, 5))
  ref = attention.attend(q, k, v, mask, "einsum")
  got = attention.attend(*(a.astype(jnp.bfloat16) for a in (q, k, v)), mask, "fused")
  assert got.dtype == jnp.bfloat16
  np.testing.assert_allclose(got.astype(jnp.float32), ref, atol=0.05)
  batched = jax.vmap(lambda q: attention.attend(q, k, v, mask, "fused"))(jnp.stack([q, 2 * q]))
  np.testing.assert_allclose(batched[1], attention.attend(2 * q, k, v, mask, "einsum"), rtol=1e-5, atol=1e-5)


def test_auto_picks_fused_on_cpu_where_it_builds(monkeypatch):
  monkeypatch.setattr(native, "available", lambda: True)
  assert attention.resolve("auto", 128, jnp.float32) == "fused" == attention.resolve("auto", 512, jnp.bfloat16)
  assert attention.resolve("einsum", 128, jnp.float32) == "einsum"


def test_without_a_compiler_auto_keeps_the_xla_kernels_and_fused_says_why(tmp_path):
  """A machine without a working C++ compiler: `auto` falls back to einsum/flash, `fused` is refused in one line."""
  code = ("from dnajax.model import attention, native; import jax.numpy as jnp; import numpy as np\n"
          "from dnajax.errors import UserError\n"
          "print(native.available(), attention.resolve('auto', 128, jnp.float32))\n"
          "try:\n  attention.fused_attention(*(jnp.ones((1, 4, 1, 8)),) * 3, jnp.ones((1, 4), bool))\n"
          "except UserError as e:\n  print(e)\n")
  env = dict(os.environ, CXX=str(tmp_path / "no-such-compiler"), PATH=str(tmp_path), DNAJAX_CACHE_DIR=str(tmp_path))
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
  first, message = out.splitlines()
  assert first == "False einsum"
  assert message.startswith("model.attention=fused: the CPU kernel could not be built (no C++ compiler")
  assert not list(tmp_path.glob("*.so"))


@pytest.mark.parametrize("extensions, length", [(["avx2", "fma", "avx512f", "avx512bw"], 512), (["avx2", "fma"], 256),
                                                ([], 256)])
def test_auto_picks_flash_from_a_length_per_cpu(monkeypatch, extensions, length):
  """Where the fused kernel cannot be built. Measured (docs/verbs/bench.md): with AVX-512 einsum is faster at 256
  positions; without it the earlier threshold, 256, stays."""
  from dnajax import runtime

  monkeypatch.setattr(native, "available", lambda: False)
  monkeypatch.setattr(runtime, "cpu_description", lambda: {"cpu_model": "x", "isa_extensions": extensions})
  assert attention.cpu_flash_min_length() == length
  assert attention.resolve("auto", 256, jnp.float32) == ("einsum" if length == 512 else "flash")
  assert attention.resolve("auto", 512, jnp.float32) == "flash" and attention.resolve("xla", 512, jnp.float32) == "xla"
