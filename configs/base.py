"""~100M parameters for one accelerator with 80 GB or more (an NVIDIA H100/H200/A100 80GB, a TPU v5p chip):
d_model 768, 12 heads, 11 layers, seq_len 1024, bfloat16 activations, batch 256.

train.grad_accum=auto: the batch is accumulated over the fewest micro-batches whose compiled step fits the device
(2 on an H200: 44 GiB at the same MFU as one micro-batch, whose 85.9 GiB step does not fit). Smaller devices pick
more micro-batches; set --config.train.grad_accum=N to fix the count.
"""

from dnajax.configs import default


def get_config():
  c = default.get_config()
  c.data.seq_len = 1024
  c.data.reverse_complement = True
  c.model.update(d_model=768, num_heads=12, num_layers=11, d_ff=3072, max_len=1024, dtype="bfloat16",
                 mlp="swiglu")
  c.opt.update(learning_rate=3e-4, warmup_steps=2000, weight_decay=0.1)
  c.train.update(steps=100_000, global_batch=256, eval_every=2000, log_every=100)
  with c.train.ignore_type():
    c.train.grad_accum = "auto"
  c.eval.update(max_windows=2048, batch=256)
  c.ckpt.update(every=2000, keep=3)
  return c
