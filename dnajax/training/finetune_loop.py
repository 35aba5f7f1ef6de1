"""Fine-tuning a pretrained run on labelled sequences: `finetune(...)` trains one model per seed, selects each
seed's best checkpoint on the validation rows, and reports the metrics beside a k-mer baseline.

The fine-tuning directory (`--output FT`): `config.json` (the base run's config with the `finetune` group and the
adapted model settings), `finetune.json` (task, label coding, window, base checkpoint, settings, per-seed results,
mean and standard deviation over seeds, the k-mer baseline), and per seed `seed_K/` with `checkpoints/` (the latest
state, for resume), `best/` (the parameters with the best validation selection metric), `metrics.jsonl`,
`tensorboard/` and, once finished, `result.json`. Rerunning the same command resumes an interrupted seed exactly
where it stopped and skips finished ones.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import jax
import numpy as np
from tqdm import tqdm

from dnajax import runtime
from dnajax.data import labels as labels_lib
from dnajax.data import rundir, tables
from dnajax.errors import UserError
from dnajax.evaluation import downstream, finetuned, hand_features, render
from dnajax.evaluation.finetuned import SequencePredictor
from dnajax.model import heads
from dnajax.training import fit as fit_lib
from dnajax.training import guards
from dnajax.training import writer as writer_lib
from dnajax.training.finetune_program import FinetuneProgram

log = logging.getLogger("dnajax")
LOWER_IS_BETTER = ("loss", "rmse")


@dataclasses.dataclass
class Split:
  """One labelled table: its name (train, val, test), rows, encoded targets and, for a head that reads them, the rows'
  hand features float64[N, F] (`hand_features.matrix`)."""

  name: str
  table: tables.SequenceTable
  targets: np.ndarray
  features: np.ndarray | None = None


@dataclasses.dataclass
class Job:
  """What every seed of one fine-tuning shares."""

  cfg: object  # the fine-tuned model's config
  output: str
  coding: labels_lib.LabelCoding
  window: int
  windows_per_row: int  # windows of the longest training sequence: the training batch's W
  splits: dict  # name -> Split
  base_params: dict
  predictor: SequencePredictor  # compiled once; bound to each state's parameters
  progress: bool


def evaluate(job: Job, params, split: str) -> dict:
  """`finetuned.split_metrics` of the model with `params` on one of the job's labelled splits."""
  s = job.splits[split]
  outputs = job.predictor.bind(params).outputs(s.table.seqs, features=s.features)
  return finetuned.split_metrics(job.coding, outputs, s.targets)


def select_metric(cfg, task: str) -> str:
  """The validation metric that picks the best checkpoint (`finetune.select`; auto: mcc, or spearman)."""
  sel = cfg.finetune.select
  if sel == "auto":
    return "mcc" if task == "classification" else "spearman"
  allowed = {"classification": ("mcc", "accuracy", "macro_f1", "auroc", "loss"),
             "regression": ("spearman", "pearson", "r2", "loss")}[task]
  if sel not in allowed:
    raise UserError(f"--config.finetune.select={sel}: not a {task} metric; use one of {', '.join(allowed)} (or auto)")
  return sel


def score(metrics: dict, name: str) -> float | None:
  """The selection score (higher is better) of a metrics dict; None when the metric is undefined."""
  v = metrics.get(name)
  return None if v is None else (-v if name in LOWER_IS_BETTER else v)


def _better(a: float | None, b: float | None) -> bool:
  return a is not None and (b is None or a > b)


def _train_record(window: list, task: str, skip_nonfinite: bool, ckpt) -> dict:
  """The train record of one window of (step after the update, step metrics); TrainingDiverged as
  `fit.check_window` (the pretraining loop's check)."""
  first, last = window[0][0], window[-1][0]
  vals, skipped = fit_lib.check_window(window, "loss_sum", skip_nonfinite, ckpt,
                                       f"{DIVERGED_FIX} or set --config.finetune.skip_nonfinite=True")
  rows = sum(float(v["rows"]) for v in vals)
  rec = {"train/loss": sum(float(v["loss_sum"]) for v in vals) / rows if rows else None,
         "train/grad_norm": float(vals[-1]["grad_norm"]), "train/learning_rate": float(vals[-1]["lr"])}
  if task == "classification":
    rec["train/accuracy"] = sum(float(v["correct"]) for v in vals) / rows if rows else None
  if skipped:
    rec["train/skipped_nonfinite_steps"] = skipped
    log.warning("steps %d-%d: skipped %d fine-tuning update(s) with non-finite loss or gradients", first, last,
                skipped)
  return rec


