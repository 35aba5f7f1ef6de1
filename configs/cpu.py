"""The best model dnajax trains in <= 30 minutes on 2 CPU cores (measured: see the README's quality table).

d_model 128, 4 heads, 4 layers (~0.8M parameters); a sequence-length curriculum (128-base windows for the first 75%
of the steps, then 256: short windows run ~2.5x more steps per second, the longer ones teach the longer context);
peak learning rate 2e-3 with warm-up and cosine decay; each training window masked at a rate drawn from
[0.15, 0.30], so one model serves evaluation at either rate. Validation at 256 bases and mask rate 0.15.
(Measured: 128 -> 512 with 85% of 1,200 steps at 128 reached 96.9% of the Bayes limit at 512 bases in 23.5 min.)
`dnajax train --config configs/cpu.py --workdir runs/cpu [--data FILE ...]`
"""

from dnajax.configs import default


def get_config():
  c = default.get_config()
  c.data.update(seq_len=256, curriculum="128:0.75", mask_rate=0.15, mask_rate_max=0.30, synthetic_bases=10_000_000)
  c.model.update(d_model=128, num_heads=4, num_layers=4, d_ff=512, max_len=512)
  c.opt.update(learning_rate=2e-3, warmup_steps=100, end_lr_fraction=0.02)
  c.train.update(steps=1600, global_batch=32, log_every=20, eval_every=800)
  c.eval.update(max_windows=1024, batch=64)
  c.ckpt.every = 800
  return c
