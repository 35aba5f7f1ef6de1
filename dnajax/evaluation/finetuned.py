"""A fine-tuned sequence model on this machine's devices: what `predict` applies and fine-tuning validates with.

A fine-tuning directory (`dnajax finetune --output FT`) holds `config.json` (the base run's config with the
`finetune` group and the adapted model settings), `finetune.json` (task, label coding, window length, base
checkpoint, per-seed results) and one `seed_K/` per seed with its checkpoints; `seed_K/best` holds the parameters
that scored best on the validation rows. `SequencePredictor.from_workdir` restores those onto a data-parallel mesh of
the devices present (any training mesh restores anywhere).

Sequences of any length are read through overlapping windows (`windows.sequence_windows`) and pooled over the whole
sequence. Sequences are grouped by window count (rounded up to a power of two), so one long sequence does not pad
every other to its length; batches are padded, never dropped, and gathered on every process.

Letters: N sequences, S batch rows (sequences), W windows per sequence, L window length, K outputs.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils
from tqdm import tqdm

from dnajax import checkpoint, runtime, sharding
from dnajax import config as config_lib
from dnajax.data import labels as labels_lib
from dnajax.data import windows
from dnajax.errors import UserError
from dnajax.evaluation import downstream
from dnajax.evaluation.engine import DATA_PARALLEL
from dnajax.model import encoder, heads

INFO = "finetune.json"


def is_finetuned(workdir: str) -> bool:
  """Whether `workdir` is a fine-tuning directory (holds finetune.json)."""
  return os.path.isfile(os.path.join(workdir, INFO))


def read_info(workdir: str) -> dict:
  """The parsed finetune.json of a fine-tuning directory; UserError when it is missing or unreadable."""
  path = os.path.join(workdir, INFO)
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    raise UserError(f"{workdir}: not a fine-tuning directory (no {INFO}); pass the --output of `dnajax "
                    "finetune`") from None
  except (OSError, ValueError) as e:
    raise UserError(f"{path}: cannot be read ({e}); the fine-tuning directory is damaged") from None


def _forward(params, tokens_SxWxL, weights_SxWxL, *, graphdef):
  return nnx.merge(graphdef, params)(tokens_SxWxL, weights_SxWxL).astype(jnp.float32)


def _pooled(params, tokens_SxWxL, weights_SxWxL, *, graphdef):
  return nnx.merge(graphdef, params).pooled(tokens_SxWxL, weights_SxWxL).astype(jnp.float32)


def split_metrics(coding: labels_lib.LabelCoding, outputs_NxK: np.ndarray, targets: np.ndarray) -> dict:
  """The downstream metrics of head outputs against encoded targets, plus `loss` (mean cross-entropy in nats, or
  the mean squared error of the standardised target)."""
  out = np.asarray(outputs_NxK, np.float64)
  if coding.task == "classification":
    m = downstream.classification_metrics(targets, coding.values(out), coding.classes)
    logz = np.log(np.exp(out - out.max(1, keepdims=True)).sum(1)) + out.max(1)
    m["loss"] = float(np.mean(logz - out[np.arange(len(out)), targets]))
    return m
  m = downstream.regression_metrics(targets * coding.std + coding.mean, coding.values(out))
  m["loss"] = float(np.mean(np.square(out[:, 0] - targets)))
  return m


def best_seed(info: dict) -> int:
  """The seed whose run scored best on the validation rows (its selection metric), the first on a tie.

  Raises UserError when no seed has finished."""
  done = {int(k): r for k, r in info.get("runs", {}).items() if r.get("select_score") is not None}
  if not done:
    raise UserError("the fine-tuning has no finished seed; rerun `dnajax finetune` with the same arguments")
  return max(sorted(done), key=lambda k: done[k]["select_score"])


class SequencePredictor:
  """A `heads.SequenceModel` with its parameters on `mesh`: `outputs(seqs)` float32[N, K] (class logits or the
  standardised value) and `predict(seqs)` (class probabilities float64[N, C] or values float64[N] in the labels'
  units, through `coding`).

  Attributes: mcfg, coding (`labels.LabelCoding`), window (L), mesh, params, batch_windows (windows per batch)."""

  def __init__(self, mcfg: encoder.ModelConfig, coding: labels_lib.LabelCoding, window: int, params, mesh,
               rules, batch_windows: int = 128, positions: int = 0):
    self.mcfg, self.coding, self.window, self.params, self.mesh = mcfg, coding, int(window), params, mesh
    self.positions = int(positions)
    self._unit = math.lcm(sharding.axis_size(mesh, rules.get("batch")), jax.process_count())
    self.batch_windows = max(int(batch_windows), self._unit)
    graphdef, _ = heads.model_graph(mcfg, coding.num_outputs, 0.0, self.positions)
    param_sh = jax.tree.map(lambda a: a.sharding,
                            heads.sharded_abstract_params(mcfg, coding.num_outputs, mesh, rules, self.positions))
    in_sh = sharding.batch_sharding(mesh, 3, rules)
    self._in_sh = in_sh
    self._forward, self._pooled = (
        jax.jit(sharding.traced_with_rules(functools.partial(fn, graphdef=graphdef), mesh, rules),
                in_shardings=(param_sh, in_sh, in_sh), out_shardings=sharding.batch_sharding(mesh, 2, rules))
        for fn in (_forward, _pooled))

  @classmethod
  def from_workdir(cls, workdir: str, seed: int | None = None) -> SequencePredictor:
    """The model of a fine-tuning directory: the best validation checkpoint of `seed` (default: the seed that
    scored best on the validation rows). Raises UserError for a directory that is not one, an unknown seed or an
    unreadable checkpoint."""
    info = read_info(workdir)
    with open(os.path.join(workdir, "config.json")) as f:
      cfg = config_lib.from_json(f.read())
    if seed is None:
      seed = best_seed(info)
    elif str(seed) not in info.get("runs", {}):
      raise UserError(f"--seed {seed}: {workdir} holds seeds {', '.join(info.get('runs', {})) or 'none'} (finished)")
    coding = labels_lib.LabelCoding(**info["coding"])
    mcfg = encoder.config_from(cfg.model.to_dict())
    mesh = sharding.make_mesh(dict(DATA_PARALLEL))  # as the engine: never the training mesh
    rules = sharding.rules_from_config(cfg.mesh.rules)
    ckpt = checkpoint.Checkpointer(workdir, keep=1, async_save=False, create=False,
                                   directory=os.path.join(workdir, f"seed_{seed}", "best"))
    try:
      step = ckpt.resolve_step(None)
      params = ckpt.restore_params(step, heads.sharded_abstract_params(mcfg, coding.num_outputs, mesh, rules,
                                                                       info.get("positions", 0)))
    finally:
      ckpt.close()
    return cls(mcfg, coding, info["window"], params, mesh, rules, cfg.eval.batch, info.get("positions", 0))

  def bind(self, params) -> SequencePredictor:
    """The same predictor (compiled function shared) with other parameters of the same shapes and shardings."""
    out = copy.copy(self)
    out.params = params
    return out

  def check_lengths(self, table) -> None:
    """Raises UserError naming the first row of `table` (`tables.SequenceTable`) longer than the positions a
    position-wise head reads (no limit for a mean-pooled one)."""
    if not self.positions:
      return
    for i, s in enumerate(table.seqs):
      if len(s) > self.positions:
        raise UserError(f"{labels_lib.row_name(table, i)}: {len(s)} bases; this model reads each position on its own "
                        f"(finetune.pool=positions) and takes sequences of at most {self.positions} bases, the "
                        "training length; trim or drop the row, or fine-tune with --config.finetune.pool=mean")

  def outputs(self, seqs: Sequence[np.ndarray], progress: bool = False) -> np.ndarray:
    """Head outputs float32[N, K] of sequences (token ids uint8, any length >= 1), in input order."""
    return self._run(self._forward, self.coding.num_outputs, seqs, progress)

  def pooled(self, seqs: Sequence[np.ndarray], progress: bool = False) -> np.ndarray:
    """The pooled encoder output float32[N, D] (position-wise: [N, P * D]) before standardisation and the head,
    in input order."""
    return self._run(self._pooled, self.mcfg.d_model * max(self.positions, 1), seqs, progress)

  def _run(self, fn, width: int, seqs: Sequence[np.ndarray], progress: bool) -> np.ndarray:
    L = self.window
    need = np.array([windows.num_windows(len(s), L) for s in seqs], np.int64)
    buckets = 2 ** np.ceil(np.log2(np.maximum(need, 1))).astype(np.int64)
    out = np.zeros((len(seqs), width), np.float32)
    plan = []
    for W in np.unique(buckets):
      rows = np.flatnonzero(buckets == W)
      per = max(self._unit, (self.batch_windows // int(W)) // self._unit * self._unit)
      per = min(per, -(-len(rows) // self._unit) * self._unit)
      plan += [(int(W), rows[a:a + per], per) for a in range(0, len(rows), per)]
    for W, rows, per in tqdm(plan, desc="predict", unit="batch", leave=False,
                             disable=not (progress and runtime.is_main() and len(plan) > 1)):
      ids, wts = windows.sequence_windows([seqs[i] for i in rows], L, W)
      tok = np.zeros((per, W, L), np.uint8)
      wt = np.zeros((per, W, L), np.float32)
      tok[:len(rows)], wt[:len(rows)] = ids, wts
      local = sharding.process_rows(per)
      y = fn(self.params, *(jax.make_array_from_process_local_data(self._in_sh, a[local.start:local.stop])
                                       for a in (tok, wt)))
      out[rows] = np.asarray(jax.device_get(multihost_utils.process_allgather(y, tiled=True)))[:len(rows)]
    return out

  def predict(self, seqs: Sequence[np.ndarray], progress: bool = False) -> np.ndarray:
    """Class probabilities float64[N, C] (columns in `coding.classes` order) or values float64[N] in the training
    labels' units."""
    return self.coding.values(self.outputs(seqs, progress))
