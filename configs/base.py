"""~100M parameters for accelerators: d_model 768, 12 heads, 11 layers, seq_len 1024, bfloat16 activations."""

from dnajax.configs import default


def get_config():
  c = default.get_config()
  c.data.seq_len = 1024
  c.data.reverse_complement = True
  c.model.update(d_model=768, num_heads=12, num_layers=11, d_ff=3072, max_len=1024, dtype="bfloat16",
                 mlp="swiglu")
  c.opt.update(learning_rate=3e-4, warmup_steps=2000, weight_decay=0.1)
  c.train.update(steps=100_000, global_batch=256, eval_every=2000, log_every=100)
  c.eval.update(max_windows=2048, batch=256)
  c.ckpt.update(every=2000, keep=3)
  return c
