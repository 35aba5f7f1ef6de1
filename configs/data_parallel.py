"""Pure data parallelism: every device holds the whole model; the batch is split over all devices.
(The `small` model; same as the default mesh, spelled out.)"""

from dnajax.configs import small


def get_config():
  c = small.get_config()
  c.mesh.update(data=-1, fsdp=1, tensor=1)
  c.train.global_batch = 64
  return c
