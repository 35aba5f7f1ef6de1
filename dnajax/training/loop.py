"""The training loop: `train_and_evaluate(cfg, workdir)` trains or resumes a run and returns its final validation.

Resume order: (1) the config saved in the workdir is checked against this one, (2) the corpus is prepared (process
0) or opened, (3) the latest checkpoint is restored into the abstract sharded state, (4) the samplers continue at
that step (their rows depend only on seed and step). Metrics stay on the device and are read once per logging
window, after the next step has been dispatched, so the loop never waits on the device in between.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time

import jax
import psutil
from jax.experimental import multihost_utils
from tqdm import tqdm

from dnajax import checkpoint, runtime, sharding
from dnajax import config as config_lib
from dnajax.data import rundir, sources
from dnajax.data import sampler as sampler_lib
from dnajax.errors import UserError
from dnajax.evaluation import render
from dnajax.evaluation.engine import Engine
from dnajax.evaluation.validation import Validation
from dnajax.model import encoder
from dnajax.training import aot, guards, optim
from dnajax.training import fit as fit_lib
from dnajax.training import writer as writer_lib
from dnajax.training.program import TrainProgram

log = logging.getLogger("dnajax")


@dataclasses.dataclass
class Run:
  """What a training run holds fixed while it steps."""

  cfg: object
  program: TrainProgram
  samplers: dict  # window length -> WindowSampler
  rows: range  # this process's rows of every global batch
  validation: Validation
  engine: Engine  # the model on the training mesh, for validation (compiled once; bound to the current params)
  ckpt: checkpoint.Checkpointer
  writer: writer_lib.MetricsWriter

  def next_batch(self, step: int) -> dict:
    """This process's rows of `step`'s batch, uint8 windows the step masks, as global arrays (runs in a worker
    thread, overlapping the step)."""
    return self.program.to_global(self.samplers[self.program.seq_len_at(step)].rows(step, self.rows))

  def tokens(self, first: int, end: int) -> int:
    """Training tokens in steps [first, end)."""
    return sum(self.cfg.train.global_batch * self.program.seq_len_at(s) for s in range(first, end))


@dataclasses.dataclass
class LoopState:
  """What changes as the loop steps, besides the train state."""

  bar: tqdm
  clock_time: float  # when the throughput clock last started
  clock_step: int  # the step it started at


def read_window(run: Run, loop: LoopState, window: list) -> None:
  """Read one logging window's metrics (a host sync), stop on divergence, write the train record, restart the
  throughput clock. `window` holds (step after the update, device metrics) pairs."""
  vals, skipped = fit_lib.check_window(window, "mlm_ce_sum", run.cfg.opt.skip_nonfinite, run.ckpt,
                                       "lower opt.learning_rate, raise opt.warmup_steps or set opt.skip_nonfinite=True")
  first, end_step = window[0][0], window[-1][0]
  count = sum(float(v["count"]) for v in vals)  # 0: no masked base in the window; its means are None, not 0
  ce = sum(float(v["mlm_ce_sum"]) for v in vals) / count if count else None
  now = time.time()
  tps = run.tokens(loop.clock_step, end_step) / max(now - loop.clock_time, 1e-9)
  loop.clock_time, loop.clock_step = now, end_step
  rec = {"train/mlm_cross_entropy": ce, "train/mlm_perplexity": math.exp(min(ce, 50.0)) if count else None,
         "train/masked_accuracy": sum(float(v["correct"]) for v in vals) / count if count else None,
         "train/grad_norm": float(vals[-1]["grad_norm"]), "train/learning_rate": float(vals[-1]["lr"]),
         "train/seq_len": run.program.seq_len_at(end_step - 1), "perf/tokens_per_second": tps,
         "perf/host_rss_gib": psutil.Process().memory_info().rss / 2**30}
  if skipped:
    rec["train/skipped_nonfinite_steps"] = skipped
    log.warning("steps %d-%d: skipped %d update(s) with non-finite loss or gradients", first, end_step, skipped)
  mem = writer_lib.device_memory_gib()
  if mem is not None:
    rec["perf/device_memory_gib"] = mem
  run.writer.write(end_step, "train", rec)
  loop.bar.set_postfix(mlm_ce=render.number(ce, ".3f"), acc=render.number(rec["train/masked_accuracy"], ".3f"),
                       tok_s=f"{tps:,.0f}")


def validate(run: Run, state: dict, step: int) -> dict:
  """The validation result of the current parameters, written as a `val/...` record."""
  result = run.validation.run(run.engine.bind(state["params"]))
  run.writer.write(step, "val", render.flatten(result, "val"))
  return result


DIVERGED_FIX = "lower opt.learning_rate or raise opt.warmup_steps"


@dataclasses.dataclass
class Pretraining:
  """Masked-nucleotide pretraining as a `fit.Task`: batches from the samplers, validation against the Bayes limit
  and baselines every `train.eval_every` steps, checkpoints every `ckpt.every` (and at the end)."""

  run: Run
  loop: LoopState
  final: dict | None = None  # the last validation

  @property
  def log_every(self) -> int:
    return self.run.cfg.train.log_every

  def batch(self, step: int) -> dict:
    return self.run.next_batch(step)

  def step(self, state: dict, batch: dict):
    return self.run.program.step(state, batch)

  def read(self, window: list) -> None:
    read_window(self.run, self.loop, window)

  def evaluating(self, done: int, total: int) -> bool:
    return done % self.run.cfg.train.eval_every == 0 or done == total

  def saving(self, done: int, total: int) -> bool:
    return done % self.run.cfg.ckpt.every == 0 or done == total

  def evaluate(self, state: dict, done: int) -> bool:
    self.final = validate(self.run, state, done)
    if runtime.is_main():
      tqdm.write(f"step {done}: validation {render.validation_line(self.final)}")
    return False

  def trained(self, state: dict):
    return state["params"]

  def meta(self, done: int) -> dict:
    return {"step": done, "config": self.run.cfg.to_dict(), "data_position": {"next_step": done}}

  def synced(self, state: dict, done: int) -> None:  # tokens/s measures training: validation and saves left out
    jax.block_until_ready(state["step"])
    self.loop.clock_time, self.loop.clock_step = time.time(), done


def train_steps(run: Run, loop: LoopState, state: dict, start: int, total: int, stop: guards.StopRequest):
  """Steps `start`..`total` (`fit.fit` of `Pretraining`) -> (state, last validation or None, interrupted {signal,
  checkpoint_step} or None)."""
  task = Pretraining(run, loop)
  state, done, interrupted = fit_lib.fit(task, state, start, total, stop, run.ckpt, loop.bar, DIVERGED_FIX)
  if interrupted:
    log.warning("%s: stopped after step %d and saved a checkpoint there; rerun the same command to resume",
                stop.name, done)
  return state, task.final, interrupted


# What the learning-rate schedule is made of (and, through train.steps, the curriculum's stages).
SCHEDULE_KEYS = ("train.steps", "opt.learning_rate", "opt.warmup_steps", "opt.end_lr_fraction")


def _saved_config(meta: dict | None):
  try:
    return config_lib.from_json(json.dumps(meta["config"]))
  except Exception:  # an old or foreign checkpoint without a readable config
    return None


def differences(saved, cfg, keys, same=lambda a, b: a == b) -> list[tuple[str, object, object]]:
  """[(key, saved value, this config's value)] for the "group.leaf" `keys` where `same` says the two differ; a key
  the saved config lacks (an older run's) is left out."""
  out = []
  for key in keys:
    group, leaf = key.split(".")
    a, b = saved.get(group, {}).get(leaf), cfg[group][leaf]
    if a is not None and not same(a, b):
      out.append((key, a, b))
  return out


def schedule_change(saved, cfg, step: int) -> str | None:
  """One line saying how the learning-rate schedule at `step` changes from the `saved` config's to `cfg`'s, or
  None when every key it is made of (SCHEDULE_KEYS) is the same."""
  changed = differences(saved, cfg, SCHEDULE_KEYS)
  if not changed:
    return None
  old, new = (float(optim.schedule(c.opt.learning_rate, c.opt.warmup_steps, c.train.steps, c.opt.end_lr_fraction)(step))
              for c in (saved, cfg))
  trend = "rises again" if new > old else "drops" if new < old else "stays"
  stages = "; the curriculum stages move with train.steps" if cfg.data.curriculum and any(
      k == "train.steps" for k, _, _ in changed) else ""
  return (f"resuming at step {step} with {', '.join(f'{k} {a} -> {b}' for k, a, b in changed)} (the checkpoint's "
          f"config -> this one): the learning-rate schedule now spans {cfg.train.steps} steps and the rate at step "
          f"{step} {trend} ({old:.3g} -> {new:.3g}){stages}; to keep the old schedule pass "
          + " ".join(f"--config.{k}={a}" for k, a, _ in changed))


# What the training batches are drawn and masked from (not the model, not the schedule).
DATA_KEYS = ("data.weights", "data.softmask_weight", "data.mask_rate", "data.mask_rate_max")
EMPTY = "(empty: the corpus's own weights)"  # data.weights left empty


def _shown(v) -> str:
  return ",".join(f"{float(x):g}" for x in v) if isinstance(v, (list, tuple)) else f"{v:g}" if isinstance(
      v, float) else str(v)


def data_change(saved, cfg, step: int) -> str | None:
  """One line saying which of DATA_KEYS (the mixture weights, the soft-mask loss weight, the mask rates) differ
  between the `saved` config (the checkpoint's: the settings of the run that wrote it) and `cfg` when resuming at
  `step`, or None when none does (or the saved config predates the key)."""
  changed = [(k, _shown(a), _shown(b))
             for k, a, b in differences(saved, cfg, DATA_KEYS, lambda a, b: _shown(a) == _shown(b))]
  if not changed:
    return None
  return (f"resuming at step {step} with {', '.join(f'{k} {a or EMPTY} -> {b or EMPTY}' for k, a, b in changed)} "
          f"(the checkpoint's config -> this one): the batches from step {step} on are drawn and masked with the new "
          "values; to keep the checkpoint's settings pass "
          + " ".join(f"--config.{k}={a}" for k, a, _ in changed))


def model_differences(saved, cfg) -> list[tuple[str, object, object]]:
  """[(model key, saved value, this config's value)] where the two model configs differ."""
  a, b = saved.model.to_dict(), cfg.model.to_dict()
  return [(k, a.get(k), b[k]) for k in sorted(b) if a.get(k) != b[k]]


def resume(program: TrainProgram, ckpt: checkpoint.Checkpointer, step: int, previous=None) -> dict:
  """The train state of checkpoint `step`; the log says when the learning-rate schedule or the data (DATA_KEYS)
  differ from the ones the checkpoint was trained with (its saved config, else `previous`, the workdir's old
  config.json). Raises UserError naming another model's checkpoint, or a checkpoint that cannot be read."""
  cfg = program.cfg
  try:
    state, meta = program.restore(ckpt, step)
  except UserError:
    try:
      saved = _saved_config(ckpt.restore_meta(step)) or previous
    except Exception:
      saved = previous
    diff = [d for d in model_differences(saved, cfg) if d[0] in checkpoint.SHAPE_KEYS] if saved is not None else []
    if not diff:  # not a model of other shapes: the checkpoint's own line (unreadable, corrupt) stands
      raise
    raise UserError(f"{os.path.join(ckpt.directory, str(step))}: another model's checkpoint ("
                    f"{', '.join(f'model.{k} {a} there, {b} here' for k, a, b in diff)}); use a new --workdir (or "
                    "--config.ckpt.dir), or the same model config: "
                    + " ".join(f"--config.model.{k}={a}" for k, a, _ in diff)) from None
  log.info("resumed from checkpoint step %d", step)
  saved = _saved_config(meta) or previous
  notes = [schedule_change(saved, cfg, step), data_change(saved, cfg, step)] if saved is not None else []
  for note in notes:
    if note and runtime.is_main():  # one line, not one per process
      log.warning("%s", note)
  return state


# What the corpus of a run is built from, besides data.sources (compared as paths): resuming with other values would
# rebuild it (other training and validation bases under the same checkpoint). train.seed also draws the held-out
# records and blocks.
CORPUS_KEYS = ("data.split", "data.val_fraction", "data.n_run", "data.min_len", "data.cds", "data.format",
               "train.seed")
SYNTHETIC_KEYS = ("data.synthetic_bases", "data.synthetic_record_len")


def _same_sources(a, b) -> bool:
  """The same entries, as given or as the same paths from here."""
  a, b = [str(x) for x in a], [str(x) for x in b]
  return a == b or [os.path.realpath(x) for x in a] == [os.path.realpath(x) for x in b]


def check_same_corpus(previous, cfg, workdir: str) -> None:
  """UserError when `workdir` holds checkpoints trained on a corpus other than the one `cfg` builds (data.sources,
  CORPUS_KEYS or, for a synthetic source, its size differ from the run's config.json `previous`), naming
  each difference and the options that resume the run on its own data."""
  ckdir = rundir.checkpoints_dir(workdir, cfg)
  if not os.path.isdir(ckdir) or not any(name.isdigit() for name in os.listdir(ckdir)):
    return
  synthetic = any(str(x).startswith(sources.SYNTHETIC_PREFIX) for x in cfg.data.sources)
  diff = differences(previous, cfg, ("data.sources",), _same_sources) + differences(
      previous, cfg, CORPUS_KEYS + (SYNTHETIC_KEYS if synthetic else ()))
  if not diff:
    return
  text = {k: (" ".join(map(str, a)), " ".join(map(str, b))) if k == "data.sources" else (str(a), str(b))
          for k, a, b in diff}
  fixes = " ".join(f"--data {text[k][0]}" if k == "data.sources" else f"--config.{k}={text[k][0]}" for k in text)
  raise UserError(f"{workdir}: holds checkpoints trained on other data ("
                  + ", ".join(f"{k} {a} there, {b} here" for k, (a, b) in text.items())
                  + "); resuming would rebuild its corpus and change its training and validation bases; to resume "
                  f"pass {fixes}, or train a new --workdir")


def prepare_workdir(cfg, workdir: str):
  """Check the workdir against this config, then build (process 0) or open the corpus: (corpus, the workdir's
  config.json as it was, or None). config.json is written later, once the run is sure to train (`save_config`).

  Raises UserError for a workdir of another model or bad data."""
  rundir.check_new(workdir, "--workdir")
  if rundir.imported(workdir):
    raise UserError(f"{workdir}: an imported run (parameters only, no optimizer state) cannot be resumed; fine-tune "
                    f"it (`dnajax finetune --workdir {workdir}`) or train a new --workdir")
  previous = rundir.read_config(workdir)
  if previous is not None:
    if previous.model.to_dict() != cfg.model.to_dict():
      raise UserError(f"{workdir}: holds a run with a different model config; use a new --workdir or the same "
                      "--config.model.* values")
    check_same_corpus(previous, cfg, workdir)
  os.makedirs(workdir, exist_ok=True)
  if runtime.is_main():
    corpus = sources.build_corpus(cfg.data, workdir, cfg.train.seed)
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices("dnajax:corpus")
  if not runtime.is_main():
    corpus = sources.build_corpus(cfg.data, workdir, cfg.train.seed)
  return corpus, previous


def save_config(cfg, workdir: str) -> None:
  """WORKDIR/config.json (process 0), written whole or not at all."""
  if runtime.is_main():
    rundir.write_config(workdir, cfg)


def check_windows(cfg, corpus) -> None:
  """Refuse windows longer than every training segment: they would be mostly padding (and may not fit memory)."""
  longest = max((s["length"] for s in corpus.split("train")), default=0)
  if longest and cfg.data.seq_len > longest:
    raise UserError(f"config: data.seq_len={cfg.data.seq_len} is longer than the longest training segment of "
                    f"{corpus.path} ({longest:,} bases); lower data.seq_len (or data.synthetic_record_len)")


def set_up(cfg, workdir: str, program: TrainProgram, stop_at: int | None):
  """Corpus, samplers, validation and the train state: (run, state, start, total). Writes config.json only when
  there is training to do (a finished run's config.json is left as it was); a new workdir that fails here is
  removed again, so a bad input or config leaves nothing behind."""
  created = not os.path.exists(workdir)
  try:
    corpus, previous = prepare_workdir(cfg, workdir)
    check_windows(cfg, corpus)
    weights = cfg.data.weights or corpus.source_weights() or ()
    samplers = {length: sampler_lib.WindowSampler(corpus, length, cfg.train.seed, cfg.data.max_n_fraction,
                                                  cfg.data.reverse_complement, weights=weights,
                                                  soft=program.soft_batches)
                for length in sorted({length for _, length in program.curriculum})}
    validation = Validation(cfg, corpus)
  except UserError:
    if created:
      shutil.rmtree(workdir, ignore_errors=True)
    raise
  log.info("%s", runtime.describe(program.mesh))
  for line in corpus.source_warnings("--config.data.split=blocks") if runtime.is_main() else []:
    log.warning("%s", line)
  log.info("corpus %s: %d bases, %d train / %d val segments; validation: %d masked bases%s", corpus.path,
           corpus.index["total_bases"], len(corpus.split("train")), len(corpus.split("val")),
           validation.num_masked,
           f", Bayes-optimal accuracy {render.number(validation.bayes['masked_accuracy'])}" if validation.bayes else "")
  ckpt = rundir.checkpointer(workdir, cfg, create=True, async_save=cfg.ckpt.async_save)
  start = ckpt.latest_step()
  if start is not None:
    state = resume(program, ckpt, start, previous)
  else:
    state, start = program.init(), 0
  log.info("model: %s parameters", f"{encoder.count_params(state['params']):,}")
  total = cfg.train.steps if stop_at is None else max(min(cfg.train.steps, stop_at), start)
  if start < total or previous is None:
    save_config(cfg, workdir)
  elif start >= cfg.train.steps and cfg.train.steps != previous.train.steps:
    log.info("nothing to train: checkpoint step %d >= train.steps %d; %s keeps the run's config", start,
             cfg.train.steps, os.path.join(workdir, rundir.CONFIG))
  run = Run(cfg, program, samplers, sharding.process_rows(cfg.train.global_batch), validation,
            Engine(cfg, state["params"], program.mesh, program.rules), ckpt,
            writer_lib.MetricsWriter(workdir, cfg.log.tensorboard))
  return run, state, start, total


def train_and_evaluate(cfg, workdir: str, show_progress: bool = True, stop_at: int | None = None) -> dict:
  """Train (resuming from the latest checkpoint in `workdir` if any); returns the final validation result (the
  schema of `Validation.run`) with checkpoint_step and wall_seconds, or {interrupted, signal, checkpoint_step,
  wall_seconds} after SIGTERM/SIGINT (also one that arrives during set-up: the run stops after its first step).

  `stop_at` ends this run early at that step (validated and checkpointed) while the schedule still spans
  `train.steps`: rerunning continues exactly where it stopped. Raises UserError (one line) for bad configs, inputs
  and workdirs, and `guards.TrainingDiverged` for non-finite training.
  """
  t_start = time.time()
  guards.check_finite_config(cfg)  # config.json and checkpoint metadata are strict JSON
  program = TrainProgram(aot.starting_config(cfg))  # validates the config before anything is written
  guards.check_resources(cfg, program, workdir)
  # Compile the step (the executable the first step runs) and check its memory against the device's, resolving
  # train.grad_accum=auto: a step that does not fit is refused before anything is written.
  plan = aot.plan_step(cfg, program)
  plan.require()
  cfg, program = plan.cfg, plan.program
  stop = guards.StopRequest()
  stop.install()  # from here a SIGINT/SIGTERM is a request, honoured after the next step (never mid-compile)
  run = None
  try:
    run, state, start, total = set_up(cfg, workdir, program, stop_at)
    loop = LoopState(tqdm(total=total, initial=start, disable=not (show_progress and runtime.is_main()),
                          unit="step", dynamic_ncols=True), time.time(), start)
    state, final, interrupted = train_steps(run, loop, state, start, total, stop)
    loop.bar.close()
    if interrupted:
      return {**interrupted, "interrupted": True, "wall_seconds": time.time() - t_start}
    if final is None:  # nothing left to train: report the restored state
      final = run.validation.run(run.engine.bind(state["params"]))
  finally:
    stop.uninstall()
    if run is not None:
      run.ckpt.close()
      run.writer.close()
  final["checkpoint_step"] = int(total if start < total else start)
  final["wall_seconds"] = time.time() - t_start
  return final
