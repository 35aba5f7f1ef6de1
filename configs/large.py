"""~500M parameters for accelerator pods: d_model 1280, 20 heads, 19 layers, FSDP over the hosts' devices."""

from dnajax.configs import base


def get_config():
  c = base.get_config()
  c.model.update(d_model=1280, num_heads=20, num_layers=19, d_ff=5120)
  c.opt.update(learning_rate=2e-4)
  c.train.global_batch = 512
  c.mesh.update(data=1, fsdp=-1, tensor=1)
  return c
