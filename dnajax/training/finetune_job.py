"""`finetune(...)`: everything around the fine-tuning loop - the fine-tuned model's config, the labelled tables, the
base checkpoint, the fine-tuning directory (created, checked on resume, removed again when set-up fails), the seeds
and the summary beside the k-mer baseline."""

from __future__ import annotations

import logging
import os
import shutil
import time

import numpy as np

from dnajax import config as config_lib
from dnajax import runtime, sharding
from dnajax.data import corpus, rundir, tables, tokens, windows
from dnajax.data import labels as labels_lib
from dnajax.errors import UserError
from dnajax.evaluation import hand_features, render
from dnajax.evaluation.finetuned import SequencePredictor
from dnajax.model import encoder
from dnajax.training import finetune_loop as loop_lib
from dnajax.training import guards
from dnajax.training.finetune_program import FinetuneProgram

log = logging.getLogger("dnajax")
OVERRIDABLE = ("finetune.", "mesh.", "eval.batch", "log.")
BASELINE_NAMES = {"kmer": "baseline: 1-4-mer counts", "position_onehot": "baseline: one-hot base per position",
                  "features": "baseline: expression features"}


def finetune_config(base_cfg, overrides=(), method: str | None = None, task: str = "classification"):
  """The fine-tuned model's config: the base run's config with `--config.finetune.*` (and mesh.*, eval.batch,
  log.*) overrides and `method` applied (auto: lora for classification, trees for regression), and the model group
  adapted (adapters for lora, finetune.dropout).

  Raises UserError for an override of another key (the model is the base run's) or a value out of range."""
  cfg = config_lib.from_json(config_lib.to_json(base_cfg))
  for key, value in overrides:
    if not key.startswith(OVERRIDABLE):
      raise UserError(f"--config.{key}: fine-tuning takes --config.finetune.* (and mesh.*, eval.batch, log.*) "
                      "overrides; the model and its pretraining are the base run's")
    config_lib.apply_override(cfg, key, value)
  with cfg.unlocked():
    if method is not None:
      cfg.finetune.method = method
    f = cfg.finetune
    if f.method == "auto":
      f.method = "trees" if task == "regression" else "lora"
    lora = f.method == "lora"
    cfg.model.lora_rank = int(f.lora_rank) if lora else 0
    cfg.model.lora_alpha = float(f.lora_alpha)
    cfg.model.dropout = float(f.dropout)
  config_lib.check(cfg)
  return cfg


