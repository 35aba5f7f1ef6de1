"""The PyTorch prototype, reproduced: d_model 32, 4 heads, 2 layers, dropout 0.02, Adam lr 1e-3, mask rate 0.3,
80/20 split, seq_len 128, batch 64, on i.i.d. random DNA - where no model can beat 25% masked accuracy."""

from dnajax.configs import default


def get_config():
  c = default.get_config()
  c.data.sources = ("synthetic:iid",)
  c.data.update(seq_len=128, mask_rate=0.3, val_fraction=0.2)
  c.eval.mask_rate = 0.3
  c.model.update(d_model=32, num_heads=4, num_layers=2, d_ff=128, dropout=0.02, pos_encoding="learned",
                 max_len=128)
  c.opt.update(learning_rate=1e-3, warmup_steps=0, weight_decay=0.0, clip_norm=0.0, b2=0.999, end_lr_fraction=1.0)
  c.train.update(steps=1000, global_batch=64)
  return c
