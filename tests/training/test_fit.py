"""The one fit loop (`training.fit`): what pretraining and fine-tuning both get from it - lagged metric reads, every
window read before a validation or save, finite parameters before anything is saved, early stopping, stop requests."""

import jax.numpy as jnp
import numpy as np
import pytest
from conftest import write

from dnajax import cli
from dnajax.data import rundir
from dnajax.training import fit, guards


class FakeCkpt:
  directory = "ckpt"

  def __init__(self):
    self.saved = []

  def save(self, step, state, meta, force=False):
    self.saved.append(step)

  def latest_step(self):
    return self.saved[-1] if self.saved else None


class FakeBar:
  def update(self, n):
    pass


class Counting:
  """A task whose parameter becomes NaN at step `nan_at` (never, by default) and that stops early at `stop_at`."""

  log_every = 3

  def __init__(self, nan_at=None, stop_at=None, every=4):
    self.nan_at, self.stop_at, self.every = nan_at, stop_at, every
    self.events = []

  def batch(self, step):
    return {"step": step}

  def step(self, state, batch):
    x = state["x"] + 1.0
    if self.nan_at is not None and batch["step"] + 1 >= self.nan_at:
      x = x * jnp.nan
    return {"x": x}, {"step": batch["step"] + 1}

  def read(self, window):
    self.events.append(("read", [s for s, _ in window]))

  def evaluating(self, done, total):
    return done % self.every == 0 or done == total

  saving = evaluating

  def evaluate(self, state, done):
    self.events.append(("evaluate", done))
    return self.stop_at is not None and done >= self.stop_at

  def trained(self, state):
    return state

  def meta(self, done):
    return {"step": done}

  def synced(self, state, done):
    pass


def _fit(task, total=10, start=0):
  ckpt = FakeCkpt()
  state, done, interrupted = fit.fit(task, {"x": jnp.zeros(())}, start, total, guards.StopRequest(), ckpt, FakeBar(),
                                     "lower the rate")
  return state, done, interrupted, ckpt


def test_windows_are_read_late_and_before_every_validation():
  task = Counting()
  state, done, interrupted, ckpt = _fit(task)
  assert done == 10 and interrupted is None and float(state["x"]) == 10 and ckpt.saved == [4, 8, 10]
  # Windows end at multiples of 3, read after the next step; all pending ones before each validation at 4, 8, 10.
  assert task.events == [("read", [1, 2, 3]), ("read", [4]), ("evaluate", 4), ("read", [5, 6]), ("read", [7, 8]),
                         ("evaluate", 8), ("read", [9]), ("read", [10]), ("evaluate", 10)]


def test_non_finite_parameters_are_never_saved():
  task = Counting(nan_at=6)
  with pytest.raises(guards.TrainingDiverged, match="non-finite parameters at step 8, not saved; last good "
                     "checkpoint: step 4 in ckpt .kept.; lower the rate"):
    _fit(task)


def test_early_stop_saves_and_ends():
  task = Counting(stop_at=8)
  _, done, _, ckpt = _fit(task)
  assert done == 8 and ckpt.saved == [4, 8]


def test_a_diverging_finetuning_stops_and_saves_nothing_non_finite(tiny_run, tmp_path, capsys):
  base, _ = tiny_run
  rng = np.random.default_rng(0)
  rows = [f"r{i},{''.join(rng.choice(list('ACGT'), 40))},{i % 2}\n" for i in range(48)]
  train = write(tmp_path / "t.csv", "id,sequence,label\n" + "".join(rows))
  val = write(tmp_path / "v.csv", "id,sequence,label\n" + "".join(rows[:24]))
  out = tmp_path / "ft"
  code = cli.main(["finetune", "--workdir", base, "--train", train, "--val", val, "--output", str(out), "--method",
                   "full", "--config.finetune.learning_rate=1e30", "--config.finetune.epochs=2",
                   "--config.finetune.batch=16", "--config.finetune.log_every=1", "--no-progress"])
  err = capsys.readouterr().err.strip().splitlines()
  assert code == 2 and "diverged" in err[-1] and "lower --config.finetune.learning_rate" in err[-1]
  assert "steps " in err[-1]
  assert not out.exists()  # nothing non-finite saved, and the --output it created removed: the advised rerun can use it
  assert cli.main(["finetune", "--workdir", base, "--train", train, "--val", val, "--output", str(out), "--method",
                   "full", "--config.finetune.epochs=1", "--config.finetune.batch=16", "--no-progress"]) == 0


def _rows(tmp_path):
  rng = np.random.default_rng(1)
  rows = []
  for i in range(48):
    s = list(rng.choice(list("ACGT"), 40))
    if i % 2:
      s[10:16] = "TATAAA"
    rows.append(f"r{i},{''.join(s)},{i % 2}\n")
  return (write(tmp_path / "t.csv", "id,sequence,label\n" + "".join(rows)),
          write(tmp_path / "v.csv", "id,sequence,label\n" + "".join(rows[:24])))


def test_finetuning_gradient_accumulation_gives_the_same_model(tiny_run, tmp_path, capsys):
  base, _ = tiny_run
  train, val = _rows(tmp_path)
  results = []
  for accum in (1, 2):
    out = tmp_path / f"ft{accum}"
    assert cli.main(["finetune", "--workdir", base, "--train", train, "--val", val, "--output", str(out), "--method",
                     "full", "--config.finetune.epochs=2", "--config.finetune.batch=16", "--config.finetune.dropout=0",
                     "--config.finetune.head_dropout=0", f"--config.finetune.grad_accum={accum}",
                     "--no-progress"]) == 0
    results.append(rundir.read_result(rundir.seed_dir(str(out), 0))["val"])
  # A rerun of a finished fine-tuning trains nothing and keeps the wall time of the run that trained it.
  before = rundir.read_info(str(tmp_path / "ft2"))
  assert cli.main(["finetune", "--workdir", base, "--train", train, "--val", val, "--output", str(tmp_path / "ft2"),
                   "--method", "full", "--config.finetune.epochs=2", "--config.finetune.batch=16",
                   "--config.finetune.dropout=0", "--config.finetune.head_dropout=0",
                   "--config.finetune.grad_accum=2", "--no-progress"]) == 0
  after = rundir.read_info(str(tmp_path / "ft2"))
  assert after["wall_seconds"] == before["wall_seconds"] and after["runs"] == before["runs"]
  capsys.readouterr()
  assert results[0]["accuracy"] == results[1]["accuracy"]
  assert np.isclose(results[0]["loss"], results[1]["loss"], rtol=1e-4)


def test_finetuning_skip_nonfinite_keeps_going_then_says_it_diverged(tiny_run, tmp_path, capsys):
  base, _ = tiny_run
  train, val = _rows(tmp_path)
  code = cli.main(["finetune", "--workdir", base, "--train", train, "--val", val, "--output", str(tmp_path / "ft"),
                   "--method", "full", "--config.finetune.learning_rate=1e30", "--config.finetune.skip_nonfinite=True",
                   "--config.finetune.epochs=2", "--config.finetune.batch=16", "--config.finetune.log_every=1",
                   "--no-progress"])
  err = capsys.readouterr().err
  assert code == 2 and "diverged" in err.strip().splitlines()[-1]
