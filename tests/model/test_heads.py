import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from dnajax.data import tokens, windows
from dnajax.model.encoder import Encoder, ModelConfig
from dnajax.model.heads import SequenceModel

CFG = dict(d_model=32, num_heads=4, num_layers=2, d_ff=64)


def test_lora_adapters_start_as_the_pretrained_model_and_are_separate_params():
  ids = jnp.asarray(np.random.default_rng(0).integers(tokens.A, tokens.T + 1, (2, 20)))
  plain = Encoder(ModelConfig(**CFG), nnx.Rngs(0))
  lora = Encoder(ModelConfig(**CFG, lora_rank=4), nnx.Rngs(0))
  base = nnx.state(plain, nnx.Param)
  nnx.update(lora, base)  # the pretrained weights into the adapted model
  run = nnx.jit(lambda m, x: m(x))
  np.testing.assert_allclose(run(lora, ids), run(plain, ids), atol=1e-6)  # B = 0: no change yet
  adapters = nnx.state(lora, nnx.LoRAParam)
  assert {"lora_qkv", "lora_out", "lora_in", "lora_mlp_out"} <= set(adapters["layer_0"])
  assert adapters["layer_0"]["lora_qkv"]["lora_a"].shape == (32, 4)
  b = lora.layer_0.lora_mlp_out.lora_b
  b[...] = jax.random.normal(jax.random.key(1), b[...].shape)  # (not a constant: LayerNorm would remove it)
  assert not np.allclose(run(lora, ids), run(plain, ids), atol=1e-3)  # ...and the adapters do act


def test_pooled_head_counts_each_base_once_and_ignores_padding():
  rng = np.random.default_rng(1)
  seqs = [rng.integers(tokens.A, tokens.T + 1, n).astype(np.uint8) for n in (10, 50, 130)]
  ids, w = windows.sequence_windows(seqs, 32)
  assert ids.shape == (3, 8, 32) and w.shape == ids.shape
  assert [int(w[i].sum()) for i in range(3)] == [10, 50, 130]  # every base once, over overlapping windows
  model = SequenceModel(ModelConfig(**CFG), 3, 0.1, nnx.Rngs(0))
  run = nnx.jit(lambda m, i, w, key=None: m(i, w, dropout_key=key))
  out = run(model, jnp.asarray(ids), jnp.asarray(w))
  assert out.shape == (3, 3)
  alone = run(model, jnp.asarray(ids[:1, :1]), jnp.asarray(w[:1, :1]))  # the short one alone: fewer windows
  np.testing.assert_allclose(alone[0], out[0], atol=1e-5)
  keyed = run(model, jnp.asarray(ids), jnp.asarray(w), jax.random.key(0))  # dropout only with a key
  assert not np.allclose(keyed, out)


def test_position_wise_head_reads_each_position_and_zeros_after_the_end():
  rng = np.random.default_rng(2)
  seqs = [rng.integers(tokens.A, tokens.T + 1, n).astype(np.uint8) for n in (12, 9)]
  model = SequenceModel(ModelConfig(**CFG), 2, 0.0, nnx.Rngs(0), positions=12)
  assert model.head[...].shape == (12 * 32, 2)
  pooled = nnx.jit(lambda m, i, w: m.pooled(i, w))
  out = {}
  for L in (16, 32):  # the window length (padding after the sequence) does not change what the head sees
    ids, w = windows.sequence_windows(seqs, L)
    out[L] = np.asarray(pooled(model, jnp.asarray(ids), jnp.asarray(w)))
  assert out[16].shape == (2, 12 * 32)
  np.testing.assert_allclose(out[16], out[32], atol=1e-5)
  assert not out[16][1, 9 * 32:].any() and out[16][1, :9 * 32].any()  # the 9-base sequence: zeros after its end
