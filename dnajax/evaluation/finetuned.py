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
from dnajax.evaluation import downstream, hand_features
from dnajax.evaluation.engine import DATA_PARALLEL
from dnajax.model import encoder, heads

INFO = "finetune.json"
TRAIN_SEQUENCES = "train_sequences.txt"  # the training rows' sequences, one per line (A/C/G/T/N)


def is_finetuned(workdir: str) -> bool:
  """Whether `workdir` is a fine-tuning directory (holds finetune.json)."""
  return os.path.isfile(os.path.join(workdir, INFO))


def read_info(workdir: str) -> dict:
  """The parsed finetune.json of a fine-tuning directory; UserError when it is missing or unreadable."""
  path = os.path.join(workdir, INFO)
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise UserError(f"{workdir}: a file, not a fine-tuning directory; pass the --output directory of `dnajax "
                    "finetune`")
  try:
    with open(path) as f:
      return json.load(f)
  except FileNotFoundError:
    raise UserError(f"{workdir}: not a fine-tuning directory (no {INFO}); pass the --output of `dnajax "
                    "finetune`") from None
  except (OSError, ValueError) as e:
    raise UserError(f"{path}: cannot be read ({e}); the fine-tuning directory is damaged") from None


def read_result(seed_dir: str) -> dict | None:
  """The result.json of a finished seed directory, or None when the seed has not finished."""
  path = os.path.join(seed_dir, "result.json")
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return json.load(f)


def read_training_sequences(workdir: str) -> list[str] | None:
  """The sequences a fine-tuning was trained on (upper-case letters, training-table order), or None for a directory
  written before they were kept."""
  path = os.path.join(workdir, TRAIN_SEQUENCES)
  if not os.path.isfile(path):
    return None
  with open(path) as f:
    return [line.strip() for line in f if line.strip()]


def load(workdir: str, seed: int | None = None):
  """The predictor of a fine-tuning directory - a `SequencePredictor` (methods head, full, lora) or a
  `trees.TreesPredictor` (method trees) - for `seed` (default: the seed that scored best on the validation rows).
  Both offer coding, positions, check_lengths(table), outputs(seqs, progress) and predict(seqs, progress). Raises
  UserError as `SequencePredictor.from_workdir`."""
  info = read_info(workdir)
  if info.get("finetune", {}).get("method") != "trees":
    return SequencePredictor.from_workdir(workdir, seed)
  from dnajax.evaluation import trees

  return trees.TreesPredictor.from_workdir(workdir, info, _seed(info, workdir, seed))


def _seed(info: dict, workdir: str, seed: int | None) -> int:
  if seed is None:
    return best_seed(info)
  if str(seed) not in info.get("runs", {}):
    raise UserError(f"--seed {seed}: {workdir} holds seeds {', '.join(info.get('runs', {})) or 'none'} (finished)")
  return seed


def _forward(params, tokens_SxWxL, weights_SxWxL, *features_SxF, graphdef):
  return nnx.merge(graphdef, params)(tokens_SxWxL, weights_SxWxL, *features_SxF).astype(jnp.float32)


