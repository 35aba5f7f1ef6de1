"""`dnajax sweep`: grid syntax, skipped combinations, one row per run, rerun does nothing new, a killed sweep
finishes with the numbers of an uninterrupted one."""

import csv
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, refused

from dnajax import cli

FAST = ["--config", "tiny", "--config.train.steps=20", "--config.train.eval_every=20", "--config.ckpt.every=5",
        "--config.data.synthetic_bases=200000", "--no-progress"]


def _rows(path):
  with open(os.path.join(path, "results.csv")) as f:
    return list(csv.DictReader(f))


def test_bad_grids_are_one_line(tmp_path, capsys):
  w = str(tmp_path / "s")
  assert "write KEY=V1,V2" in refused(capsys, "sweep", "--workdir", w, "--grid", "model.num_layers")
  assert "listed twice" in refused(capsys, "sweep", "--workdir", w, "--grid", "model.num_layers=1,1")
  assert "--grid model.nope=1" in refused(capsys, "sweep", "--workdir", w, "--grid", "model.nope=1,2")
  assert "--grid model.num_layers=x" in refused(capsys, "sweep", "--workdir", w, "--grid", "model.num_layers=1,x")
  assert "--seeds" in refused(capsys, "sweep", "--workdir", w, "--grid", "model.num_layers=1,2", "--seeds", "a")
  assert "same number of values" in refused(capsys, "sweep", "--workdir", w, "--grid", "model.num_layers=1,2",
                                            "--grid", "model.num_heads=2", "--zip")
  assert "no combination can take it" in refused(capsys, "sweep", "--workdir", w, "--grid", "model.num_heads=3,5")
  assert "no combination can take it" in refused(capsys, "sweep", "--workdir", w, "--grid", "model.mlp=gelu,swigul")
  assert "same run" in refused(capsys, "sweep", "--workdir", w, "--grid", "opt.learning_rate=1e-3,0.001")
  assert "--equal-tokens sets" in refused(capsys, "sweep", "--workdir", w, "--grid", "train.steps=10,20",
                                          "--equal-tokens")
  assert "no such file" in refused(capsys, "sweep", "--workdir", w, "--grid", "model.num_layers=1,2", "--data",
                                   str(tmp_path / "none.fa"))
  assert "--workdir is empty" in refused(capsys, "sweep", "--workdir", "", "--grid", "model.num_layers=1,2")
  assert "2^32" in refused(capsys, "sweep", "--workdir", w, "--grid", "model.num_layers=1,2", "--seeds", str(2**40))
  assert not os.path.exists(w)


def test_a_rerun_with_another_config_is_refused_before_training(tmp_path, capsys):
  from dnajax import config as config_lib
  from dnajax.data import rundir

  w = tmp_path / "s"
  (w / "num_layers-1_seed-0").mkdir(parents=True)
  rundir.write_config(str(w / "num_layers-1_seed-0"), config_lib.load("tiny", [("model.num_layers", "1"),
                                                                               ("opt.learning_rate", "0.01")]))
  line = refused(capsys, "sweep", "--workdir", str(w), "--config", "tiny", "--grid", "model.num_layers=1,2")
  assert "holds a run of another config (opt.learning_rate" in line
  assert sorted(os.listdir(w)) == ["num_layers-1_seed-0"]


@pytest.mark.slow
def test_a_two_by_two_grid_then_a_rerun_and_a_killed_sweep(tmp_path, capsys):
  a = str(tmp_path / "a")
  assert cli.main(["sweep", "--workdir", a, "--grid", "model.num_layers=1,2", "--grid", "model.num_heads=2,4",
                   *FAST]) == 0
  rows = _rows(a)
  assert len(rows) == 4 and {(r["model.num_layers"], r["model.num_heads"]) for r in rows} == {
      ("1", "2"), ("1", "4"), ("2", "2"), ("2", "4")}
  for name in ("results.md", "curves.png", "model.num_layers.png", "model.num_heads.png"):
    assert os.path.getsize(os.path.join(a, name)) > 0
  assert all(r["fraction_of_bayes"] and r["kmer_masked_accuracy"] and int(r["train_tokens"]) > 0 for r in rows)
  assert cli.main(["sweep", "--workdir", a, "--grid", "model.num_layers=1,2", "--grid", "model.num_heads=2,4",
                   *FAST]) == 0
  assert "(4 finished, 0 to train)" in capsys.readouterr().err
  # Kill a sweep of one of those runs mid-run, rerun it: the same numbers as the uninterrupted sweep.
  b = str(tmp_path / "b")
  argv = [sys.executable, "-m", "dnajax.cli", "sweep", "--workdir", b, "--grid", "model.num_layers=1",
          "--grid", "model.num_heads=2", *FAST]
  proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  first = os.path.join(b, "num_layers-1_num_heads-2_seed-0", "checkpoints")
  deadline = time.time() + 120
  while time.time() < deadline and not (os.path.isdir(first) and any(s.isdigit() for s in os.listdir(first))):
    time.sleep(0.2)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 130 and "rerun the same command" in err, err
  assert not os.path.exists(os.path.join(b, "results.csv"))
  assert subprocess.run(argv, cwd=ROOT, capture_output=True).returncode == 0
  want = {r["model.num_heads"]: r for r in rows if r["model.num_layers"] == "1"}
  assert len(_rows(b)) == 1
  for r in _rows(b):
    for key in ("val_masked_accuracy", "val_loss", "fraction_of_bayes", "parameters", "train_tokens"):
      assert r[key] == want[r["model.num_heads"]][key], key


def test_equal_tokens_scales_steps_and_names_are_readable():
  from dnajax.training import sweep

  runs = sweep.plan("tiny", [], [("data.seq_len", ["32", "64"]), ("train.global_batch", ["16", "32"])], [0, 1],
                    equal_tokens=True)
  steps = {(r.values["data.seq_len"], r.values["train.global_batch"]): int(r.cfg.train.steps) for r in runs}
  assert steps == {("32", "16"): 40, ("32", "32"): 20, ("64", "16"): 20, ("64", "32"): 10}
  assert {sweep.tokens_per_step(r.cfg) * int(r.cfg.train.steps) for r in runs} == {20 * 16 * 64}
  assert runs[0].name == "seq_len-32_global_batch-16_seed-0" and runs[1].seed == 1


def test_combinations_the_model_cannot_take_are_skipped_before_training():
  from dnajax.training import sweep

  runs = sweep.plan("tiny", [], [("model.d_model", ["32", "48"]), ("model.num_heads", ["2", "3"])], [0])
  skipped = [r for r in runs if r.skipped]
  assert [(r.values["model.d_model"], r.values["model.num_heads"]) for r in skipped] == [("32", "3")]
  assert "not divisible" in skipped[0].skipped and len(runs) == 4
