"""Sweeps: a grid of config changes, each one an ordinary training run in its own folder of the sweep directory.

`plan` turns `--grid KEY=V1,V2` lists (the Cartesian product, or with `zip` the lists paired) and seeds into runs,
each with its overrides and its config; a combination the model or the config cannot take (heads not dividing
d_model, ...) is kept with the reason it is skipped, so it is said before anything trains. `tokens_per_step` and
`equal_tokens` set every run's steps so that all see the same number of training tokens as the base config
(`--equal-tokens`: bigger models otherwise win by training longer). `finished` tells a finished run (its
validation at the last step is in metrics.jsonl) from one to resume; `result_row` gives a finished run's numbers.
The sweep verb (`dnajax.apps.sweep`) starts the runs as `dnajax train` processes and writes the tables and plots.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re

import jax

from dnajax import config as config_lib
from dnajax.data import rundir, sampler
from dnajax.errors import UserError
from dnajax.model import encoder
from dnajax.training.program import check_accumulation
from dnajax.training.writer import read_metrics

SEED_KEY, STEPS_KEY = "train.seed", "train.steps"
RESULT_COLUMNS = ("seed", "parameters", "steps", "train_tokens", "wall_seconds", "tokens_per_second",
                  "val_masked_accuracy", "val_loss", "fraction_of_bayes", "kmer_masked_accuracy")


@dataclasses.dataclass
class Run:
  """One run of a sweep: `name` (its folder), `values` {swept key: value as written}, `seed`, `overrides` (every
  --config.KEY=VALUE it trains with: the sweep's own, the grid's, the seed, and the steps under --equal-tokens),
  `cfg` (its config) and `skipped` (why it cannot run; empty when it can)."""
  name: str
  values: dict[str, str]
  seed: int
  overrides: list[tuple[str, str]]
  cfg: object = None
  skipped: str = ""


def parse_grid(texts: list[str]) -> list[tuple[str, list[str]]]:
  """`KEY=V1,V2,...` per --grid -> [(key, [values])]. Values are split at commas, or at `|` when the text has one
  (for values holding commas, e.g. `data.curriculum=128:0.5,256:0.8|`). UserError for a malformed text, an empty
  value, a repeated value or a key given twice."""
  out, keys = [], set()
  for text in texts:
    key, eq, rest = text.partition("=")
    key = key.strip().removeprefix("--config.").removeprefix("config.")
    sep = "|" if "|" in rest else ","
    values = [v.strip() for v in rest.split(sep)]
    if sep == "|" and values and values[-1] == "":
      values = values[:-1]
    if not eq or not re.fullmatch(r"[A-Za-z_][\w.]*", key) or not values or any(v == "" for v in values):
      raise UserError(f"--grid {text!r}: write KEY=V1,V2,... (e.g. --grid model.num_layers=2,4,6)")
    if len(set(values)) < len(values):
      raise UserError(f"--grid {text!r}: a value is listed twice")
    if key in keys or key == SEED_KEY:
      raise UserError(f"--grid {key}: given twice" if key in keys else f"--grid {key}: sweep seeds with --seeds")
    keys.add(key)
    out.append((key, values))
  if not out:
    raise UserError("no --grid given; pass at least one --grid KEY=V1,V2")
  return out


def parse_seeds(text: str) -> list[int]:
  """`0,1,2` -> [0, 1, 2]; UserError for anything but distinct integers >= 0."""
  try:
    seeds = [int(s) for s in text.split(",")]
  except ValueError:
    raise UserError(f"--seeds {text!r}: write integers separated by commas, e.g. --seeds 0,1") from None
  if any(not 0 <= s < 2**32 for s in seeds) or len(set(seeds)) < len(seeds):
    raise UserError(f"--seeds {text!r}: seeds must be distinct integers in 0 .. 2^32 - 1")
  return seeds


def tokens_per_step(cfg) -> float:
  """Training tokens per step, averaged over the steps of a sequence-length curriculum: global_batch x window."""
  steps = int(cfg.train.steps)
  stages = sampler.curriculum(cfg.data.curriculum, steps, int(cfg.data.seq_len))
  total, start = 0, 0
  for end, length in stages:
    total += (end - start) * length
    start = end
  return int(cfg.train.global_batch) * total / max(steps, 1)


def run_name(values: dict[str, str], seed: int) -> str:
  """A readable folder name: the last part of each swept key and its value, then the seed, e.g.
  `num_layers-2_num_heads-4_seed-0` (characters a file name cannot hold become `_`)."""
  short = [k.rsplit(".", 1)[-1] for k in values]
  names = [k if short.count(s) > 1 else s for k, s in zip(values, short)]
  text = "_".join(f"{n}-{v}" for n, v in zip(names, values.values())) + f"_seed-{seed}"
  return re.sub(r"[^\w.+-]", "_", text)


def _check(cfg) -> None:
  """UserError when the model of `cfg` cannot be built (the checks the model makes before anything compiles)."""
  encoder.config_from(cfg.model.to_dict())
  if cfg.train.grad_accum != "auto":
    check_accumulation("train.global_batch", int(cfg.train.global_batch), "train.grad_accum",
                       int(cfg.train.grad_accum))


def plan(config: str, overrides: list[tuple[str, str]], grid: list[tuple[str, list[str]]], seeds: list[int],
         paired: bool = False, equal_tokens: bool = False) -> list[Run]:
  """Every run of the sweep, valid or skipped, in grid order (seeds innermost). Raises UserError (exit 2) for a
  grid value that no combination could take (an unknown key, a value of the wrong type or out of range), for
  `paired` lists of different lengths, and for a bad base config."""
  base = config_lib.load(config, overrides)
  for key, values in grid:
    for v in values:
      try:
        config_lib.load(config, overrides + [(key, v)])
      except UserError as e:
        raise UserError(f"--grid {key}={v}: {e}") from None
  if equal_tokens and any(k == STEPS_KEY for k, _ in grid):
    raise UserError(f"--grid {STEPS_KEY} with --equal-tokens: --equal-tokens sets each run's steps; sweep one or the "
                    "other")
  if paired and len({len(v) for _, v in grid}) > 1:
    raise UserError("--zip: every --grid needs the same number of values ("
                    + ", ".join(f"{k} {len(v)}" for k, v in grid) + ")")
  keys = [k for k, _ in grid]
  combos = zip(*(v for _, v in grid)) if paired else itertools.product(*(v for _, v in grid))
  reference = tokens_per_step(base) * int(base.train.steps)
  runs = []
  for combo in combos:
    values = dict(zip(keys, combo))
    for seed in seeds:
      ov = overrides + list(values.items()) + [(SEED_KEY, str(seed))]
      run = Run(run_name(values, seed), values, seed, ov)
      try:
        cfg = config_lib.load(config, ov)
        if equal_tokens:
          steps = max(1, round(reference / tokens_per_step(cfg)))
          run.overrides = ov + [(STEPS_KEY, str(steps))]
          cfg = config_lib.load(config, run.overrides)
        _check(cfg)
        run.cfg = cfg
      except UserError as e:
        run.skipped = str(e)
      runs.append(run)
  _check_plan(runs, grid)
  return runs


def _check_plan(runs: list[Run], grid: list[tuple[str, list[str]]]) -> None:
  """UserError for a grid value that every combination refuses (a typo would otherwise drop part of the sweep) and
  for two runs that would share a folder or train the same config (1e-3 and 0.001)."""
  for key, values in grid:
    for v in values:
      mine = [r for r in runs if r.values[key] == v]
      if mine and all(r.skipped for r in mine):
        raise UserError(f"--grid {key}={v}: no combination can take it ({mine[0].skipped}); fix or drop the value")
  seen: dict[str, Run] = {}
  for r in runs:
    if r.skipped:
      continue
    text = config_lib.to_json(r.cfg)
    same = seen.get(r.name) or next((o for o in seen.values() if config_lib.to_json(o.cfg) == text), None)
    if same:
      raise UserError(f"--grid: {label(same)} and {label(r)} are the same run (one folder or one config); list "
                      "each value once")
    seen[r.name] = r


def label(run: Run) -> str:
  """`key=value ... seed=S` of a run, for messages."""
  return " ".join(f"{k}={v}" for k, v in run.values.items()) + f" seed={run.seed}"


# Config keys a run resolves when it starts (so its config.json may differ there from the plan).
RESOLVED_KEYS = ("train.grad_accum",)


def config_difference(path: str, cfg) -> str | None:
  """The first config key (dotted) where the run folder's saved config differs from `cfg`, or None (also for a run
  not started)."""
  saved = rundir.read_config(path)
  if saved is None:
    return None
  a, b = json.loads(config_lib.to_json(saved)), json.loads(config_lib.to_json(cfg))

  def walk(x, y, prefix=""):
    for k in sorted(set(x) | set(y)):
      key = prefix + k
      if isinstance(x.get(k), dict) and isinstance(y.get(k), dict):
        found = walk(x[k], y[k], key + ".")
        if found:
          return found
      elif x.get(k) != y.get(k) and key not in RESOLVED_KEYS:
        return f"{key} ({x.get(k)!r} there, {y.get(k)!r} now)"
    return None
  return walk(a, b)


def finished(path: str, cfg) -> dict | None:
  """The metrics (`read_metrics`) of the run at `path` when it is finished - validated at its last step - else None
  (not started, or stopped before the end)."""
  if not rundir.kind(path):
    return None
  try:
    metrics = read_metrics(path)
  except UserError:
    return None
  val = metrics["val"]
  return metrics if val and int(val[-1]["step"]) >= int(cfg.train.steps) else None


def parameters(cfg) -> int:
  """The model's parameter count (shapes only; nothing is allocated)."""
  mcfg = encoder.config_from(cfg.model.to_dict())
  return encoder.count_params(jax.eval_shape(lambda: encoder.init_params(mcfg, 0)))


