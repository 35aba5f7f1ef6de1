"""Every attention implementation against the plain einsum reference: outputs and q/k/v gradients."""

import os
import platform
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


@needs_native
@pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 baseline build")
def test_fused_built_for_a_baseline_cpu_matches_the_reference(tmp_path):
  """The kernel built with -march=x86-64 (SSE2: 4-float vectors instead of this CPU's 8 or 16) gives the same
  outputs and gradients, RoPE and masks included."""
  code = ("import jax, jax.numpy as jnp, numpy as np\n"
          "from dnajax.model import attention, native\n"
          "r = np.random.default_rng(0)\n"
          "q, k, v = (jnp.asarray(r.standard_normal((2, 21, 3, 8)), jnp.float32) for _ in range(3))\n"
          "mask = jnp.asarray(np.arange(21)[None] < np.array([[21], [9]]))\n"
          "f = lambda impl: lambda q, k, v: (attention.attend(q, k, v, mask, impl, rope_base=100.0) ** 2).sum()\n"
          "a, b = (jax.value_and_grad(f(i), argnums=(0, 1, 2))(q, k, v) for i in ('fused', 'einsum'))\n"
          "print(native.available(), max(float(jnp.abs(x - y).max()) for x, y in zip(jax.tree.leaves(a), "
          "jax.tree.leaves(b))))\n")
  env = dict(os.environ, DNAJAX_NATIVE_MARCH="x86-64", DNAJAX_CACHE_DIR=str(tmp_path))
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
  built, err = out.split()
  assert built == "True" and float(err) < 1e-4
  assert len(list(tmp_path.glob("cpu_attention-*.so"))) == 1


def test_auto_picks_fused_on_cpu_where_it_builds(monkeypatch):
  monkeypatch.setattr(native, "available", lambda: True)
  assert attention.resolve("auto", 128, jnp.float32) == "fused" == attention.resolve("auto", 512, jnp.bfloat16)
  assert attention.resolve("einsum", 128, jnp.float32) == "einsum"


_PROBE = ("from dnajax.model import attention, native; import jax.numpy as jnp\n"
          "from dnajax.errors import UserError\n"
          "print(native.available(), attention.resolve('auto', 128, jnp.float32))\n"
          "ones = jnp.ones((1, 4, 1, 8))\n"
          "try:\n  print(float(attention.fused_attention(ones, ones, ones, jnp.ones((1, 4), bool)).sum()))\n"
          "except UserError as e:\n  print(e)\n")


def _probe(env_changes):
  env = dict(os.environ, **env_changes)
  if "CXX" not in env_changes:
    env.pop("CXX", None)
  done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, check=True)
  return done.stdout.splitlines(), done.stderr


@pytest.mark.parametrize("env, reason", [({"CXX": "no-such-compiler"}, "CXX=no-such-compiler is not an executable"),
                                         ({"PATH": ""}, "no C++ compiler found"),
                                         ({"DNAJAX_NATIVE": "0"}, "turned off by DNAJAX_NATIVE=0")])
def test_without_the_kernel_auto_keeps_the_xla_kernels_and_fused_says_why(tmp_path, env, reason):
  """No compiler, a bad CXX, or DNAJAX_NATIVE=0: `auto` falls back to einsum/flash (with a warning naming the
  reason), `fused` is refused in one line, nothing is written to the cache."""
  env = {**env, "DNAJAX_CACHE_DIR": str(tmp_path)}
  if env.get("PATH") == "":
    env["PATH"] = str(tmp_path)
  (first, message), stderr = _probe(env)
  assert first == "False einsum"
  assert message.startswith(f"model.attention=fused: the CPU kernel is unavailable ({reason}")
  assert message.endswith("use model.attention=auto")
  assert not list(tmp_path.iterdir())
  if "DNAJAX_NATIVE" not in env:
    assert "fused CPU attention kernel is unavailable" in stderr


@needs_native
def test_a_damaged_cached_kernel_is_rebuilt_not_loaded(tmp_path):
  """A truncated library in the cache (loading one can kill the process) no longer matches its .sha256 stamp, so
  it is rebuilt; so is one whose stamp is missing."""
  (first, value), _ = _probe({"DNAJAX_CACHE_DIR": str(tmp_path)})
  assert first == "True fused" and float(value) == 32.0
  lib = next(tmp_path.glob("cpu_attention-*.so"))
  good = lib.read_bytes()
  lib.write_bytes(good[:len(good) // 3])
  (first, value), _ = _probe({"DNAJAX_CACHE_DIR": str(tmp_path)})
  assert first == "True fused" and float(value) == 32.0 and len(lib.read_bytes()) > len(good) // 3
  lib.with_name(lib.name + ".sha256").unlink()
  (first, _), _ = _probe({"DNAJAX_CACHE_DIR": str(tmp_path)})
  assert first == "True fused" and lib.with_name(lib.name + ".sha256").exists()


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