def _pooled(params, tokens_SxWxL, weights_SxWxL, *_features_SxF, graphdef):  # the features do not enter the pool
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
  units, through `coding`). With `organism` (a model fine-tuned with finetune.features=expression) the head also
  reads the hand features of each coding sequence (`hand_features.matrix`).

  Attributes: mcfg, coding (`labels.LabelCoding`), window (L), mesh, params, batch_windows (windows per batch),
  positions, organism, num_features."""

  def __init__(self, mcfg: encoder.ModelConfig, coding: labels_lib.LabelCoding, window: int, params, mesh,
               rules, batch_windows: int = 128, positions: int = 0, organism: str | None = None):
    self.mcfg, self.coding, self.window, self.params, self.mesh = mcfg, coding, int(window), params, mesh
    self.positions, self.organism = int(positions), organism
    self.num_features = len(hand_features.NAMES) if organism else 0
    self._unit = math.lcm(sharding.axis_size(mesh, rules.get("batch")), jax.process_count())
    self.batch_windows = max(int(batch_windows), self._unit)
    graphdef, _ = heads.model_graph(mcfg, coding.num_outputs, 0.0, self.positions, self.num_features)
    param_sh = jax.tree.map(lambda a: a.sharding, heads.sharded_abstract_params(
        mcfg, coding.num_outputs, mesh, rules, self.positions, self.num_features))
    in_sh = sharding.batch_sharding(mesh, 3, rules)
    self._in_sh, self._feature_sh = in_sh, sharding.batch_sharding(mesh, 2, rules)
    extra = (self._feature_sh,) if self.num_features else ()
    self._forward, self._pooled = (
        jax.jit(sharding.traced_with_rules(functools.partial(fn, graphdef=graphdef), mesh, rules),
                in_shardings=(param_sh, in_sh, in_sh, *extra), out_shardings=sharding.batch_sharding(mesh, 2, rules))
        for fn in (_forward, _pooled))

  @classmethod
  def from_workdir(cls, workdir: str, seed: int | None = None) -> SequencePredictor:
    """The model of a fine-tuning directory: the best validation checkpoint of `seed` (default: the seed that
    scored best on the validation rows). Raises UserError for a directory that is not one, an unknown seed or an
    unreadable checkpoint."""
    info = read_info(workdir)
    with open(os.path.join(workdir, "config.json")) as f:
      cfg = config_lib.from_json(f.read())
    seed = _seed(info, workdir, seed)
    coding = labels_lib.LabelCoding(**info["coding"])
    mcfg = encoder.config_from(cfg.model.to_dict())
    mesh = sharding.make_mesh(dict(DATA_PARALLEL))  # as the engine: never the training mesh
    rules = sharding.rules_from_config(cfg.mesh.rules)
    ckpt = checkpoint.Checkpointer(workdir, keep=1, async_save=False, create=False,
                                   directory=os.path.join(workdir, f"seed_{seed}", "best"))
    try:
      step = ckpt.resolve_step(None)
      organism = info.get("organism") if info.get("features") == "expression" else None
      params = ckpt.restore_params(step, heads.sharded_abstract_params(
          mcfg, coding.num_outputs, mesh, rules, info.get("positions", 0),
          len(hand_features.NAMES) if organism else 0))
    finally:
      ckpt.close()
    return cls(mcfg, coding, info["window"], params, mesh, rules, cfg.eval.batch, info.get("positions", 0), organism)

  def bind(self, params) -> SequencePredictor:
    """The same predictor (compiled function shared) with other parameters of the same shapes and shardings."""
    out = copy.copy(self)
    out.params = params
    return out

  def check_lengths(self, table) -> None:
    """As `labels.check_positions` with this model's positions."""
    labels_lib.check_positions(table, self.positions)

  def features(self, seqs: Sequence[np.ndarray], names=None) -> np.ndarray | None:
    """The hand features float64[N, F] the head reads (None without them). Raises UserError as
    `hand_features.matrix`."""
    return hand_features.matrix(seqs, self.organism, names) if self.num_features else None

  def outputs(self, seqs: Sequence[np.ndarray], progress: bool = False, names=None,
              features: np.ndarray | None = None) -> np.ndarray:
    """Head outputs float32[N, K] of sequences (token ids uint8, any length >= 1), in input order. `features`: the
    rows' hand features when already computed (`features(seqs)`); `names` name a row that is not a coding sequence
    when they are computed here."""
    if self.num_features and features is None:
      features = self.features(seqs, names)
    return self._run(self._forward, self.coding.num_outputs, seqs, progress, features)

  def pooled(self, seqs: Sequence[np.ndarray], progress: bool = False) -> np.ndarray:
    """The pooled encoder output float32[N, D] (position-wise: [N, P * D]) before standardisation and the head,
    in input order."""
    dummy = np.zeros((len(seqs), self.num_features), np.float32) if self.num_features else None
    return self._run(self._pooled, self.mcfg.d_model * max(self.positions, 1), seqs, progress, dummy)

  def _run(self, fn, width: int, seqs: Sequence[np.ndarray], progress: bool,
           features: np.ndarray | None = None) -> np.ndarray:
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
      args = [jax.make_array_from_process_local_data(self._in_sh, a[local.start:local.stop]) for a in (tok, wt)]
      if features is not None:
        feat = np.zeros((per, features.shape[1]), np.float32)
        feat[:len(rows)] = features[rows]
        args.append(jax.make_array_from_process_local_data(self._feature_sh, feat[local.start:local.stop]))
      y = fn(self.params, *args)
      out[rows] = np.asarray(jax.device_get(multihost_utils.process_allgather(y, tiled=True)))[:len(rows)]
    return out

  def predict(self, seqs: Sequence[np.ndarray], progress: bool = False) -> np.ndarray:
    """Class probabilities float64[N, C] (columns in `coding.classes` order) or values float64[N] in the training
    labels' units."""
    return self.coding.values(self.outputs(seqs, progress))
