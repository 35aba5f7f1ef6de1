"""Loading Python configs (`get_config() -> ConfigDict`) and applying `--config.a.b=value` overrides.

The config is locked after loading: an unknown key is an error, and so is a value of the wrong type or out of its
range (`check`).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import math
import os
import pkgutil
from collections.abc import Sequence

import ml_collections

from dnajax.errors import UserError

_CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the source checkout, when installed -e


def shipped() -> list[str]:
  """Names of the configs shipped with dnajax (`--config NAME`)."""
  from dnajax import configs

  return sorted(m.name for m in pkgutil.iter_modules(configs.__path__))


def _module_for(spec: str):
  """A config module from a name (tiny: the shipped `dnajax.configs.tiny`) or a file (configs/tiny.py, my.py).

  A relative path that does not exist here is also looked for in the dnajax checkout, and `configs/NAME.py` falls
  back to the shipped config NAME, so `--config configs/cpu.py` works from any directory."""
  if not spec.endswith(".py"):
    if spec in shipped():
      return importlib.import_module(f"dnajax.configs.{spec}")
    raise UserError(f"config {spec}: no such shipped config ({', '.join(shipped())}) or file; pass a name or a "
                    "path like configs/default.py")
  path = spec
  if not os.path.isfile(path) and not os.path.isabs(spec):
    in_checkout = os.path.join(_CHECKOUT, spec)
    name = os.path.splitext(os.path.basename(spec))[0]
    if os.path.isfile(in_checkout):
      path = in_checkout
    elif os.path.dirname(spec) == "configs" and name in shipped():
      return importlib.import_module(f"dnajax.configs.{name}")
  if not os.path.isfile(path):
    raise UserError(f"config {spec}: no such file; pass a path like configs/default.py or a name such as default")
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


# Integer keys that also take the word "auto" (resolved before training; config.json records the integer).
AUTO_KEYS = ("train.grad_accum",)
# List keys whose items are numbers (written "0.5,0.5"; stored as floats, an empty item refused).
NUMBER_LIST_KEYS = ("data.weights",)


def _parse_value(key: str, text: str, current):
  if key in AUTO_KEYS:
    if text == "auto":
      return text
    current = 1  # an integer, also where the config says auto
  if key in NUMBER_LIST_KEYS:
    try:
      return tuple(float(x) for x in text.split(",")) if text.strip() else ()
    except ValueError:
      raise UserError(f"--config.{key}={text}: expected comma-separated numbers, e.g. --config.{key}=0.5,0.5"
                      ) from None
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
    raise UserError(f"--config.{key}={text}: expected {_type_words(current)}"
                    f"{' or auto' if key in AUTO_KEYS else ''}, e.g. --config.{key}={_example(current)}") from None


def _example(current) -> str:
  """`current` written as an override value."""
  if isinstance(current, bool):
    return str(current).lower()
  if isinstance(current, (tuple, list)):
    return ",".join(map(str, current)) or "a,b"
  return json.dumps(current) if current is None else str(current)


def _type_words(current) -> str:
  """What a value of the type of `current` is called in an error message ("an integer", "true or false", ...)."""
  if isinstance(current, bool):
    return "true or false"
  if isinstance(current, int):
    return "an integer"
  if isinstance(current, float):
    return "a float"
  if isinstance(current, (tuple, list)):
    return "a comma-separated list"
  if current is None:
    return "a JSON value"
  return "a string"


def apply_override(cfg: ml_collections.ConfigDict, key: str, text: str) -> None:
  """Set `key` (dotted) to `text` parsed as the type of its current value; UserError for an unknown key or a
  value of the wrong type."""
  node, parts = cfg, key.split(".")
  for i, p in enumerate(parts[:-1]):
    if p not in node or not isinstance(node[p], ml_collections.ConfigDict):
      raise UserError(f"--config.{key}: unknown config group {'.'.join(parts[:i + 1])!r}; see configs/default.py")
    node = node[p]
  leaf = parts[-1]
  if leaf not in node or isinstance(node[leaf], ml_collections.ConfigDict):
    raise UserError(f"--config.{key}: unknown config key; see configs/default.py for the keys")
  value = _parse_value(key, text, node[leaf])
  with node.unlocked(), node.ignore_type() if key in AUTO_KEYS else contextlib.nullcontext():
    node[leaf] = value


def load(spec: str, overrides: Sequence[tuple[str, str]] = ()) -> ml_collections.ConfigDict:
  """The locked config of `spec` (a shipped name or a file) with `overrides` [(dotted key, text)] applied."""
  cfg = _module_for(spec).get_config()
  cfg.lock()
  for key, value in overrides:
    apply_override(cfg, key, value)
  check(cfg)
  return cfg


# Ranges of the config values, checked by `check` before anything is written or compiled: (key, allowed, test).
_COUNT = ("an integer >= 1", lambda v: _is_int(v) and v >= 1)
_INDEX = ("an integer >= 0", lambda v: _is_int(v) and v >= 0)
_RATE = ("a number in (0, 1): above 0 and below 1", lambda v: _is_num(v) and 0 < v < 1)
_RANGES = (
    *((k, *_COUNT) for k in ("train.steps", "train.global_batch", "train.log_every",
                             "train.eval_every", "ckpt.every", "ckpt.keep", "eval.batch", "eval.max_windows",
                             "data.seq_len", "data.min_len", "data.synthetic_bases", "data.synthetic_record_len",
                             "model.d_model", "model.num_heads", "model.num_layers", "model.d_ff", "model.max_len",
                             "finetune.epochs", "finetune.batch", "finetune.lora_rank", "finetune.log_every",
                             "finetune.components", "finetune.tree_iterations")),
    *((k, *_INDEX) for k in ("train.seed", "eval.seed", "opt.warmup_steps", "finetune.window", "finetune.eval_every",
                             "finetune.patience")),
    ("train.grad_accum", "an integer >= 1 or auto", lambda v: v == "auto" or _COUNT[1](v)),
    ("train.memory_limit_gib", "a number >= 0 (0: the device's own limit)", lambda v: _is_num(v) and v >= 0),
    ("finetune.method", "auto, head, full, lora or trees", lambda v: v in ("auto", "head", "full", "lora", "trees")),
    ("finetune.features", "auto, none or expression", lambda v: v in ("auto", "none", "expression")),
    ("finetune.layer", "an integer >= -1", lambda v: _is_int(v) and v >= -1),
    ("finetune.tree_learning_rate", "a number in (0, 1]", lambda v: _is_num(v) and 0 < v <= 1),
    ("finetune.pool", "auto, mean or positions", lambda v: v in ("auto", "mean", "positions")),
    ("finetune.select", "auto, loss or a metric name (mcc, accuracy, macro_f1, auroc, spearman, pearson, r2)",
     lambda v: v in ("auto", "loss", "mcc", "accuracy", "macro_f1", "auroc", "spearman", "pearson", "r2")),
    ("finetune.learning_rate", "a number > 0", lambda v: _is_num(v) and v > 0),
    ("finetune.lora_alpha", "a number > 0", lambda v: _is_num(v) and v > 0),
    ("finetune.weight_decay", "a number >= 0", lambda v: _is_num(v) and v >= 0),
    ("finetune.warmup_fraction", "a number in [0, 1)", lambda v: _is_num(v) and 0 <= v < 1),
    ("finetune.head_dropout", "a number in [0, 1)", lambda v: _is_num(v) and 0 <= v < 1),
    ("finetune.dropout", "a number in [0, 1)", lambda v: _is_num(v) and 0 <= v < 1),
    ("data.n_run", "an integer >= 0 (0: records are not split at runs of N)", _INDEX[1]),
    ("data.mask_rate", *_RATE),
    ("eval.mask_rate", *_RATE),
    ("data.max_n_fraction", "a number in [0, 1]", lambda v: _is_num(v) and 0 <= v <= 1),
    ("data.softmask_weight", "a number in [0, 1]", lambda v: _is_num(v) and 0 <= v <= 1),
    ("model.dropout", "a number in [0, 1)", lambda v: _is_num(v) and 0 <= v < 1),
    ("opt.learning_rate", "a number > 0", lambda v: _is_num(v) and v > 0),
    ("opt.end_lr_fraction", "a number in [0, 1]", lambda v: _is_num(v) and 0 <= v <= 1),
    ("opt.weight_decay", "a number >= 0", lambda v: _is_num(v) and v >= 0),
    ("opt.clip_norm", "a number >= 0 (0: no clipping)", lambda v: _is_num(v) and v >= 0),
    ("opt.b1", "a number in [0, 1)", lambda v: _is_num(v) and 0 <= v < 1),
    ("opt.b2", "a number in [0, 1)", lambda v: _is_num(v) and 0 <= v < 1),
)


def _is_int(v) -> bool:
  return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
  return isinstance(v, (int, float)) and not isinstance(v, bool)


_MISSING = object()


def _get(cfg, key: str):
  node = cfg
  for part in key.split("."):
    if not isinstance(node, (dict, ml_collections.ConfigDict)) or part not in node:
      return _MISSING
    node = node[part]
  return node


def check(cfg) -> None:
  """Every value of `cfg` that has a range is in it: counts are integers >= 1 (train.steps, train.global_batch,
  eval.batch, data.seq_len, model sizes, ...), mask rates in (0, 1), data.mask_rate_max 0 or in
  [data.mask_rate, 1), data.max_n_fraction in [0, 1], opt.learning_rate > 0, and every number finite. Called when a
  config is loaded (`load`: `dnajax train`, `dnajax bench`) and by the training program, before anything is written
  or compiled. UserError naming the first key out of range and its allowed range. (data.val_fraction is checked
  where the corpus split is made, `data.corpus.SplitSettings`.)"""
  def walk(node, prefix):
    for k, v in node.items():
      if isinstance(v, (dict, ml_collections.ConfigDict)):
        walk(v, f"{prefix}{k}.")
      elif isinstance(v, float) and not math.isfinite(v):
        raise UserError(f"--config.{prefix}{k}={v}: not a finite number; pass a finite value")
  walk(cfg, "")
  for key, allowed, ok in _RANGES:
    v = _get(cfg, key)
    if v is not _MISSING and not ok(v):
      raise UserError(f"--config.{key}={v}: must be {allowed}; pass a value in that range")
  lo, hi = _get(cfg, "data.mask_rate"), _get(cfg, "data.mask_rate_max")
  if hi is not _MISSING and lo is not _MISSING and not (_is_num(hi) and (hi == 0 or lo <= hi < 1)):
    raise UserError(f"--config.data.mask_rate_max={hi}: must be 0 (one rate, data.mask_rate) or in "
                    f"[data.mask_rate={lo}, 1); pass a value in that range")


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
  """The config as JSON (sorted keys), as saved in WORKDIR/config.json."""
  return json.dumps(cfg.to_dict(), indent=1, sort_keys=True, allow_nan=False)
