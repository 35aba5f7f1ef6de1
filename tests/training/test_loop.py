import json
import os

import jax
import numpy as np

from dnajax import checkpoint, config
from dnajax.data import sampler
from dnajax.training import loop
from dnajax.training.program import TrainProgram


def test_tiny_run_learns_the_structured_data(tiny_run):
  workdir, final = tiny_run
  assert final["checkpoint_step"] == 60
  majority = final["baselines"]["majority_base_of_training_data"]["masked_accuracy"]
  assert final["masked_accuracy"] > majority + 0.05, final
  assert final["bayes"]["masked_accuracy"] > final["masked_accuracy"]
  assert 0 < final["fraction_of_bayes"] < 1
  kmer = final["baselines"]["kmer_of_training_data"]
  assert majority < kmer["masked_accuracy"] < final["bayes"]["masked_accuracy"]  # the Bayes limit bounds it too
  lines = [json.loads(x) for x in open(os.path.join(workdir, "metrics.jsonl"))]
  train_lines = [x for x in lines if x["split"] == "train"]
  assert train_lines[-1]["train/mlm_cross_entropy"] < train_lines[0]["train/mlm_cross_entropy"]
  keys = {"perf/tokens_per_second", "train/learning_rate", "train/grad_norm", "perf/host_rss_gib"}
  assert keys <= set(train_lines[-1])
  assert not any(k == "loss" or k.endswith("/loss") for k in train_lines[-1])  # the objective is not the eval loss
  val = [x for x in lines if x["split"] == "val"][-1]
  assert val["val/loss"] == final["loss"] and val["val/baselines/kmer_of_training_data/loss"] == kmer["loss"]
  assert sorted(checkpoint.Checkpointer(workdir, create=False).all_steps()) == [30, 60]


def _params(workdir, step):
  cfg = config.from_json(open(os.path.join(workdir, "config.json")).read())
  ckpt = checkpoint.Checkpointer(workdir, create=False)
  try:
    state, meta = TrainProgram(cfg).restore(ckpt, step)
  finally:
    ckpt.close()
  return jax.device_get(state), meta


def test_curriculum_stages_and_errors():
  import pytest

  from dnajax.errors import UserError
  cfg = config.load("configs/tiny.py", [("train.steps", "1000"), ("data.seq_len", "512"),
                                        ("data.curriculum", "128:0.5, 256:0.8")])
  def curriculum(cfg):
    return sampler.curriculum(cfg.data.curriculum, cfg.train.steps, cfg.data.seq_len)

  stages = curriculum(cfg)
  assert stages == [(500, 128), (800, 256), (1000, 512)]
  assert [sampler.seq_len_at(stages, s) for s in (0, 499, 500, 799, 800, 999)] == [128, 128, 256, 256, 512, 512]
  cfg.data.curriculum = ""
  assert curriculum(cfg) == [(1000, 512)]
  for bad in ("128", "128:1.2", "1024:0.5", "128:0.8,256:0.5", "x:0.5"):
    cfg.data.curriculum = bad
    with pytest.raises(UserError, match="data.curriculum"):
      curriculum(cfg)


def test_gradient_accumulation_matches_full_batch(tmp_path):
  base = [("train.steps", "3"), ("train.eval_every", "3"), ("ckpt.every", "3")]
  full, accum = str(tmp_path / "full"), str(tmp_path / "accum")
  loop.train_and_evaluate(config.load("configs/tiny.py", base), full, show_progress=False)
  loop.train_and_evaluate(config.load("configs/tiny.py", base + [("train.grad_accum", "4")]), accum,
                          show_progress=False)
  a, _ = _params(full, 3)
  b, _ = _params(accum, 3)
  for x, y in zip(jax.tree.leaves(a["params"]), jax.tree.leaves(b["params"])):
    np.testing.assert_allclose(x, y, rtol=2e-4, atol=2e-5)


def test_training_on_coding_sequences(tmp_path):
  rng = np.random.default_rng(0)
  codons = [a + b + c for a in "ACGT" for b in "ACGT" for c in "ACGT" if a + b + c not in ("TAA", "TAG", "TGA")]
  fa = tmp_path / "cds.fa"
  fa.write_text("".join(f">g{i}\nATG{''.join(rng.choice(codons, 60 + i))}TAA\n" for i in range(30))
                + ">frameshifted\nATGAA\n")
  cfg = config.load("configs/tiny.py", [("data.cds", "True"), ("data.seq_len", "48"), ("train.steps", "4"),
                                        ("train.eval_every", "4"), ("ckpt.every", "4"), ("data.min_len", "30")])
  cfg.data.sources = (str(fa),)
  final = loop.train_and_evaluate(cfg, str(tmp_path / "w"), show_progress=False)
  index = json.load(open(tmp_path / "w" / "corpus" / "index.json"))
  counts = index["coding_sequences"]  # other counters (features.py's) may be there too
  assert index["codon_aligned"] and {k: counts.get(k) for k in ("kept", "skipped_pseudo", "skipped_not_multiple_of_3")
                                     } == {"kept": 30, "skipped_pseudo": 0, "skipped_not_multiple_of_3": 1}
  assert index["split_mode"] == "records" and np.isfinite(final["loss"])
