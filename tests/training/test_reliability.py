"""Fault injection: preemption signals, kills during checkpoint writes, divergence, unsafe configs."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import ROOT

from dnajax import checkpoint, config
from dnajax.errors import UserError
from dnajax.training import loop
from dnajax.training.program import TrainProgram

# Also a sequence-length curriculum (64-base windows from step 34), per-window mask rates and dropout: all must
# resume exactly.
LONG = ["--config.train.steps=100", "--config.train.log_every=5", "--config.train.eval_every=100",
        "--config.ckpt.every=100", "--config.data.curriculum=32:0.34", "--config.data.mask_rate_max=0.3",
        "--config.model.dropout=0.1"]


def _cli(workdir, *extra):
  return [sys.executable, "-m", "dnajax.cli", "train", "--config", "configs/tiny.py", "--workdir", str(workdir),
          "--no-progress", *extra]


def _wait_for(predicate, proc, timeout=120.0):
  t0 = time.time()
  while not predicate():
    assert proc.poll() is None, proc.communicate()
    assert time.time() - t0 < timeout
    time.sleep(0.05)


def _train_records(workdir):
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  return [r for r in map(json.loads, open(path).read().splitlines()) if r["split"] == "train"]


def _state(workdir, step):
  cfg = config.from_json(open(os.path.join(workdir, "config.json")).read())
  ckpt = checkpoint.Checkpointer(str(workdir), create=False)
  try:
    return jax.device_get(TrainProgram(cfg).restore(ckpt, step)[0])
  finally:
    ckpt.close()


@pytest.mark.slow
def test_sigterm_saves_exits_0_and_resume_is_bit_identical(tmp_path):
  overrides = [tuple(a[len("--config."):].split("=")) for a in LONG]
  straight = tmp_path / "straight"
  final_straight = loop.train_and_evaluate(config.load("configs/tiny.py", overrides), str(straight),
                                           show_progress=False)
  run = tmp_path / "run"
  proc = subprocess.Popen(_cli(run, *LONG), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  _wait_for(lambda: _train_records(run), proc)
  proc.send_signal(signal.SIGTERM)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 0, err
  assert "stopped by SIGTERM after step" in err
  stopped = int(err.split("stopped by SIGTERM after step ")[1].split()[0])
  assert 5 <= stopped < 100
  assert checkpoint.Checkpointer(str(run), create=False).all_steps() == [stopped]
  # The same command resumes and finishes; parameters and the final validation equal the uninterrupted run's.
  r = subprocess.run(_cli(run, *LONG), cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 0, r.stderr
  a, b = _state(straight, 100), _state(run, 100)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(x, y)
  val = [x for x in map(json.loads, open(run / "metrics.jsonl").read().splitlines()) if x["split"] == "val"]
  assert val[-1]["val/loss"] == final_straight["loss"]
  # Logging windows stay on the same grid after the resume: every full window's loss matches.
  same = {x["step"]: x["train/mlm_cross_entropy"] for x in _train_records(straight)}
  resumed = {x["step"]: x["train/mlm_cross_entropy"] for x in _train_records(run) if x["step"] > stopped + 5}
  assert resumed and all(same[s] == v for s, v in resumed.items())
  lengths = [x["train/seq_len"] for x in _train_records(straight)]
  assert lengths[0] == 32 and lengths[-1] == 64 and lengths == sorted(lengths)


@pytest.mark.slow
def test_kill_during_checkpoint_writes_then_resume(tmp_path):
  run = tmp_path / "run"
  args = ["--config.train.steps=80", "--config.ckpt.every=4", "--config.ckpt.keep=2", "--config.train.log_every=4",
          "--config.train.eval_every=80"]
  proc = subprocess.Popen(_cli(run, *args), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  ckdir = run / "checkpoints"
  _wait_for(lambda: ckdir.is_dir() and len([p for p in os.listdir(ckdir) if p.isdigit()]) >= 2, proc)
  time.sleep(0.37)  # saves every 4 steps: the kill lands during or between writes
  proc.kill()
  proc.wait()
  complete = checkpoint.Checkpointer(str(run), create=False).all_steps()
  assert complete
  # Whatever the kill left (possibly a temporary directory), plus an explicit half-written step:
  (ckdir / f"{max(complete) + 4}.orbax-checkpoint-tmp-1234").mkdir()
  r = subprocess.run(_cli(run, *args), cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 0, r.stderr
  assert f"resumed from checkpoint step {max(complete)}" in r.stderr
  assert max(checkpoint.Checkpointer(str(run), create=False).all_steps()) == 80


def test_corrupt_checkpoint_is_one_line_naming_usable_steps(tiny_run, tmp_path, capsys):
  import shutil

  from dnajax import cli
  run = tmp_path / "run"
  shutil.copytree(tiny_run[0], run)
  steps = checkpoint.Checkpointer(str(run), create=False).all_steps()
  assert steps == [30, 60]
  for p in (run / "checkpoints" / "60").rglob("*"):
    if p.is_file() and p.stat().st_size > 0 and "state" in str(p):
      p.write_bytes(b"garbage")
  code = cli.main(["evaluate", "--workdir", str(run), "--input", str(_fasta(tmp_path))])
  err = capsys.readouterr().err.strip()
  assert code == 2 and len(err.splitlines()) == 1
  assert "checkpoints/60: cannot restore" in err and "usable steps: 30" in err
  # Through the console script too: orbax's reader threads add no traceback around the one line.
  r = subprocess.run([sys.executable, "-m", "dnajax.cli", "evaluate", "--workdir", str(run), "--input",
                      str(_fasta(tmp_path))], capture_output=True, text=True, cwd=ROOT)
  assert r.returncode == 2 and r.stderr.strip().splitlines() == [err], r.stderr[-2000:]


def _fasta(tmp_path):
  p = tmp_path / "x.fa"
  p.write_text(">x\n" + "ACGTTGCA" * 200 + "\n")
  return p


@pytest.mark.slow
def test_divergence_stops_and_never_checkpoints_nonfinite_state(tmp_path):
  run = tmp_path / "run"
  r = subprocess.run(_cli(run, "--config.opt.learning_rate=1e9", "--config.opt.clip_norm=0",
                          "--config.train.steps=60", "--config.ckpt.every=1", "--config.ckpt.keep=100"),
                     cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 2, r.stderr
  last = r.stderr.strip().splitlines()[-1]
  assert last.startswith("dnajax: error: training diverged") and "step" in last
  assert "Traceback" not in r.stderr
  steps = checkpoint.Checkpointer(str(run), create=False).all_steps() if (run / "checkpoints").is_dir() else []
  for s in steps:  # every checkpoint written is finite and loadable
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(_state(run, s)["params"]))
  if steps:
    assert f"last good checkpoint: step {max(steps)}" in last


def test_skip_nonfinite_keeps_the_previous_state():
  cfg = config.load("configs/tiny.py", [("opt.skip_nonfinite", "True")])
  program = TrainProgram(cfg)
  state = program.init()
  good = jax.device_get(state["params"])
  poisoned = jax.tree.map(np.copy, good)
  jax.tree.leaves(poisoned)[0][...] = np.nan  # a non-finite parameter: non-finite loss and gradients
  batch = program.to_global({"ids": np.random.default_rng(0).integers(2, 6, (16, 64)).astype(np.uint8)})
  state = {**state, "params": jax.device_put(poisoned, program.state_sh["params"])}
  state, m = program.step(state, batch)
  assert bool(m["skipped"]) and int(state["step"]) == 1
  for x, y in zip(jax.tree.leaves(poisoned), jax.tree.leaves(jax.device_get(state["params"]))):
    np.testing.assert_array_equal(x, y)  # unchanged (the NaN included)
  state = {**state, "params": jax.device_put(good, program.state_sh["params"])}
  state, m = program.step(state, batch)
  assert not bool(m["skipped"]) and np.isfinite(float(m["mlm_ce_sum"]))


@pytest.mark.parametrize("overrides,needle", [
    ([("model.num_heads", "3")], "not divisible by model.num_heads"),
    ([("model.pos_encoding", "learned"), ("model.max_len", "32")], "exceeds model.max_len"),
    ([("train.global_batch", "15"), ("train.grad_accum", "2")], "not divisible by train.grad_accum"),
    ([("data.curriculum", "128:0.5")], "data.curriculum"),
])
def test_unsafe_configs_fail_before_anything_is_written(tmp_path, overrides, needle):
  workdir = tmp_path / "w"
  with pytest.raises(UserError, match=needle):
    loop.train_and_evaluate(config.load("configs/tiny.py", overrides), str(workdir), show_progress=False)
  assert not workdir.exists()


def test_unwritable_workdir_and_full_disk_and_small_memory(tmp_path, monkeypatch):
  cfg = config.load("configs/tiny.py")
  (tmp_path / "file").write_text("x")
  with pytest.raises(UserError, match="cannot write here"):
    loop.train_and_evaluate(cfg, str(tmp_path / "file" / "run"), show_progress=False)
  import shutil
  from collections import namedtuple
  usage = namedtuple("usage", "total used free")
  monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**6, 10**6 - 1000, 1000))
  with pytest.raises(UserError, match="one checkpoint needs about"):
    loop.train_and_evaluate(cfg, str(tmp_path / "run"), show_progress=False)
  monkeypatch.undo()
  import psutil
  real = psutil.virtual_memory()
  monkeypatch.setattr(psutil, "virtual_memory", lambda: real._replace(available=2**10))  # the compiled step's check
  with pytest.raises(UserError, match=r"but the limit is 0\.0 MiB per device \(host memory available\)"):
    loop.train_and_evaluate(cfg, str(tmp_path / "run"), show_progress=False)
  assert not (tmp_path / "run").exists()


def test_resume_with_changed_steps_says_the_schedule_changes(tmp_path, caplog):
  """A changed train.steps re-spans the learning-rate schedule: the start-up log says so, with both totals."""
  import logging

  base = [("train.log_every", "2"), ("train.eval_every", "4"), ("ckpt.every", "4"), ("opt.warmup_steps", "2"),
          ("eval.max_windows", "16")]
  w = str(tmp_path / "run")
  loop.train_and_evaluate(config.load("configs/tiny.py", base + [("train.steps", "4")]), w, show_progress=False)
  caplog.clear()
  with caplog.at_level(logging.INFO, logger="dnajax"):
    loop.train_and_evaluate(config.load("configs/tiny.py", base + [("train.steps", "8")]), w, show_progress=False)
  notes = [r.getMessage() for r in caplog.records if "schedule" in r.getMessage()]
  assert len(notes) == 1 and "\n" not in notes[0], caplog.text
  assert "train.steps 4 -> 8" in notes[0] and "rises again" in notes[0] and "--config.train.steps=4" in notes[0]
  assert caplog.records[[r.getMessage() for r in caplog.records].index(notes[0])].levelno == logging.WARNING
  caplog.clear()
  with caplog.at_level(logging.INFO, logger="dnajax"):  # the same config again: nothing to say
    loop.train_and_evaluate(config.load("configs/tiny.py", base + [("train.steps", "8")]), w, show_progress=False)
  assert "resumed from checkpoint step 8" in caplog.text and "schedule" not in caplog.text
  assert loop.schedule_change(config.load("configs/tiny.py"), config.load("configs/tiny.py"), 3) is None
  caplog.clear()
  with caplog.at_level(logging.INFO, logger="dnajax"):  # other masks from here on: said in one line of its own
    loop.train_and_evaluate(config.load("configs/tiny.py", base + [("train.steps", "10"), ("data.mask_rate", "0.2")]),
                            w, show_progress=False)
  data = [r.getMessage() for r in caplog.records if "drawn and masked" in r.getMessage()]
  assert len(data) == 1 and "data.mask_rate 0.15 -> 0.2" in data[0] and "--config.data.mask_rate=0.15" in data[0]


def test_data_change_names_the_weights_and_ignores_what_an_old_config_lacks():
  old = config.load("configs/tiny.py", [("data.weights", "0.5,0.5")])
  new = config.load("configs/tiny.py", [("data.weights", "0.9,0.1"), ("data.softmask_weight", "0.1")])
  line = loop.data_change(old, new, 40)
  assert "data.weights 0.5,0.5 -> 0.9,0.1" in line and "data.softmask_weight 1 -> 0.1" in line
  assert "--config.data.weights=0.5,0.5 --config.data.softmask_weight=1" in line
  assert loop.data_change(new, new, 40) is None
  line = loop.data_change(config.load("configs/tiny.py"), new, 40)
  assert "data.weights (empty: the corpus's own weights) -> 0.9,0.1" in line and "--config.data.weights= " in line
  with old.unlocked():  # a run saved before the key existed
    del old.data["softmask_weight"]
  assert "softmask_weight" not in loop.data_change(old, new, 40)


def test_another_models_checkpoint_is_named_as_such(tiny_run, tmp_path, capsys):
  """Not 'delete the bad step directory': another model's checkpoint, and what to do."""
  import shutil

  from dnajax import cli
  run = tmp_path / "run"  # its checkpoints, without the config.json that would refuse the other model first
  shutil.copytree(os.path.join(tiny_run[0], "checkpoints"), run / "checkpoints")
  code = cli.main(["train", "--config", "configs/tiny.py", "--workdir", str(run), "--no-progress",
                   "--config.model.d_model=64", "--config.eval.max_windows=16"])
  err = capsys.readouterr().err.strip()
  assert code == 2 and len(err.splitlines()) == 1, err
  assert "another model's checkpoint" in err and "model.d_model 32 there, 64 here" in err
  assert "--config.model.d_model=32" in err and "new --workdir" in err and "bad step" not in err
  # The engine (evaluate, score, ...): a config.json that does not match the checkpoints, caught from the shapes
  # (a partial parameter restore would not notice a missing layer).
  other = tmp_path / "other"
  shutil.copytree(tiny_run[0], other, ignore=shutil.ignore_patterns("corpus", "tensorboard"))
  cfg = json.loads((other / "config.json").read_text())
  cfg["model"]["num_layers"] = 3
  (other / "config.json").write_text(json.dumps(cfg))
  code = cli.main(["evaluate", "--workdir", str(other), "--input", str(_fasta(tmp_path))])
  err = capsys.readouterr().err.strip()
  assert code == 2 and len(err.splitlines()) == 1, err
  assert "checkpoints/60: another model's checkpoint (parameter layer_2/" in err and "absent there" in err
  assert "num_layers=2" in err and "bad step" not in err


