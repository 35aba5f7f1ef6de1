"""Set-up of a training run: what is (not) written when it fails, when there is nothing to train, and a stop
request that arrives before the first step."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT

from dnajax import cli, config
from dnajax.errors import UserError
from dnajax.training import loop


def test_a_failed_set_up_leaves_nothing_and_a_later_run_is_not_refused(tmp_path, capsys):
  w = tmp_path / "w"
  # Windows longer than every training record: refused after the corpus is built, before any training.
  argv = ["train", "--config", "tiny", "--workdir", str(w), "--no-progress", "--config.data.seq_len=6000"]
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "longer than the longest training segment" in err and not w.exists()
  with pytest.raises(UserError, match="longer than the longest"):  # an existing workdir keeps what it had
    w.mkdir()
    loop.train_and_evaluate(config.load("tiny", [("data.seq_len", "6000")]), str(w), show_progress=False)
  assert not (w / "config.json").exists()
  loop.train_and_evaluate(config.load("tiny", [("train.steps", "2"), ("train.eval_every", "2"), ("ckpt.every", "2"),
                                              ("model.num_layers", "1")]), str(w), show_progress=False)
  assert json.loads((w / "config.json").read_text())["model"]["num_layers"] == 1


def test_nothing_to_train_keeps_the_runs_config(tmp_path):
  w = str(tmp_path / "w")
  base = [("train.eval_every", "4"), ("ckpt.every", "4")]
  loop.train_and_evaluate(config.load("tiny", base + [("train.steps", "4")]), w, show_progress=False)
  final = loop.train_and_evaluate(config.load("tiny", base + [("train.steps", "2")]), w, show_progress=False)
  assert final["checkpoint_step"] == 4
  assert json.loads(open(os.path.join(w, "config.json")).read())["train"]["steps"] == 4


def test_sigint_during_set_up_stops_after_the_first_step(tmp_path):
  """A Ctrl-C while the model is being set up (compiling) is a request, honoured after the next step: exit 0 with a
  checkpoint, no traceback, no crash."""
  w = tmp_path / "w"
  cmd = [sys.executable, "-m", "dnajax.cli", "train", "--config", "tiny", "--workdir", str(w), "--no-progress",
         "--config.train.steps=200", "--config.train.log_every=1"]
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  t0 = time.time()
  while not (w / "corpus" / "index.json").exists():  # the corpus is there: the model set-up comes next
    assert proc.poll() is None and time.time() - t0 < 120
    time.sleep(0.02)
  proc.send_signal(signal.SIGINT)
  out, err = proc.communicate(timeout=180)
  assert proc.returncode == 0, err
  assert "Traceback" not in err and "stopped by SIGINT after step" in err
  assert int(err.split("stopped by SIGINT after step ")[1].split()[0]) < 200