def standardise(job: Job, program: FinetuneProgram, state: dict) -> dict:
  """The state with the head's `pool_shift` / `pool_scale` set to the mean and 1 / standard deviation of the
  starting model's pooled features over the training rows (see `heads.SequenceModel`), and `feature_shift` /
  `feature_scale` likewise from the training rows' hand features."""
  train = job.splits["train"]
  pooled = job.predictor.bind(program.params(state)).pooled(train.table.seqs).astype(np.float64)
  trainable = dict(state["trainable"])
  stats = [("pool", pooled)] + ([("feature", train.features)] if program.num_features else [])
  for name, x in stats:
    for key, value in ((f"{name}_shift", x.mean(0)), (f"{name}_scale", 1.0 / np.maximum(x.std(0), 1e-3))):
      trainable[key] = jax.device_put(value.astype(np.float32), program.state_sh["trainable"][key])
  return {**state, "trainable": trainable}


DIVERGED_FIX = "lower --config.finetune.learning_rate"


@dataclasses.dataclass
class FineTuning:
  """One seed of a fine-tuning as a `fit.Task`: epochs of the training rows in a seeded order, validation every
  `finetune.eval_every` steps (default once per epoch) keeping the best parameters in `best`, early stopping after
  `finetune.patience` validations without improvement, a checkpoint (with this record) at every validation."""

  job: Job
  program: FinetuneProgram
  ckpt: object  # the Checkpointer of seed_K/checkpoints (named by a divergence message)
  best: object  # the Checkpointer of seed_K/best
  writer: writer_lib.MetricsWriter
  bar: tqdm
  metric: str
  record: dict  # best_step, best_score, best_val, since_best, stopped_early, wall_seconds (saved with checkpoints)
  t0: float  # when wall_seconds was last brought up to date

  @property
  def log_every(self) -> int:
    return self.job.cfg.finetune.log_every

  def batch(self, step: int) -> dict:
    train = self.job.splits["train"]
    return self.program.make_batch(step, train.table.seqs, train.targets, train.features)

  def step(self, state: dict, batch: dict):
    return self.program.step(state, batch)

  def read(self, window: list) -> None:
    rec = _train_record(window, self.job.coding.task, bool(self.job.cfg.finetune.skip_nonfinite), self.ckpt)
    self.writer.write(window[-1][0], "train", rec)
    self.bar.set_postfix(loss=render.number(rec["train/loss"], ".3f"))

  def evaluating(self, done: int, total: int) -> bool:
    return done % (self.job.cfg.finetune.eval_every or self.program.steps_per_epoch) == 0 or done == total

  saving = evaluating  # a checkpoint (state and record) at every validation

  def evaluate(self, state: dict, done: int) -> bool:
    record, f = self.record, self.job.cfg.finetune
    val = evaluate(self.job, self.program.params(state), "val")
    self.writer.write(done, "val", render.flatten(val, "val"))
    s = score(val, self.metric)
    if _better(s, record["best_score"]) or record["best_step"] is None:
      record.update(best_step=done, best_score=s, best_val=val, since_best=0)
      self.best.save(done, {"params": self.program.params(state)}, {"step": done, "val": val}, force=True)
    else:
      record["since_best"] += 1
      record["stopped_early"] = bool(f.patience and record["since_best"] >= f.patience)
    self.bar.set_postfix(loss=render.number(val["loss"], ".3f"),
                         **{f"val_{self.metric}": render.number(val[self.metric])})
    return record["stopped_early"]

  def trained(self, state: dict):
    return state["trainable"]

  def meta(self, done: int) -> dict:
    self.record["wall_seconds"] += time.time() - self.t0
    self.t0 = time.time()
    return {"step": done, "record": self.record, "config": self.job.cfg.to_dict()}

  def synced(self, state: dict, done: int) -> None:
    pass


