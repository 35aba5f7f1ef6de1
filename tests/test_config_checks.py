"""Config ranges, argument checks and error wording through the CLI: one line `dnajax: error: ...`, exit code 2,
nothing written (no workdir, no output file)."""

import os
import subprocess

import pytest
from conftest import ROOT, refused

from dnajax import cli, config
from dnajax.errors import UserError


@pytest.mark.parametrize("override,needle", [
    ("train.global_batch=0", "train.global_batch=0: must be an integer >= 1"),
    ("train.steps=0", "train.steps=0: must be an integer >= 1"),
    ("train.steps=-5", "train.steps=-5: must be an integer >= 1"),
    ("train.grad_accum=0", "train.grad_accum=0: must be an integer >= 1"),
    ("train.log_every=0", "train.log_every=0"),
    ("train.eval_every=0", "train.eval_every=0"),
    ("ckpt.every=0", "ckpt.every=0"),
    ("ckpt.keep=0", "ckpt.keep=0"),
    ("eval.batch=0", "eval.batch=0"),
    ("eval.max_windows=-1", "eval.max_windows=-1"),
    ("data.seq_len=0", "data.seq_len=0"),
    ("data.min_len=0", "data.min_len=0"),
    ("model.num_layers=0", "model.num_layers=0"),
    ("model.d_model=-64", "model.d_model=-64"),
    ("model.num_heads=0", "model.num_heads=0"),
    ("model.d_ff=0", "model.d_ff=0"),
    ("data.mask_rate=0", "data.mask_rate=0.0: must be a number in (0, 1)"),
    ("data.mask_rate=1", "data.mask_rate=1.0: must be a number in (0, 1)"),
    ("eval.mask_rate=1.5", "eval.mask_rate=1.5: must be a number in (0, 1)"),
    ("data.mask_rate_max=0.1", "data.mask_rate_max=0.1: must be 0 (one rate, data.mask_rate) or in "
                               "[data.mask_rate=0.15, 1)"),
    ("data.mask_rate_max=1.0", "data.mask_rate_max=1.0"),
    ("data.max_n_fraction=1.5", "data.max_n_fraction=1.5: must be a number in [0, 1]"),
    ("data.n_run=-1", "data.n_run=-1: must be an integer >= 0 (0: records are not split at runs of N)"),
    ("opt.learning_rate=0", "opt.learning_rate=0.0: must be a number > 0"),
    ("opt.warmup_steps=-1", "opt.warmup_steps=-1: must be an integer >= 0"),
    ("opt.weight_decay=-0.1", "opt.weight_decay=-0.1: must be a number >= 0"),
    ("opt.clip_norm=-1", "opt.clip_norm=-1.0: must be a number >= 0"),
    ("train.seed=-1", "train.seed=-1: must be an integer >= 0"),
    ("opt.learning_rate=inf", "opt.learning_rate=inf: not a finite number"),
    ("data.weights=0.5,,0.5", "data.weights=0.5,,0.5: expected comma-separated numbers"),
    ("data.softmask_weight=2", "data.softmask_weight=2.0: must be a number in [0, 1]"),
])
def test_train_refuses_out_of_range_config_values(capsys, tmp_path, override, needle):
  workdir = tmp_path / "run"
  line = refused(capsys, "train", "--config", "tiny", "--workdir", str(workdir), f"--config.{override}")
  assert f"--config.{needle}" in line
  assert not workdir.exists()


def test_valid_edge_values_are_accepted():
  c = config.load("tiny", [("data.mask_rate_max", "0.3"), ("data.n_run", "0"), ("opt.clip_norm", "0"),
                           ("opt.warmup_steps", "0"), ("opt.weight_decay", "0"), ("data.max_n_fraction", "1")])
  config.check(c)
  for name in config.shipped():
    config.check(config.load(name))


def test_check_covers_a_config_changed_after_loading():
  from dnajax.training.program import TrainProgram

  c = config.load("tiny")
  with c.unlocked():
    c.train.global_batch = 0
  with pytest.raises(UserError, match=r"train.global_batch=0: must be an integer >= 1"):
    TrainProgram(c)
  c = config.load("tiny")
  with c.unlocked():
    c.data.val_fraction = 1.5
  with pytest.raises(UserError, match=r"validation fraction 1.5 .*0 <= fraction < 1"):
    TrainProgram(c)


