"""A seconds-long run for tests: tiny model, short windows, a small synthetic corpus."""

from dnajax.configs import default


def get_config():
  c = default.get_config()
  c.data.synthetic_bases = 200_000
  c.data.synthetic_record_len = 5_000
  c.data.seq_len = 64
  c.model.update(d_model=32, num_heads=2, num_layers=2, d_ff=64)
  c.opt.warmup_steps = 5
  c.train.update(steps=20, global_batch=16, log_every=5, eval_every=10)
  c.eval.update(max_windows=32, batch=16)
  c.ckpt.update(every=10, keep=2, async_save=False)
  c.log.tensorboard = False
  return c
