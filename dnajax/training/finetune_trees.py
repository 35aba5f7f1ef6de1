"""Fine-tuning with finetune.method=trees: gradient-boosted trees on a frozen encoder's states (and, for coding
sequences, hand features), fitted by scikit-learn; the validation rows choose the number of boosting iterations as
they choose the best checkpoint of the gradient methods. See `dnajax.evaluation.trees` for the model.

Per seed, `seed_K/` holds `trees.pkl` (the head and the projection) and `result.json`. The encoder is the base run's,
read from there when the model is applied. The trees are deterministic (no subsampling), so seeds differ only through
the projection's sample of training positions.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from dnajax.data import labels as labels_lib
from dnajax.data import rundir
from dnajax.evaluation import finetuned, hand_features, render, trees
from dnajax.evaluation.engine import Engine

log = logging.getLogger("dnajax")


def choose_positions(cfg, train) -> int:
  """The positions the trees read one by one (the training length), or 0 for the mean state, from finetune.pool
  (auto: positions when every training sequence has the same length). Windows never limit it: the engine reads long
  sequences through overlapping windows."""
  lengths = {len(s) for s in train.seqs}
  if cfg.finetune.pool == "positions" or (cfg.finetune.pool == "auto" and len(lengths) == 1):
    return max(lengths)
  return 0


def representation(cfg, train) -> trees.Representation:
  f = cfg.finetune
  return trees.Representation(layer=int(f.layer), positions=choose_positions(cfg, train),
                              components=int(f.components),
                              features=hand_features.choose(f.features, f.organism, train), organism=str(f.organism))


def run(job_cfg, output: str, coding: labels_lib.LabelCoding, splits: dict, base: dict, rep: trees.Representation,
        seeds, select: str, progress: bool = True) -> dict:
  """Fits one boosted-tree head per seed into `output/seed_K/` (skipping seeds with a result.json) and returns
  {seed: result} with the same keys as the gradient methods' results ({seed, best_step (boosting iterations),
  select_metric, select_score, val, test, steps, epochs, stopped_early, wall_seconds})."""
  from dnajax.training import finetune_loop as loop_lib

  engine = Engine.from_workdir(base["workdir"], base["step"])
  engine.check_layer(rep.layer)
  f = job_cfg.finetune
  results, inputs = {}, {}
  for seed in seeds:
    sdir = rundir.seed_dir(output, seed)
    done = rundir.read_result(sdir)
    if done is not None:
      results[seed] = {**done, "read_back": True}  # finished by an earlier run (dropped before finetune.json)
      continue
    t0 = time.time()
    r = trees.Representation(**{**rep.to_dict(), "mean": None, "axes": None}).fit(
        engine, splits["train"].table.seqs, seed)
    x = {}
    for name, s in splits.items():
      key = (name, seed if r.positions else 0)
      if key not in inputs:
        inputs[key] = r.inputs(engine, s.table.seqs, progress, [labels_lib.row_name(s.table, i)
                                                                for i in range(len(s.table))])
      x[name] = inputs[key]
    model = trees.make_model(coding.task, f.tree_iterations, f.tree_learning_rate, seed)
    model.fit(x["train"], splits["train"].targets)
    val = splits["val"]
    staged = list(trees.staged_outputs(model, coding.task, x["val"]))
    scores = [loop_lib.score(finetuned.split_metrics(coding, out, val.targets), select) for out in staged]
    best = int(np.argmax([-np.inf if s is None else s for s in scores])) + 1
    if best < model.n_iter_:
      model = (trees.first_iterations(model, best, coding.task, x["val"], staged[best - 1])
               or trees.make_model(coding.task, best, f.tree_learning_rate, seed).fit(x["train"],
                                                                                      splits["train"].targets))
    predictor = trees.TreesPredictor(engine, r, model, coding)
    os.makedirs(sdir, exist_ok=True)
    predictor.save(os.path.join(sdir, trees.MODEL_FILE))
    metrics = {name: finetuned.split_metrics(coding, trees.model_outputs(model, coding.task, x[name]),
                                             splits[name].targets) for name in splits if name != "train"}
    result = {"seed": int(seed), "best_step": best, "select_metric": select,
              "select_score": loop_lib.score(metrics["val"], select), "val": metrics["val"], "steps": best,
              "epochs": None, "stopped_early": best < int(f.tree_iterations), "wall_seconds": time.time() - t0,
              "inputs": int(x["train"].shape[1])}
    if "test" in metrics:
      result["test"] = metrics["test"]
    log.info("seed %d: %d boosting iterations chosen on val (%s %s), %d input columns", seed, best, select,
             render.number(metrics["val"].get(select)), x["train"].shape[1])
    rundir.write_result(sdir, render.to_json(result) + "\n")
    results[seed] = result
  return results
