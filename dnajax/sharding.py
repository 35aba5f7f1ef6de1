"""Device mesh, logical-axis rules and host-rows -> global arrays.

The model names its parameter axes logically (`embed`, `mlp`, `heads`, `kv`, `vocab`, `length`); the config maps
those names to mesh axes (`data`, `fsdp`, `tensor`). Changing the parallelism is a config change. Batches are
sharded over (`data`, `fsdp`). `jax.jit` with `NamedSharding` is what pjit became; there is no pmap here.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from dnajax.errors import UserError

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")
DEFAULT_RULES = {"batch": BATCH_AXES, "embed": "fsdp", "mlp": "tensor", "heads": "tensor", "kv": None,
                 "vocab": None, "length": None}


def mesh_shape(sizes: Mapping[str, int], num_devices: int) -> tuple[int, ...]:
  """Resolve one `-1` entry to the remaining devices; the product must equal the device count."""
  shape = [int(sizes[a]) for a in MESH_AXES]
  if shape.count(-1) > 1:
    raise UserError(f"mesh: at most one of data/fsdp/tensor may be -1, got {dict(zip(MESH_AXES, shape))}")
  known = int(np.prod([s for s in shape if s != -1]))
  if -1 in shape:
    if known <= 0 or num_devices % known:
      raise UserError(f"mesh: {num_devices} devices cannot be split as {dict(zip(MESH_AXES, shape))}; "
                      "change --config.mesh.*")
    shape[shape.index(-1)] = num_devices // known
  if int(np.prod(shape)) != num_devices:
    raise UserError(f"mesh: {dict(zip(MESH_AXES, shape))} needs {int(np.prod(shape))} devices but "
                    f"{num_devices} are present; set one mesh axis to -1")
  return tuple(shape)


def make_mesh(sizes: Mapping[str, int], devices=None) -> Mesh:
  devices = jax.devices() if devices is None else devices
  shape = mesh_shape(sizes, len(devices))
  return Mesh(np.asarray(devices).reshape(shape), MESH_AXES,
              axis_types=(jax.sharding.AxisType.Auto,) * len(MESH_AXES))


def _axis_size(mesh: Mesh, axes) -> int:
  axes = (axes,) if isinstance(axes, str) else tuple(axes)
  return int(np.prod([mesh.shape[a] for a in axes]))


def logical_to_mesh(spec: P, shape: tuple[int, ...], mesh: Mesh, rules: Mapping[str, object]) -> NamedSharding:
  """A logical PartitionSpec -> NamedSharding; a dimension the mesh axes do not divide stays replicated."""
  out = []
  used: set[str] = set()
  for dim, name in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
    axes = rules.get(name) if name is not None else None
    if axes is not None:
      flat = (axes,) if isinstance(axes, str) else tuple(axes)
      if used & set(flat) or dim % _axis_size(mesh, flat):
        axes = None
      else:
        used |= set(flat)
    out.append(axes)
  return NamedSharding(mesh, P(*out))


def tree_shardings(logical_specs, abstract_tree, mesh: Mesh, rules: Mapping[str, object]):
  return jax.tree.map(lambda spec, x: logical_to_mesh(spec, x.shape, mesh, rules), logical_specs, abstract_tree,
                      is_leaf=lambda x: isinstance(x, P))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, ndim: int = 2) -> NamedSharding:
  return NamedSharding(mesh, P(BATCH_AXES, *([None] * (ndim - 1))))


def process_rows(global_batch: int) -> range:
  """This process's row ids of the global batch (contiguous, in process order)."""
  n, i = jax.process_count(), jax.process_index()
  if global_batch % n:
    raise UserError(f"train.global_batch={global_batch} is not divisible by the {n} processes")
  per = global_batch // n
  return range(i * per, (i + 1) * per)


def to_global(mesh: Mesh, local: Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
  """This process's NumPy rows -> global jax.Arrays sharded over the batch axes."""
  return {k: jax.make_array_from_process_local_data(batch_sharding(mesh, v.ndim), v) for k, v in local.items()}
