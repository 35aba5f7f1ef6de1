"""Fully sharded data parallelism (ZeRO-3 style): parameters and optimizer state sharded over all devices along
their `embed` axis, the batch split over the same devices. The `small` model; a config change only."""

from dnajax.configs import small


def get_config():
  c = small.get_config()
  c.mesh.update(data=1, fsdp=-1, tensor=1)
  c.train.global_batch = 64
  return c