def run_seed(job: Job, seed: int, stop: guards.StopRequest) -> dict:
  """Fine-tune (or resume, or read back) seed `seed` (`fit.fit` of `FineTuning`): its result {seed, best_step,
  select_metric, select_score, val, test (or absent), steps, epochs, stopped_early, wall_seconds}, or {interrupted,
  signal, checkpoint_step}."""
  sdir = rundir.seed_dir(job.output, seed)
  done = rundir.read_result(sdir)
  if done is not None:
    return {**done, "read_back": True}  # finished by an earlier run (the mark is dropped before finetune.json)
  t0 = time.time()
  cfg, train = job.cfg, job.splits["train"]
  program = FinetuneProgram(cfg, job.coding.num_outputs, job.coding.task, len(train.table), job.window,
                            job.windows_per_row, seed, mesh=job.predictor.mesh, positions=job.predictor.positions,
                            num_features=job.predictor.num_features)
  os.makedirs(sdir, exist_ok=True)
  ckpt = rundir.checkpointer(sdir, create=True)
  best = rundir.checkpointer(sdir, best=True, create=True)
  writer = writer_lib.MetricsWriter(sdir, cfg.log.tensorboard)
  metric = select_metric(cfg, job.coding.task)
  start = ckpt.latest_step()
  record = {"best_step": None, "best_score": None, "best_val": None, "since_best": 0, "stopped_early": False,
            "wall_seconds": 0.0}
  if start is None:
    state, start = standardise(job, program, program.init(job.base_params)), 0
  else:
    state, meta = ckpt.restore(start, program.abstract_state)
    record = meta["record"]
    log.info("seed %d: resumed from step %d", seed, start)
  total = start if record["stopped_early"] else program.total_steps
  bar = tqdm(total=program.total_steps, initial=start, desc=f"seed {seed}", unit="step", dynamic_ncols=True,
             disable=not (job.progress and runtime.is_main()))
  task = FineTuning(job, program, ckpt, best, writer, bar, metric, record, t0)
  try:
    state, done, interrupted = fit_lib.fit(task, state, start, total, stop, ckpt, bar, DIVERGED_FIX)
  finally:
    bar.close()
    ckpt.close()
    best.close()
    writer.close()
  if interrupted:
    log.warning("%s: seed %d stopped after step %d (checkpoint saved); rerun the same command to resume",
                stop.name, seed, done)
    return {"interrupted": True, "signal": stop.name, "checkpoint_step": done, "seed": seed}
  # A fresh manager reads the best parameters back (the one that saved them cannot restore a part of the state).
  best = rundir.checkpointer(sdir, best=True)
  try:
    params = best.restore_params(record["best_step"], heads.sharded_abstract_params(
        program.mcfg, job.coding.num_outputs, program.mesh, program.rules, program.positions, program.num_features))
  finally:
    best.close()
  result = {"seed": seed, "best_step": record["best_step"], "select_metric": metric,
            "select_score": record["best_score"], "val": record["best_val"], "steps": done,
            "epochs": done / program.steps_per_epoch, "stopped_early": record["stopped_early"],
            "wall_seconds": record["wall_seconds"] + time.time() - task.t0}
  if "test" in job.splits:
    result["test"] = evaluate(job, params, "test")
  if runtime.is_main():
    rundir.write_result(sdir, render.to_json(result) + "\n")
  return result


def summarise(results: list[dict], split: str) -> dict:
  """{metric: {"mean", "std", "values"}} over seeds of one split's metrics (std: sample standard deviation, 0 for
  one seed; None where a seed's value is undefined)."""
  out = {}
  for k in results[0][split]:
    vals = [r[split][k] for r in results]
    if k == "num_rows" or any(v is None for v in vals):
      out[k] = {"mean": None if any(v is None for v in vals) else vals[0], "std": None, "values": vals}
      continue
    out[k] = {"mean": float(np.mean(vals)), "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
              "values": vals}
  return out


def baselines(coding: labels_lib.LabelCoding, splits: dict, positions: int = 0, organism: str | None = None) -> dict:
  """The baselines fitted on the training rows, scored on val/test: {"kmer": {split: metrics}} (1-4-mer counts,
  `downstream.KmerBaseline`), for a position-wise model (`positions` > 0) "position_onehot" (the base at each
  position, `downstream.PositionBaseline`) and, with an `organism` (coding sequences), "features" (the expression
  features `hand_features.NAMES` against that host)."""
  models = {"kmer": downstream.KmerBaseline(coding.task)}
  if positions:
    models["position_onehot"] = downstream.PositionBaseline(coding.task, positions)
  if organism:
    models["features"] = downstream.LinearBaseline(coding.task, lambda seqs: hand_features.matrix(seqs, organism))
  train = splits["train"]
  out = {}
  for name, model in models.items():
    model.fit(train.table.seqs, train.targets)
    out[name] = {}
    for split in ("val", "test"):
      if split in splits:
        s = splits[split]
        if coding.task == "classification":
          out[name][split] = downstream.classification_metrics(
              s.targets, model.predict(s.table.seqs, len(coding.classes)), coding.classes)
        else:
          out[name][split] = downstream.regression_metrics(s.targets * coding.std + coding.mean,
                                                           model.predict(s.table.seqs) * coding.std + coding.mean)
  return out
