"""Loading Python configs (`get_config() -> ConfigDict`) and applying `--config.a.b=value` overrides.

The config is locked after loading: an unknown key is an error, and so is a value of the wrong type.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence

import ml_collections

from dnajax.errors import UserError

_REPO_CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def _module_for(spec: str):
  """A config module from a path (configs/tiny.py) or a bare name (tiny)."""
  path = spec if spec.endswith(".py") else os.path.join(_REPO_CONFIGS, f"{spec}.py")
  if not os.path.isfile(path) and spec.endswith(".py") and not os.path.isabs(spec):
    # `configs/x.py` also resolves against the dnajax checkout, so it works from any directory.
    in_repo = os.path.join(os.path.dirname(_REPO_CONFIGS), spec)
    path = in_repo if os.path.isfile(in_repo) else path
  if not os.path.isfile(path):
    if not spec.endswith(".py"):
      try:
        return importlib.import_module(f"configs.{spec}")
      except ImportError:
        pass
    raise UserError(f"config {spec}: no such file; pass a path like configs/default.py")
  parent = os.path.dirname(os.path.dirname(os.path.abspath(path)))
  if parent not in sys.path:
    sys.path.insert(0, parent)  # so `from configs import default` works in variants
  name = f"_dnajax_config_{os.path.splitext(os.path.basename(path))[0]}"
  mspec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(mspec)
  try:
    mspec.loader.exec_module(module)
  except Exception as e:
    raise UserError(f"config {path}: failed to load ({type(e).__name__}: {e}); fix the file") from None
  if not hasattr(module, "get_config"):
    raise UserError(f"config {path}: defines no get_config(); add one returning a ConfigDict")
  return module


def _parse_value(key: str, text: str, current):
  try:
    if isinstance(current, bool):
      low = text.lower()
      if low not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError
      return low in ("true", "1", "yes")
    if isinstance(current, int):
      return int(float(text)) if float(text).is_integer() else int(text)
    if isinstance(current, float):
      return float(text)
    if isinstance(current, (tuple, list)):
      return tuple(x for x in text.split(",") if x)
    if current is None:
      return json.loads(text)
    return text
  except ValueError:
    raise UserError(f"--config.{key}={text}: expected a {type(current).__name__}") from None


def apply_override(cfg: ml_collections.ConfigDict, key: str, text: str) -> None:
  node, parts = cfg, key.split(".")
  for i, p in enumerate(parts[:-1]):
    if p not in node or not isinstance(node[p], ml_collections.ConfigDict):
      raise UserError(f"--config.{key}: unknown config group {'.'.join(parts[:i + 1])!r}; see configs/default.py")
    node = node[p]
  leaf = parts[-1]
  if leaf not in node or isinstance(node[leaf], ml_collections.ConfigDict):
    raise UserError(f"--config.{key}: unknown config key; see configs/default.py for the keys")
  with node.unlocked():
    node[leaf] = _parse_value(key, text, node[leaf])


def load(spec: str, overrides: Sequence[tuple[str, str]] = ()) -> ml_collections.ConfigDict:
  cfg = _module_for(spec).get_config()
  cfg.lock()
  for key, value in overrides:
    apply_override(cfg, key, value)
  return cfg


def from_json(text: str) -> ml_collections.ConfigDict:
  """A config saved with `to_json` (tuples come back as tuples). Keys added to dnajax since it was saved take
  their values from configs/default.py, so older workdirs keep loading."""
  def tuples(x):
    if isinstance(x, dict):
      return {k: tuples(v) for k, v in x.items()}
    return tuple(x) if isinstance(x, list) else x

  def merge(base, saved):
    out = dict(base)
    for k, v in saved.items():
      out[k] = merge(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out

  try:
    saved = tuples(json.loads(text))
  except ValueError:
    raise UserError("config.json: not valid JSON; the workdir is damaged") from None
  cfg = ml_collections.ConfigDict(merge(_module_for("default").get_config().to_dict(), saved))
  cfg.lock()
  return cfg


def to_json(cfg: ml_collections.ConfigDict) -> str:
  return json.dumps(cfg.to_dict(), indent=1, sort_keys=True)
