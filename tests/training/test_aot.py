"""The compiled step's memory against the device's (train.memory_limit_gib), train.grad_accum=auto and the dry run,
through the CLI: a step that does not fit is refused in one line naming the count that fits, after compiling only
the candidates and before anything is written; auto trains exactly as that count set by hand."""

import json
import logging
import os
import re
import subprocess
import sys

import jax
import pytest
from conftest import ROOT, refused

from dnajax import cli, config
from dnajax.errors import UserError

# The tiny config's step on CPU needs ~5.5 MiB per device with one micro-batch and ~2.9 MiB with two with the fused
# attention kernel (7.6 and 4.0 MiB with XLA's einsum, where the kernel cannot be built): a limit of 6 MiB (75%
# planned: 4.5 MiB) fits two, not one, either way.
LIMIT = ["--config.train.memory_limit_gib=0.005859375"]
SHORT = ["--config.train.steps=4", "--config.train.eval_every=4", "--config.ckpt.every=4", "--config.train.log_every=1",
         "--config.eval.max_windows=16", "--no-progress"]


@pytest.fixture
def step_compiles(caplog):
  """The messages of every compile of the training step (the only jitted step taking the state's int32 counter);
  jax_log_compiles on for the test."""
  jax.config.update("jax_log_compiles", True)
  caplog.set_level(logging.WARNING, logger="jax")
  yield lambda: [r.getMessage() for r in caplog.records
                 if r.getMessage().startswith("Compiling jit(wrapped)") and "int32[]" in r.getMessage()]
  jax.config.update("jax_log_compiles", False)


def losses(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [r["train/mlm_cross_entropy"] for r in map(json.loads, f) if r["split"] == "train"]


def test_a_step_that_does_not_fit_is_refused_with_the_count_that_fits(tmp_path, capsys, step_compiles):
  workdir = tmp_path / "w"
  line = refused(capsys, "train", "--config", "tiny", "--workdir", str(workdir), *LIMIT)
  assert re.search(r"config: the training step \(16 x 64 windows, train.grad_accum=1\) needs \d+\.\d MiB per "
                   r"device but the limit is 6\.0 MiB per device \(train.memory_limit_gib\), of which 75% \(4\.5 "
                   r"MiB\) is planned for one step; set --config.train.grad_accum=2 \(\d\.\d MiB per device\) or "
                   r"--config.train.grad_accum=auto$", line), line
  assert not workdir.exists()  # nothing written
  assert len(step_compiles()) == 2  # the step as configured and the count that fits; nothing else


def test_grad_accum_auto_trains_as_the_count_set_by_hand(tmp_path, capsys, step_compiles):
  auto, hand = str(tmp_path / "auto"), str(tmp_path / "hand")
  assert cli.main(["train", "--config", "tiny", "--workdir", auto, "--config.train.grad_accum=auto", *LIMIT,
                   *SHORT]) == 0
  assert len(step_compiles()) == 2  # 1 (does not fit) and 2; the first training step runs the compiled one
  with open(os.path.join(auto, "config.json")) as f:
    assert json.load(f)["train"]["grad_accum"] == 2  # the resolved count, not "auto"
  assert cli.main(["train", "--config", "tiny", "--workdir", hand, "--config.train.grad_accum=2", *SHORT]) == 0
  capsys.readouterr()
  a, h = losses(auto), losses(hand)
  assert len(a) == 4 and a == h


def test_dry_run_prints_the_plan(capsys, tmp_path):
  assert cli.main(["train", "--config", "tiny", "--workdir", str(tmp_path / "d"), "--dry-run",
                   "--config.train.grad_accum=auto"]) == 0
  out = capsys.readouterr().out
  assert "peak estimate" in out and "train.grad_accum=1" in out
  assert "(host memory available" in out and "is planned for one step: fits" in out
  assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("argv,needle", [
    (["--config.train.grad_accum=x"], "--config.train.grad_accum=x: expected an integer or auto"),
    (["--config.train.grad_accum=0"], "train.grad_accum=0: must be an integer >= 1 or auto"),
    (["--config.train.memory_limit_gib=-1"], "train.memory_limit_gib=-1.0: must be a number >= 0"),
])
def test_bad_values_are_refused(capsys, tmp_path, argv, needle):
  assert needle in refused(capsys, "train", "--config", "tiny", "--workdir", str(tmp_path / "w"), *argv)
  assert not (tmp_path / "w").exists()


def test_auto_and_integers_override_each_other():
  cfg = config.load("configs/base.py", [("train.grad_accum", "4")])
  assert cfg.train.grad_accum == 4
  assert config.load("configs/base.py").train.grad_accum == "auto"
  assert config.load("configs/tiny.py", [("train.grad_accum", "auto")]).train.grad_accum == "auto"
  with pytest.raises(UserError, match="an integer or auto"):
    config.load("configs/base.py", [("train.grad_accum", "2.5")])


@pytest.mark.slow
def test_large_config_dry_run_on_the_pod_it_was_sized_for():
  """configs/large.py on 8 fake devices (one node of 8 80 GB GPUs, at their 59.7 GiB bytes_limit): its FSDP mesh
  compiles and the step fits with 16 micro-batches (by CPU XLA's memory, an upper bound of a GPU's)."""
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", PYTHONPATH=ROOT)
  r = subprocess.run([sys.executable, "-m", "dnajax.cli", "train", "--config", "large", "--workdir", "unused",
                      "--dry-run", "--config.train.memory_limit_gib=59.7", "--config.train.grad_accum=16"],
                     capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
  assert r.returncode == 0, r.stderr[-2000:]
  assert "{'data': 1, 'fsdp': 8, 'tensor': 1} on 8 devices; 498,193,928 parameters" in r.stdout
  assert "train.grad_accum=16) needs" in r.stdout and r.stdout.rstrip().endswith(": fits"), r.stdout
