"""~5M parameters: d_model 256, 8 heads, 6 layers, d_ff 1024, seq_len 512 (the size performance is measured at)."""

from dnajax.configs import default


def get_config():
  c = default.get_config()
  c.data.seq_len = 512
  c.model.update(d_model=256, num_heads=8, num_layers=6, d_ff=1024, max_len=512)
  c.opt.update(learning_rate=1e-3, warmup_steps=500)
  c.train.update(steps=20_000, global_batch=16, eval_every=1000, log_every=50)
  c.ckpt.every = 1000
  return c