def choose_window(cfg, train: tables.SequenceTable) -> int:
  """`finetune.window` (default: the base run's data.seq_len), shortened to the longest training sequence rounded up
  to a multiple of 8. Raises UserError for a window longer than model.max_len."""
  base, longest = int(cfg.data.seq_len), -(-max(len(s) for s in train.seqs) // 8) * 8
  w = int(cfg.finetune.window)
  if w > cfg.model.max_len:
    raise UserError(f"--config.finetune.window={w}: longer than model.max_len={cfg.model.max_len}, the longest "
                    f"window this model takes; pass a window <= {cfg.model.max_len} (longer sequences are read "
                    "through overlapping windows)")
  return min(w or base, longest)


def choose_positions(cfg, train: tables.SequenceTable, window: int) -> int:
  """The positions a position-wise head reads (the longest training sequence), or 0 for mean pooling, from
  `finetune.pool` (auto: position-wise when every training sequence has the same length and fits one window).
  Raises UserError for `positions` with training sequences longer than the window."""
  lengths = {len(s) for s in train.seqs}
  pool, longest = cfg.finetune.pool, max(lengths)
  if pool == "positions" and longest > window:
    raise UserError(f"--config.finetune.pool=positions: training sequences of up to {longest} bases do not fit one "
                    f"window of {window}; pass --config.finetune.window={-(-longest // 8) * 8} or use pool=mean")
  if pool == "positions" or (pool == "auto" and len(lengths) == 1 and longest <= window):
    return longest
  return 0


def read_splits(paths: dict, task: str, sequence_column: str, label_column: str):
  """(label coding fitted on train, {name: loop.Split}) for the labelled tables {name: path} (train, val, test)."""
  read = {n: tables.read_table(p, sequence_column, label_column, require_labels=True) for n, p in paths.items()}
  coding = labels_lib.LabelCoding.fit(task, read["train"])
  splits = {n: loop_lib.Split(n, t, coding.targets(t)) for n, t in read.items()}
  val = splits["val"].targets
  if len(np.unique(val)) < 2:  # no selection metric (MCC, Spearman) has a value then
    what = "one class" if task == "classification" else "one value"
    raise UserError(f"{paths['val']}: every validation row has {what}; the best checkpoint is chosen on a metric "
                    "(MCC or Spearman) that has no value then: pass validation rows with at least two "
                    f"{'classes' if task == 'classification' else 'distinct values'}")
  for split in splits.values():
    coding.say_absent(split.table.source, split.targets)
  return coding, splits



def _settings(cfg, base: dict, coding, window: int, paths: dict, columns: dict) -> dict:
  """What a fine-tuning directory is fixed to: a rerun must match it to resume."""
  return {"base": base, "task": coding.task, "coding": coding.to_dict(), "window": window, "columns": columns,
          "inputs": {n: {"path": os.path.abspath(p), "sha256": corpus.sha256_file(p)} for n, p in paths.items()},
          "finetune": cfg.finetune.to_dict(),
          "model": cfg.model.to_dict()}


def check_output(output: str, base_workdir: str, settings: dict) -> dict | None:
  """The existing finetune.json of `output` when it holds this same fine-tuning (to resume), None for a new or empty
  directory. Raises UserError for the base run's own directory, a file, a non-empty directory that is not a
  fine-tuning, or one with other settings (naming the first that differs)."""
  rundir.check_new(output, "--output")
  if os.path.abspath(output) == os.path.abspath(base_workdir):
    raise UserError(f"--output {output}: is the base run's --workdir; give the fine-tuning its own directory")
  if os.path.exists(output) and not os.path.isdir(output):
    raise UserError(f"--output {output}: is a file; give a directory for the fine-tuning")
  if rundir.kind(output) != rundir.FINETUNING:
    if os.path.isdir(output) and os.listdir(output):
      raise UserError(f"--output {output}: a non-empty directory that is not a fine-tuning (no {rundir.FINETUNE}); "
                      "give a new or empty directory")
    return None
  info = rundir.read_info(output)
  for key in sorted(settings, key=lambda k: k != "inputs"):  # a changed input file explains any other change
    if info.get(key) != settings[key]:
      a, b = info.get(key), settings[key]
      if isinstance(a, dict) and isinstance(b, dict):
        sub = next(k for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k))
        key, a, b = f"{key}.{sub}", a.get(sub), b.get(sub)
        if isinstance(a, dict) and isinstance(b, dict) and a.get("path") == b.get("path"):
          raise UserError(f"--output {output}: was fine-tuned on another version of {b['path']} (its contents "
                          "changed since); give a new --output, or restore the file to resume")
      raise UserError(f"--output {output}: holds a fine-tuning with other settings ({key}: {a!r} there, {b!r} now); "
                      "rerun with the same arguments to resume, or give a new --output")
  return info


def start_output(output: str, cfg, info: dict, train_table) -> None:
  """Writes (main process) config.json, finetune.json and the training sequences (TRAIN_SEQUENCES: one per line, in
  the training table's order; `dnajax design` measures a design's distance to them) into `output`."""
  if not runtime.is_main():
    return
  os.makedirs(output, exist_ok=True)
  rundir.write_config(output, cfg)
  rundir.write_info(output, render.to_json(info) + "\n")
  rundir.write_training_sequences(output, [tokens.decode(s) for s in train_table.seqs])


def load_base(base_workdir: str, step: int | None):
  """(base config, {workdir, step, config}) of a pretraining run. Raises UserError for a directory that is not
  one (or is a fine-tuning) and a missing step."""
  cfg = rundir.pretraining(base_workdir)
  ckpt = rundir.checkpointer(base_workdir, cfg)
  try:
    step = ckpt.resolve_step(step)
  finally:
    ckpt.close()
  return cfg, {"workdir": rundir.reference(base_workdir), "step": int(step), "model": cfg.model.to_dict()}


