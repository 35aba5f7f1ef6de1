"""FSDP plus tensor (Megatron-style) parallelism: attention heads and MLP hidden units split over `tensor`
devices (2 here), parameters sharded over the remaining `fsdp` devices, the batch over `fsdp`."""

from dnajax.configs import small


def get_config():
  c = small.get_config()
  c.mesh.update(data=1, fsdp=-1, tensor=2)
  c.train.global_batch = 64
  return c