@pytest.mark.parametrize("args,needle", [
    (["--stop-at", "-3"], "--stop-at -3: must be a step >= 1"),
    (["--stop-at", "0"], "--stop-at 0: must be a step >= 1"),
    (["--num-processes", "0"], "--num-processes 0: must be an integer >= 1"),
    (["--num-processes", "2", "--process-id", "2"], "--process-id 2: must be in 0 .. --num-processes - 1"),
])
def test_train_refuses_bad_arguments(capsys, tmp_path, args, needle):
  workdir = tmp_path / "run"
  assert needle in refused(capsys, "train", "--config", "tiny", "--workdir", str(workdir), *args)
  assert not workdir.exists()


def test_bench_refuses_out_of_range_config_values_before_any_worker(capsys, tmp_path):
  out = tmp_path / "bench.json"
  line = refused(capsys, "bench", "--config", "tiny", "--output", str(out), "--config.train.global_batch=0")
  assert "--config.train.global_batch=0: must be an integer >= 1" in line and "worker" not in line
  assert not out.exists()


@pytest.mark.parametrize("value", ["two", "2.5"])
def test_override_type_wording(capsys, tmp_path, value):
  line = refused(capsys, "train", "--workdir", str(tmp_path / "w"), f"--config.model.num_layers={value}")
  assert f"--config.model.num_layers={value}: expected an integer, e.g. --config.model.num_layers=3" in line
  assert "expected a float, e.g." in refused(capsys, "train", "--workdir", str(tmp_path / "w"),
                                             "--config.opt.learning_rate=fast")
  assert "expected true or false, e.g." in refused(capsys, "train", "--workdir", str(tmp_path / "w"),
                                                   "--config.data.cds=maybe")
  assert not (tmp_path / "w").exists()


def test_parser_errors_name_the_program_once_and_the_verbs_help(capsys, tmp_path):
  line = refused(capsys, "train", "--workdir", str(tmp_path / "w"), "--bogus")
  assert line == "dnajax: error: unrecognized arguments: --bogus; see `dnajax train --help`"
  line = refused(capsys, "prepare", "--input", "x.fa", "--output", str(tmp_path / "c"), "--min-len", "ten")
  assert line == "dnajax: error: argument --min-len: not an integer: 'ten'; see `dnajax prepare --help`"
  line = refused(capsys, "prepare", "--input", "x.fa", "--output", str(tmp_path / "c"), "--val-fraction", "half")
  assert "argument --val-fraction: not a number: 'half'" in line
  assert refused(capsys, "nope").count("dnajax") == 2  # the prefix and `dnajax --help`
  assert not (tmp_path / "w").exists() and not (tmp_path / "c").exists()


def test_design_help_shows_defaults(capsys):
  with pytest.raises(SystemExit) as e:
    cli.main(["design", "--help"])
  assert e.value.code == 0
  text = " ".join(capsys.readouterr().out.split())
  for needle in ("(default: 0 = no limit)", "(default: 0 = off)", "0-1 (default: 0 = unconstrained)",
                 "0-1 (default: 1 = unconstrained)", "(default: 50)", "e_coli (default)", "default: 3 for",
                 "(default: none)", "default: 1)", "(default: 0)"):
    assert needle in text, needle


LAUNCH = os.path.join(ROOT, "launch", "local_multiprocess.sh")


@pytest.mark.parametrize("args,needle", [
    (["abc", "train"], "the process count N 'abc' is not a positive integer"),
    (["0", "train"], "the process count N '0' is not a positive integer"),
    (["-2", "train"], "the process count N '-2' is not a positive integer"),
    (["2", "--devices-per-process", "x", "train"], "--devices-per-process 'x' is not a positive integer"),
    (["2", "--devices-per-process", "0", "train"], "--devices-per-process '0' is not a positive integer"),
    (["2", "--port", "-1", "train"], "--port '-1' is not a positive integer"),
    (["2", "--port", "70000", "train"], "--port '70000' is above 65535"),
    (["2", "--port"], "--port needs a value"),
    (["2", "--port", "5"], "no dnajax verb given"),
])
def test_launch_script_refuses_bad_counts(args, needle):
  r = subprocess.run(["bash", LAUNCH, *args], capture_output=True, text=True,
                     env=dict(os.environ, DNAJAX="/bin/false"))
  assert r.returncode == 2, r.stderr
  assert needle in r.stderr and "Usage:" in r.stderr and "unbound variable" not in r.stderr, r.stderr