def restore_base(base: dict, cfg, mesh, rules) -> dict:
  """The base run's encoder parameters of its recorded step, placed on `mesh`."""
  mcfg = encoder.config_from({**cfg.model.to_dict(), "lora_rank": 0})
  ckpt = rundir.checkpointer(base["workdir"], cfg)
  try:
    return ckpt.restore_params(base["step"], encoder.sharded_abstract_params(mcfg, mesh, rules))
  finally:
    ckpt.close()


def finetune(base_workdir: str, paths: dict, output: str, task: str = "classification", method: str | None = None,
             overrides=(), seeds=(0,), sequence_column: str = "sequence", label_column: str = "label",
             base_step: int | None = None, progress: bool = True) -> dict:
  """Fine-tune the pretraining run `base_workdir` on the labelled tables `paths` {train, val[, test]}: one model
  per seed in `output`, each seed's best validation checkpoint selected. Returns the finetune.json content
  (settings, runs per seed, summary {split: {metric: {mean, std, values}}}, baselines {name: {split: metrics}},
  wall_seconds) or {interrupted, signal, checkpoint_step, seed} after SIGTERM/SIGINT.

  Raises UserError (one line; nothing written) for bad tables, labels, settings or directories."""
  t0 = time.time()
  base_cfg, base = load_base(base_workdir, base_step)
  cfg = finetune_config(base_cfg, overrides, method, task)
  guards.check_finite_config(cfg)
  select = loop_lib.select_metric(cfg, task)  # a metric of the other task: refused before anything is written
  coding, splits = read_splits(paths, task, sequence_column, label_column)
  columns = {"sequence": sequence_column, "label": label_column}
  if cfg.finetune.method == "trees":
    return _finetune_trees(cfg, base, coding, splits, paths, columns, output, base_workdir, seeds, select, progress,
                           t0)
  window = choose_window(cfg, splits["train"].table)
  positions = choose_positions(cfg, splits["train"].table, window)
  features = hand_features.choose(cfg.finetune.features, cfg.finetune.organism, splits["train"].table)
  settings = {**_settings(cfg, base, coding, window, paths, columns), "positions": positions, "features": features}
  info = check_output(output, base_workdir, settings) or {**settings, "runs": {}}
  organism = str(cfg.finetune.organism) if features == "expression" else None
  mesh = sharding.make_mesh(cfg.mesh)
  rules = sharding.rules_from_config(cfg.mesh.rules)
  predictor = SequencePredictor(encoder.config_from(cfg.model.to_dict()), coding, window, None, mesh, rules,
                                cfg.eval.batch, positions, organism)
  for split in splits.values():
    predictor.check_lengths(split.table)
    split.features = predictor.features(split.table.seqs, [labels_lib.row_name(split.table, i)
                                                           for i in range(len(split.table))])
  wpr = max(windows.num_windows(len(s), window) for s in splits["train"].table.seqs)
  FinetuneProgram(cfg, coding.num_outputs, task, len(splits["train"].table), window, wpr, 0, mesh=mesh,
                  positions=positions, num_features=predictor.num_features)  # checks the batch against the mesh
  if organism:
    info["organism"] = organism
  created = not os.path.exists(output)
  try:
    base_params = restore_base(base, cfg, mesh, rules)
    start_output(output, cfg, info, splits["train"].table)
  except UserError:
    if created:
      shutil.rmtree(output, ignore_errors=True)
    raise
  log.info("%s", runtime.describe(mesh))
  log.info("fine-tuning %s (step %d), method %s, %s: %d train / %d val rows, window %d, %s%s", base_workdir,
           base["step"], cfg.finetune.method, task if task == "regression" else f"{len(coding.classes)} classes",
           len(splits["train"].table), len(splits["val"].table), window,
           f"position-wise head over {positions} positions" if positions else "mean pooling",
           f", {predictor.num_features} hand features of coding sequences" if organism else "")
  job = loop_lib.Job(cfg, output, coding, window, wpr, splits, base_params, predictor, progress)
  stop = guards.StopRequest()
  stop.install()
  try:
    for seed in seeds:
      result = loop_lib.run_seed(job, int(seed), stop)
      if result.get("interrupted"):
        return result
      info["runs"][str(seed)] = result
  except guards.TrainingDiverged:
    # A diverged fine-tuning keeps nothing a rerun would have to match: one this command created is removed whole,
    # so the fix the message advises (another learning rate) can be run into the same --output.
    if created and not any(rundir.read_result(rundir.seed_dir(output, s)) for s in seeds):
      shutil.rmtree(output, ignore_errors=True)
    raise
  finally:
    stop.uninstall()
  return _finish(info, output, coding, splits, positions, seeds, t0)


