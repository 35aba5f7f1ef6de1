"""~500M parameters for a pod of 8 or more accelerators with 80 GB or more each (one node of 8 NVIDIA H100/H200, a
TPU v5p-16 slice): d_model 1280, 20 heads, 19 layers, FSDP over every device, batch 512 of 1024 bases.

train.grad_accum=auto (from base.py): the fewest micro-batches whose compiled step fits the devices. Check a launch
on the target's device count without the hardware, e.g. 8 fake CPU devices planned at an 80 GB GPU's limit:
`XLA_FLAGS=--xla_force_host_platform_device_count=8 dnajax train --config large --workdir w --dry-run
--config.train.memory_limit_gib=59.7 --config.train.grad_accum=16` (XLA's CPU backend reports several times the
memory a GPU's compiled step needs: an upper bound).
"""

from dnajax.configs import base


def get_config():
  c = base.get_config()
  c.model.update(d_model=1280, num_heads=20, num_layers=19, d_ff=5120)
  c.opt.update(learning_rate=2e-4)
  c.train.global_batch = 512
  c.mesh.update(data=1, fsdp=-1, tensor=1)
  return c