def test_non_finite_config_values_are_refused_before_anything_is_written(tmp_path):
  w = tmp_path / "run"
  with pytest.raises(UserError, match=r"--config.opt.learning_rate=nan: not a finite number"):
    loop.train_and_evaluate(config.load("configs/tiny.py", [("opt.learning_rate", "nan")]), str(w),
                            show_progress=False)
  assert not w.exists()


def test_resuming_on_other_data_is_refused_and_the_corpus_kept(tiny_run, tmp_path, capsys):
  """Another --data, split or seed under the same checkpoints would rebuild the corpus: one line, nothing changed."""
  import shutil

  from conftest import refused

  run = tmp_path / "run"
  shutil.copytree(tiny_run[0], run)
  index = (run / "corpus" / "index.json").read_bytes()
  config_json = (run / "config.json").read_bytes()
  base = ["train", "--config", "configs/tiny.py", "--workdir", str(run), "--no-progress"]
  line = refused(capsys, *base, "--data", str(_fasta(tmp_path)))
  assert "holds checkpoints trained on other data (data.sources synthetic:structured there" in line
  assert "--data synthetic:structured" in line and "new --workdir" in line
  line = refused(capsys, *base, "--config.data.split=blocks", "--config.train.seed=3")
  assert "data.split auto there, blocks here" in line and "train.seed 0 there, 3 here" in line
  assert "--config.data.split=auto --config.train.seed=0" in line
  assert (run / "corpus" / "index.json").read_bytes() == index and (run / "config.json").read_bytes() == config_json
  # A run that has no checkpoint yet may still change its data.
  prev = config.load("configs/tiny.py")
  loop.check_same_corpus(prev, config.load("configs/tiny.py", [("data.split", "blocks")]), str(tmp_path / "new"))