def result_row(run: Run, metrics: dict, wall_seconds: float) -> dict:
  """The results.csv row of a finished run (`metrics`: its `finished` metrics): its swept values, then
  RESULT_COLUMNS (fraction_of_bayes None where the data has no exact limit)."""
  val = metrics["val"][-1]
  tokens = tokens_per_step(run.cfg) * int(run.cfg.train.steps)
  frac = val.get("val/fraction_of_bayes")
  return {**run.values, "seed": run.seed, "parameters": parameters(run.cfg), "steps": int(run.cfg.train.steps),
          "train_tokens": int(tokens), "wall_seconds": round(wall_seconds, 1),
          "tokens_per_second": round(tokens / wall_seconds) if wall_seconds > 0 else None,
          "val_masked_accuracy": val["val/masked_accuracy"], "val_loss": val["val/loss"],
          "fraction_of_bayes": frac if isinstance(frac, float) and math.isfinite(frac) else None,
          "kmer_masked_accuracy": val.get("val/baselines/kmer_of_training_data/masked_accuracy")}


def validation_curve(metrics: dict, cfg) -> list[tuple[float, float]]:
  """(training tokens seen, validation masked accuracy) at each validation of a run (`metrics`: `read_metrics`)."""
  per_step = tokens_per_step(cfg)
  return [(r["step"] * per_step, r["val/masked_accuracy"]) for r in metrics["val"]
          if isinstance(r.get("val/masked_accuracy"), float)]