def _finish(info: dict, output: str, coding, splits: dict, positions: int, seeds, t0: float) -> dict:
  """Summary over seeds and baselines into finetune.json (written by the main process); returns it. A rerun that
  found every seed finished keeps the wall_seconds of the run that trained them."""
  results = [info["runs"][str(s)] for s in seeds]
  trained = [r for r in results if not r.get("read_back")]
  for r in results:
    r.pop("read_back", None)
  info["summary"] = {split: loop_lib.summarise(results, split) for split in ("val", "test") if split in results[0]}
  info["baselines"] = loop_lib.baselines(coding, splits, positions, info.get("organism"))
  info["seeds"] = [int(s) for s in seeds]
  if trained or "wall_seconds" not in info:
    info["wall_seconds"] = time.time() - t0
  if runtime.is_main():
    rundir.write_info(output, render.to_json(info) + "\n")
  return info


def _finetune_trees(cfg, base: dict, coding, splits: dict, paths: dict, columns: dict, output: str,
                    base_workdir: str, seeds, select: str, progress: bool, t0: float) -> dict:
  """finetune() for method trees (`finetune_trees`): same directory layout, settings check and summary."""
  from dnajax.training import finetune_trees

  rep = finetune_trees.representation(cfg, splits["train"].table)
  settings = {**_settings(cfg, base, coding, 0, paths, columns), "positions": rep.positions,
              "features": rep.features}
  info = check_output(output, base_workdir, settings) or {**settings, "runs": {}}
  created = not os.path.exists(output)
  try:
    start_output(output, cfg, info, splits["train"].table)
    log.info("fine-tuning %s (step %d), method trees, %s: %d train / %d val rows, %s, features %s", base_workdir,
             base["step"], coding.task if coding.task == "regression" else f"{len(coding.classes)} classes",
             len(splits["train"].table), len(splits["val"].table),
             f"{rep.components} components at each of {rep.positions} positions" if rep.positions else "mean state",
             rep.features)
    runs = finetune_trees.run(cfg, output, coding, splits, base, rep, seeds, select, progress)
  except UserError:
    if created:
      shutil.rmtree(output, ignore_errors=True)
    raise
  info["runs"].update({str(s): r for s, r in runs.items()})
  if rep.features == "expression":
    info["organism"] = rep.organism
  return _finish(info, output, coding, splits, rep.positions, seeds, t0)


def summary_table(info: dict) -> str:
  """The summary as a Markdown table: per split, the model's metrics (mean +- std over seeds) and each
  baseline's, the same columns."""
  task = info["task"]
  cols = ["mcc", "accuracy", "macro_f1", "auroc", "loss"] if task == "classification" else \
      ["spearman", "pearson", "r2", "rmse", "loss"]
  n = len(info.get("seeds", [0]))
  lines = ["| split | rows | model | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 3)]
  for split, summary in info["summary"].items():
    rows = summary["num_rows"]["mean"]
    cells = []
    for c in cols:
      m = summary.get(c, {"mean": None, "std": None})
      cells.append(render.number(m["mean"]) + (f" +- {render.number(m['std'])}" if n > 1 and m["std"] is not None
                                               else ""))
    lines.append(f"| {split} | {rows} | dnajax {info['finetune']['method']} ({n} seed{'s' * (n > 1)}) | "
                 + " | ".join(cells) + " |")
    for name, what in BASELINE_NAMES.items():
      if name in info["baselines"]:
        b = info["baselines"][name].get(split, {})
        model = "logistic" if task == "classification" else "ridge"
        lines.append(f"| {split} | {rows} | {what} + {model} regression | "
                     + " | ".join(render.number(b.get(c)) for c in cols) + " |")
  return "\n".join(lines)
