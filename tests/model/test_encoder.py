import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from dnajax.data import tokens
from dnajax.model.encoder import Encoder, ModelConfig, model_graph
from dnajax.training import steps


def _model(**kw):
  cfg = ModelConfig(**{"d_model": 32, "num_heads": 4, "num_layers": 2, "d_ff": 64, **kw})
  return Encoder(cfg, nnx.Rngs(0))


@pytest.mark.parametrize("kw", [{}, {"pos_encoding": "learned", "max_len": 64}, {"mlp": "swiglu"},
                                {"tie_embeddings": True}, {"attention": "einsum"}, {"dtype": "bfloat16"}])
def test_shapes_and_dtypes(kw):
  logits = _model(**kw)(jnp.full((3, 40), tokens.A, jnp.int32))
  assert logits.shape == (3, 40, tokens.VOCAB_SIZE) and logits.dtype == jnp.float32
  assert jnp.isfinite(logits).all()


def test_padding_does_not_change_real_positions():
  m = _model()
  ids = np.random.default_rng(0).integers(tokens.A, tokens.T + 1, (2, 30))
  padded = np.concatenate([ids, np.full((2, 10), tokens.PAD)], axis=1)
  np.testing.assert_allclose(m(jnp.asarray(ids))[:, :30], m(jnp.asarray(padded))[:, :30], atol=2e-5)


def test_attention_implementations_agree():
  ids = jnp.asarray(np.random.default_rng(1).integers(tokens.A, tokens.MASK + 5, (2, 24)))
  a, b = _model(attention="xla")(ids), _model(attention="einsum")(ids)
  np.testing.assert_allclose(a, b, atol=2e-5)


def test_logical_axis_names_on_parameters():
  _, specs = model_graph(ModelConfig(d_model=32, num_heads=4, num_layers=1, d_ff=64))
  assert tuple(specs["embed"]) == ("vocab", "embed")
  assert tuple(specs["layer_0"]["qkv"]) == ("embed", None, "heads", "kv")
  assert tuple(specs["layer_0"]["w_out"]) == ("mlp", "embed")


def test_bad_model_config():
  with pytest.raises(ValueError, match="divisible"):
    ModelConfig(d_model=30, num_heads=4)


def test_loss_ignores_unmasked_positions():
  """Changing the target at a weight-0 position changes neither the loss nor the gradients."""
  m = _model()
  graphdef, params = nnx.split(m, nnx.Param)
  params = nnx.to_pure_dict(params)
  rng = np.random.default_rng(2)
  ids = rng.integers(tokens.A, tokens.T + 1, (2, 16)).astype(np.int32)
  weights = np.zeros((2, 16), np.float32)
  weights[:, ::4] = 1
  other = ids.copy()
  other[weights == 0] = tokens.A + (other[weights == 0] - tokens.A + 1) % 4

  def loss(targets):
    batch = {"inputs": jnp.asarray(ids), "targets": jnp.asarray(targets), "weights": jnp.asarray(weights)}
    objective = lambda p: steps.mlm_cross_entropy(p, batch, None, graphdef=graphdef, denom=8.0)[0]
    return jax.value_and_grad(objective)(params)

  (l1, g1), (l2, g2) = loss(ids), loss(other)
  assert float(l1) == float(l2)
  for x, y in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
    np.testing.assert_array_equal(x, y)
  # ...while a masked target does matter.
  third = ids.copy()
  third[0, 0] = tokens.A + (third[0, 0] - tokens.A + 1) % 4
  assert float(loss(third)[0]) != float(l1)


