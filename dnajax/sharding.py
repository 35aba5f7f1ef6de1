"""Device mesh, logical-axis rules and host-rows -> global arrays.

The model names its parameter axes logically (`embed`, `mlp`, `heads`, `kv`, `vocab`, `length`); the config maps
those names to mesh axes (`data`, `fsdp`, `tensor`). Changing the parallelism is a config change. Batches are
sharded over (`data`, `fsdp`). `jax.jit` with `NamedSharding` is what pjit became; there is no pmap here.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from dnajax import runtime  # noqa: F401  (the CPU host set-up runs before any device is used)
from dnajax.errors import UserError

MESH_AXES = ("data", "fsdp", "tensor")
# Logical axis -> mesh axes. Parameters use embed/mlp/heads/kv/vocab/length; activations use batch/length and
# mlp/heads (the residual stream's feature axis is never sharded).
DEFAULT_RULES = {"batch": ("data", "fsdp"), "embed": ("fsdp",), "mlp": ("tensor",), "heads": ("tensor",), "kv": None,
                 "vocab": None, "length": None}
_ACTIVE: list = []  # (mesh, rules) while a step is traced; see `activation_sharding`


def rules_from_config(rules_cfg: Mapping[str, str]) -> dict[str, tuple[str, ...] | None]:
  """`{"embed": "fsdp", "batch": "data,fsdp", "kv": ""}` -> logical name -> mesh axes (None: replicated)."""
  out: dict[str, tuple[str, ...] | None] = {}
  for name, value in rules_cfg.items():
    axes = tuple(a.strip() for a in str(value or "").split(",") if a.strip())
    bad = [a for a in axes if a not in MESH_AXES]
    if bad:
      raise UserError(f"mesh.rules.{name}={value!r}: unknown mesh axis {bad[0]!r}; use {', '.join(MESH_AXES)}")
    out[name] = axes or None
  return out


def mesh_shape(sizes: Mapping[str, int], num_devices: int) -> tuple[int, ...]:
  """Resolve one `-1` entry to the remaining devices; the product must equal the device count."""
  shape = [int(sizes[a]) for a in MESH_AXES]
  if shape.count(-1) > 1 or any(s == 0 or s < -1 for s in shape):
    raise UserError(f"mesh: sizes must be positive with at most one -1, got {dict(zip(MESH_AXES, shape))}")
  known = int(np.prod([s for s in shape if s != -1]))
  if -1 in shape:
    if num_devices % known:
      raise UserError(f"mesh: {num_devices} devices cannot be split as {dict(zip(MESH_AXES, shape))}; "
                      "change --config.mesh.*")
    shape[shape.index(-1)] = num_devices // known
  if int(np.prod(shape)) != num_devices:
    raise UserError(f"mesh: {dict(zip(MESH_AXES, shape))} needs {int(np.prod(shape))} devices but "
                    f"{num_devices} are present; set one mesh axis to -1")
  return tuple(shape)


def make_mesh(mesh_cfg, devices=None) -> Mesh:
  """The device mesh. `mesh.{data,fsdp,tensor}` are the sizes within one slice/host group; `mesh.dcn_*` the
  sizes across slices or nodes (data-centre network), multiplied in. A -1 takes the remaining devices."""
  devices = jax.devices() if devices is None else list(devices)
  dcn = tuple(int(mesh_cfg.get(f"dcn_{a}", 1)) for a in MESH_AXES)
  n_dcn = int(np.prod(dcn))
  if n_dcn < 1 or len(devices) % n_dcn:
    raise UserError(f"mesh: dcn sizes {dict(zip(MESH_AXES, dcn))} do not divide the {len(devices)} devices")
  ici = mesh_shape(mesh_cfg, len(devices) // n_dcn)
  if n_dcn > 1:
    from jax.experimental import mesh_utils
    grid = mesh_utils.create_hybrid_device_mesh(ici, dcn, devices,
                                                process_is_granule=devices[0].platform != "tpu")
  elif len(devices) > 1 and devices[0].platform != "cpu":
    from jax.experimental import mesh_utils
    grid = mesh_utils.create_device_mesh(ici, devices)  # topology-aware order on TPU/GPU
  else:
    grid = np.asarray(devices).reshape(ici)
  return Mesh(grid, MESH_AXES, axis_types=(jax.sharding.AxisType.Auto,) * len(MESH_AXES))


def axis_size(mesh: Mesh, axes) -> int:
  """Number of devices along mesh axes (one name, several, or None for 1)."""
  if not axes:
    return 1
  axes = (axes,) if isinstance(axes, str) else tuple(axes)
  return int(np.prod([mesh.shape[a] for a in axes]))


def logical_to_mesh(spec: P, shape: tuple[int, ...], mesh: Mesh, rules: Mapping[str, object],
                    where: str = "") -> NamedSharding:
  """A logical PartitionSpec -> NamedSharding. A dimension its mesh axes do not divide is an error when `where`
  names a parameter, and stays replicated otherwise (activations)."""
  out = []
  used: set[str] = set()
  for dim, name in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
    axes = rules.get(name) if name is not None else None
    if axes:
      flat = (axes,) if isinstance(axes, str) else tuple(axes)
      flat = tuple(a for a in flat if a not in used and mesh.shape[a] > 1)
      if flat and dim % axis_size(mesh, flat):
        if where:
          raise UserError(f"{where}: its {name} dimension ({dim}) is not divisible by mesh axes "
                          f"{'x'.join(flat)}={axis_size(mesh, flat)}; change --config.mesh.* or the model size")
        flat = ()
      used |= set(flat)
      axes = (flat if len(flat) > 1 else flat[0]) if flat else None
    out.append(axes)
  return NamedSharding(mesh, P(*out))


def tree_shardings(logical_specs, abstract_tree, mesh: Mesh, rules: Mapping[str, object]):
  """NamedShardings for a parameter tree from its logical PartitionSpecs; UserError for a dimension its mesh
  axes do not divide."""
  def one(path, spec, x):
    return logical_to_mesh(spec, x.shape, mesh, rules, where="parameter " + jax.tree_util.keystr(path))
  return jax.tree_util.tree_map_with_path(one, logical_specs, abstract_tree, is_leaf=lambda x: isinstance(x, P))


@contextlib.contextmanager
def activation_sharding(mesh: Mesh, rules: Mapping[str, object]):
  """While active, `constrain` pins activations to the mesh by their logical names (used around tracing)."""
  _ACTIVE.append((mesh, rules))
  try:
    yield
  finally:
    _ACTIVE.pop()


def traced_with_rules(fn, mesh: Mesh, rules: Mapping[str, object]):
  """`fn` with `activation_sharding(mesh, rules)` active while it runs (i.e. while jit traces it)."""
  @functools.wraps(fn)
  def wrapped(*args, **kwargs):
    with activation_sharding(mesh, rules):
      return fn(*args, **kwargs)
  return wrapped


def constrain(x: jax.Array, names: tuple[str | None, ...]) -> jax.Array:
  """Sharding constraint by logical names; a no-op outside `activation_sharding` (e.g. eager use)."""
  if not _ACTIVE:
    return x
  mesh, rules = _ACTIVE[-1]
  return jax.lax.with_sharding_constraint(x, logical_to_mesh(P(*names), x.shape, mesh, rules))


def per_shard(fn, in_names: Sequence[tuple[str | None, ...]], out_names: tuple[str | None, ...]):
  """`fn` run on each device's block of its arguments (`jax.shard_map`) while `activation_sharding` is active and
  its mesh has more than one device; `fn` itself otherwise. Arguments and the result are split by their logical
  names (as `constrain`); `fn` must be correct on any such block (e.g. a kernel that is independent per batch row
  and head, given names that shard nothing else). For custom kernels (XLA FFI calls), which XLA would otherwise
  run on gathered, replicated operands."""
  if not _ACTIVE or _ACTIVE[-1][0].size == 1:
    return fn
  mesh, rules = _ACTIVE[-1]

  def specs(names_list, args):
    return tuple(logical_to_mesh(P(*names), a.shape, mesh, rules).spec for names, a in zip(names_list, args))

  def run(*args):
    out_shape = jax.eval_shape(fn, *args)
    mapped = jax.shard_map(fn, mesh=mesh, in_specs=specs(in_names, args),
                           out_specs=specs([out_names], [out_shape])[0], check_vma=False)
    return mapped(*args)
  return run


def replicated(mesh: Mesh) -> NamedSharding:
  """A sharding that places a full copy on every device of `mesh`."""
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, ndim: int = 2, rules: Mapping[str, object] = DEFAULT_RULES) -> NamedSharding:
  """Rows split over the batch axes (`rules['batch']`, default data x fsdp), the other `ndim - 1` axes whole."""
  return NamedSharding(mesh, P(rules.get("batch"), *([None] * (ndim - 1))))


def process_rows(global_batch: int) -> range:
  """This process's row ids of the global batch (contiguous, in process order)."""
  n, i = jax.process_count(), jax.process_index()
  if global_batch % n:
    raise UserError(f"train.global_batch={global_batch} is not divisible by the {n} processes")
  per = global_batch // n
  return range(i * per, (i + 1) * per)


def to_global(mesh: Mesh, local: Mapping[str, np.ndarray],
              rules: Mapping[str, object] = DEFAULT_RULES) -> dict[str, jax.Array]:
  """This process's NumPy rows -> global jax.Arrays sharded over the batch axes."""
  return {k: jax.make_array_from_process_local_data(batch_sharding(mesh, v.ndim, rules), v)
          for k, v in local.items()}
