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

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm import tqdm

from dnajax import runtime, sharding
from dnajax.data import labels as labels_lib
from dnajax.data import rundir, windows
from dnajax.errors import UserError
from dnajax.evaluation import downstream, hand_features
from dnajax.evaluation.engine import DATA_PARALLEL, DeviceModel
from dnajax.model import encoder, heads


def load(workdir: str, seed: int | None = None):
  """The predictor of a fine-tuning directory - a `SequencePredictor` (methods head, full, lora) or a
  `trees.TreesPredictor` (method trees) - for `seed` (default: the seed that scored best on the validation rows).
  Both offer coding, positions, check_lengths(table), outputs(seqs, progress) and predict(seqs, progress). Raises
  UserError as `SequencePredictor.from_workdir`."""
  info = rundir.read_info(workdir)
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


class SequencePredictor(DeviceModel):
  """A `heads.SequenceModel` with its parameters on `mesh` (an `engine.DeviceModel`): `outputs(seqs)` float32[N, K]
  (class logits or the standardised value) and `predict(seqs)` (class probabilities float64[N, C] or values
  float64[N] in the labels' units, through `coding`). With `organism` (a model fine-tuned with
  finetune.features=expression) the head also reads the hand features of each coding sequence
  (`hand_features.matrix`).

  Attributes: mcfg, coding (`labels.LabelCoding`), window (L), mesh, params, batch_windows (windows per batch),
  positions, organism, num_features."""

  def __init__(self, mcfg: encoder.ModelConfig, coding: labels_lib.LabelCoding, window: int, params, mesh,
               rules, batch_windows: int = 128, positions: int = 0, organism: str | None = None):
    super().__init__(params, mesh, rules)
    self.mcfg, self.coding, self.window = mcfg, coding, int(window)
    self.positions, self.organism = int(positions), organism
    self.num_features = len(hand_features.NAMES) if organism else 0
    self.batch_windows = max(int(batch_windows), self.unit)
    graphdef, _ = heads.model_graph(mcfg, coding.num_outputs, 0.0, self.positions, self.num_features)
    param_sh = jax.tree.map(lambda a: a.sharding, heads.sharded_abstract_params(
        mcfg, coding.num_outputs, mesh, rules, self.positions, self.num_features))
    in_sh = sharding.batch_sharding(mesh, 3, rules)
    self._in_sh, self._feature_sh = in_sh, sharding.batch_sharding(mesh, 2, rules)
    extra = (self._feature_sh,) if self.num_features else ()
    self._forward, self._pooled = (self.jit(functools.partial(fn, graphdef=graphdef), (param_sh, in_sh, in_sh, *extra),
                                            2) for fn in (_forward, _pooled))

  @classmethod
  def from_workdir(cls, workdir: str, seed: int | None = None) -> SequencePredictor:
    """The model of a fine-tuning directory: the best validation checkpoint of `seed` (default: the seed that
    scored best on the validation rows). Raises UserError for a directory that is not one, an unknown seed or an
    unreadable checkpoint."""
    cfg, info = rundir.finetuning(workdir)
    seed = _seed(info, workdir, seed)
    coding = labels_lib.LabelCoding(**info["coding"])
    mcfg = encoder.config_from(cfg.model.to_dict())
    mesh = sharding.make_mesh(dict(DATA_PARALLEL))  # as the engine: never the training mesh
    rules = sharding.rules_from_config(cfg.mesh.rules)
    ckpt = rundir.checkpointer(rundir.seed_dir(workdir, seed), best=True)
    try:
      step = ckpt.resolve_step(None)
      organism = info.get("organism") if info.get("features") == "expression" else None
      params = ckpt.restore_params(step, heads.sharded_abstract_params(
          mcfg, coding.num_outputs, mesh, rules, info.get("positions", 0),
          len(hand_features.NAMES) if organism else 0))
    finally:
      ckpt.close()
    return cls(mcfg, coding, info["window"], params, mesh, rules, cfg.eval.batch, info.get("positions", 0), organism)

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
      per = max(self.unit, (self.batch_windows // int(W)) // self.unit * self.unit)
      per = min(per, -(-len(rows) // self.unit) * self.unit)
      plan += [(int(W), rows[a:a + per], per) for a in range(0, len(rows), per)]
    for W, rows, per in tqdm(plan, desc="predict", unit="batch", leave=False,
                             disable=not (progress and runtime.is_main() and len(plan) > 1)):
      ids, wts = windows.sequence_windows([seqs[i] for i in rows], L, W)
      tok = np.zeros((per, W, L), np.uint8)
      wt = np.zeros((per, W, L), np.float32)
      tok[:len(rows)], wt[:len(rows)] = ids, wts
      batch = [(tok, self._in_sh), (wt, self._in_sh)]
      if features is not None:
        feat = np.zeros((per, features.shape[1]), np.float32)
        feat[:len(rows)] = features[rows]
        batch.append((feat, self._feature_sh))
      out[rows] = self.call(fn, batch)[:len(rows)]
    return out

  def predict(self, seqs: Sequence[np.ndarray], progress: bool = False) -> np.ndarray:
    """Class probabilities float64[N, C] (columns in `coding.classes` order) or values float64[N] in the training
    labels' units."""
    return self.coding.values(self.outputs(seqs, progress))
