import json
import os

import jax
import numpy as np

from dnajax import checkpoint, config, train


def test_tiny_run_learns_the_structured_data(tiny_run):
  workdir, final = tiny_run
  assert final["checkpoint_step"] == 60
  majority = final["baselines"]["majority_base"]
  assert final["masked_accuracy"] > majority + 0.05, final
  assert final["bayes"]["masked_accuracy"] > final["masked_accuracy"]
  assert 0 < final["fraction_of_bayes"] < 1
  kmer = final["baselines"]["kmer"]
  assert majority < kmer["masked_accuracy"] < final["bayes"]["masked_accuracy"]  # the Bayes limit bounds it too
  lines = [json.loads(x) for x in open(os.path.join(workdir, "metrics.jsonl"))]
  train_lines = [x for x in lines if x["split"] == "train"]
  assert train_lines[-1]["loss"] < train_lines[0]["loss"]
  assert {"tokens_per_second", "learning_rate", "grad_norm", "host_rss_gib"} <= set(train_lines[-1])
  assert sorted(checkpoint.Checkpointer(workdir, create=False).all_steps()) == [30, 60]


def _params(workdir, step):
  cfg = config.from_json(open(os.path.join(workdir, "config.json")).read())
  ckpt = checkpoint.Checkpointer(workdir, create=False)
  try:
    state, meta = train.Program(cfg).restore(ckpt, step)
  finally:
    ckpt.close()
  return jax.device_get(state), meta


def test_resume_equals_uninterrupted(tmp_path):
  overrides = [("train.steps", "12"), ("train.eval_every", "6"), ("ckpt.every", "6"), ("model.dropout", "0.1"),
               ("train.log_every", "2")]
  straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
  train.train_and_evaluate(config.load("configs/tiny.py", overrides), straight, show_progress=False)
  train.train_and_evaluate(config.load("configs/tiny.py", overrides), resumed, show_progress=False, stop_at=6)
  assert checkpoint.Checkpointer(resumed, create=False).all_steps() == [6]
  train.train_and_evaluate(config.load("configs/tiny.py", overrides), resumed, show_progress=False)
  a, meta = _params(straight, 12)
  b, _ = _params(resumed, 12)
  assert meta["data_position"] == {"next_step": 12}
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)

  def losses(w):
    return [(x["step"], x["loss"]) for x in map(json.loads, open(os.path.join(w, "metrics.jsonl")))
            if x["split"] == "train"]
  assert losses(straight) == losses(resumed)


def test_gradient_accumulation_matches_full_batch(tmp_path):
  base = [("train.steps", "3"), ("train.eval_every", "3"), ("ckpt.every", "3")]
  full, accum = str(tmp_path / "full"), str(tmp_path / "accum")
  train.train_and_evaluate(config.load("configs/tiny.py", base), full, show_progress=False)
  train.train_and_evaluate(config.load("configs/tiny.py", base + [("train.grad_accum", "4")]), accum,
                           show_progress=False)
  a, _ = _params(full, 3)
  b, _ = _params(accum, 3)
  for x, y in zip(jax.tree.leaves(a["params"]), jax.tree.leaves(b["params"])):
    np.testing.assert_allclose(x, y, rtol=2e-4, atol=2e-5)