@pytest.mark.parametrize("remat", ["full", "dots"])
def test_remat_gives_the_same_loss_and_gradients(remat):
  ids = jnp.asarray(np.random.default_rng(3).integers(tokens.A, tokens.T + 1, (2, 24)))

  def loss_and_grad(m):
    graphdef, params = nnx.split(m, nnx.Param)
    f = lambda p: nnx.merge(graphdef, p)(ids, jax.random.key(0)).sum()
    return jax.value_and_grad(f)(nnx.to_pure_dict(params))

  (l1, g1), (l2, g2) = loss_and_grad(_model(dropout=0.1)), loss_and_grad(_model(dropout=0.1, remat=remat))
  np.testing.assert_allclose(l1, l2, rtol=1e-6)
  for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_rope_matches_complex_rotation_and_is_relative():
  from dnajax.model.attention import rope
  x = jax.random.normal(jax.random.key(0), (1, 12, 2, 8))
  # Reference: pairs (x_j, x_{j+H/2}) as complex numbers rotated by position * base^(-2j/H).
  H = 8
  theta = 10000.0 ** (-np.arange(0, H, 2) / H)
  z = np.asarray(x[..., :H // 2]) + 1j * np.asarray(x[..., H // 2:])
  z = z * np.exp(1j * np.arange(12)[None, :, None, None] * theta)
  np.testing.assert_allclose(rope(x, 10000.0), np.concatenate([z.real, z.imag], -1), atol=1e-5)
  # q.k after rotation depends only on the offset between positions.
  q, k = jax.random.normal(jax.random.key(1), (2, 8))
  rq = rope(jnp.broadcast_to(q, (1, 12, 1, 8)), 10000.0)[0, :, 0]
  rk = rope(jnp.broadcast_to(k, (1, 12, 1, 8)), 10000.0)[0, :, 0]
  np.testing.assert_allclose(rq[3] @ rk[1], rq[10] @ rk[8], rtol=1e-4)


def test_hidden_states_of_any_layer():
  """encode(layer): 0 is the token embedding, k the output of block k, -1 the final norm the head reads."""
  m = _model(num_layers=2)
  ids = jnp.asarray(np.random.default_rng(3).integers(tokens.A, tokens.T + 1, (2, 12)))
  np.testing.assert_allclose(m.encode(ids, 0), m.embed[...][ids], atol=1e-6)
  h1, h2, final = m.encode(ids, 1), m.encode(ids, 2), m.encode(ids, -1)
  assert h1.shape == h2.shape == final.shape == (2, 12, 32) and not np.allclose(h1, h2)
  np.testing.assert_allclose(final, m.ln_final(h2), atol=1e-6)
  np.testing.assert_allclose(m(ids), final @ m.head[...] + m.head_bias[...], atol=1e-5)
  with pytest.raises(ValueError, match="layer 3"):
    m.encode(ids, 3)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_layer_norm_matches_the_textbook_formula_and_its_gradients(dtype):
  """The LayerNorm's own backward (means as matrix-vector products) against autodiff of the plain formula."""
  from dnajax.model.encoder import _layer_norm
  r = np.random.default_rng(0)
  x = jnp.asarray(r.standard_normal((3, 5, 48)) * 3 + 7, dtype)
  scale, bias = (jnp.asarray(r.standard_normal(48), jnp.float32) for _ in range(2))
  w = jnp.asarray(r.standard_normal((3, 5, 48)), jnp.float32)

  def plain(x, scale, bias):
    x32 = x.astype(jnp.float32)
    mean = x32.mean(-1, keepdims=True)
    var = jnp.square(x32 - mean).mean(-1, keepdims=True)
    return ((x32 - mean) * jax.lax.rsqrt(var + 1e-6) * scale + bias).astype(x.dtype)

  tol = 1e-5 if dtype == jnp.float32 else 2e-2
  got, want = _layer_norm(x, scale, bias), plain(x, scale, bias)
  assert got.dtype == dtype
  np.testing.assert_allclose(got.astype(jnp.float32), want.astype(jnp.float32), rtol=tol, atol=tol)
  loss = lambda f: lambda *a: (f(*a).astype(jnp.float32) * w).sum()
  for g, g_ref in zip(jax.grad(loss(_layer_norm), argnums=(0, 1, 2))(x, scale, bias),
                      jax.grad(loss(plain), argnums=(0, 1, 2))(x, scale, bias)):
    assert g.dtype == g_ref.dtype
    np.testing.assert_allclose(np.asarray(g, np.float32), np.asarray(g_ref, np.float32), rtol=tol,
                               atol=tol * float(jnp.abs(g_ref.astype(jnp.float32)).max()))


def test_gelu_gradient_matches_autodiff():
  """GELU's (tanh) written-out backward pass against autodiff of the same forward."""
  from dnajax.model.encoder import gelu
  r = np.random.default_rng(1)
  x = jnp.asarray(r.standard_normal((2, 9, 3, 8)) * 2, jnp.float32)
  w = jnp.asarray(r.standard_normal(x.shape), jnp.float32)
  g = jax.grad(lambda x: (gelu(x) * w).sum())(x)
  np.testing.assert_allclose(g, jax.grad(lambda x: (jax.nn.gelu(x, approximate=True) * w).sum())(x), rtol=1e-4,
                             atol=1e-5)
