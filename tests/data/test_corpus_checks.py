"""Split settings in range, and no corpus (or baseline, or training run) with an empty training split: one line,
exit code 2, nothing left behind."""

import json
import os

import numpy as np
import pytest
from conftest import refused, write

from dnajax import cli
from dnajax.data import corpus
from dnajax.errors import UserError


@pytest.fixture
def fasta(tmp_path):
  rng = np.random.default_rng(0)
  return write(tmp_path / "lambda.fa", ">lambda\n" + "".join(rng.choice(list("ACGT"), 5000)) + "\n")


def _left(tmp_path):
  return sorted(p for p in os.listdir(tmp_path) if p != "lambda.fa")


@pytest.mark.parametrize("value", ["1.5", "nan", "inf", "-0.1", "1", "1.0"])
def test_prepare_refuses_a_val_fraction_out_of_range(capsys, tmp_path, fasta, value):
  line = refused(capsys, "prepare", "--input", fasta, "--output", str(tmp_path / "cp"), "--val-fraction", value)
  assert "validation fraction" in line and "0 <= fraction < 1" in line and "--val-fraction" in line
  assert _left(tmp_path) == []


def test_prepare_refuses_an_empty_training_split(capsys, tmp_path, fasta):
  line = refused(capsys, "prepare", "--input", fasta, "--output", str(tmp_path / "cp"), "--val-fraction", "0.999")
  assert "the training split would be empty" in line and "lower the validation fraction" in line
  assert _left(tmp_path) == []


@pytest.mark.parametrize("flag,value,needle", [("--min-len", "-5", "minimum segment length -5"),
                                               ("--min-len", "0", "minimum segment length 0"),
                                               ("--n-run", "-1", "N-run length -1"),
                                               ("--seed", "-1", "split seed -1")])
def test_prepare_refuses_other_settings_out_of_range(capsys, tmp_path, fasta, flag, value, needle):
  assert needle in refused(capsys, "prepare", "--input", fasta, "--output", str(tmp_path / "cp"), flag, value)
  assert _left(tmp_path) == []


def test_prepare_edge_values_work(capsys, tmp_path, fasta):
  assert cli.main(["prepare", "--input", fasta, "--output", str(tmp_path / "a"), "--val-fraction", "0",
                   "--n-run", "0", "--min-len", "1"]) == 0
  assert "5,000 train / 0 val bases" in capsys.readouterr().out
  with pytest.raises(SystemExit):
    cli.main(["prepare", "--help"])
  assert "0: never split at N runs" in " ".join(capsys.readouterr().out.split())


def test_split_settings_is_the_one_check():
  for kwargs in ({"val_fraction": 1.5}, {"val_fraction": float("nan")}, {"val_fraction": -0.1}, {"mode": "x"},
                 {"min_len": 0}, {"n_run": -1}, {"seed": -1}):
    with pytest.raises(UserError):
      corpus.SplitSettings(**kwargs)
  corpus.SplitSettings(val_fraction=0.0, n_run=0, min_len=1)


def _corpus_without_training_split(tmp_path, fasta, capsys):
  out = str(tmp_path / "cp")
  assert cli.main(["prepare", "--input", fasta, "--output", out, "--val-fraction", "0"]) == 0
  capsys.readouterr()
  path = os.path.join(out, "index.json")
  with open(path) as f:
    index = json.load(f)
  for s in index["segments"]:  # as written by an older dnajax (or by hand): every segment held out
    s["split"] = "val"
  with open(path, "w") as f:
    json.dump(index, f)
  return out


def test_baseline_refuses_a_corpus_without_training_bases(capsys, tmp_path, fasta):
  cp = _corpus_without_training_split(tmp_path, fasta, capsys)
  line = refused(capsys, "baseline", "--data", cp, "--input", fasta, "--json")
  assert "the training split has no A/C/G/T base" in line and "fitted on nothing" in line


@pytest.mark.parametrize("flag,value,needle", [("--seq-len", "0", "--seq-len 0: must be an integer >= 1"),
                                               ("--seed", "-1", "--seed -1: must be an integer >= 0")])
def test_baseline_refuses_arguments_out_of_range(capsys, tmp_path, fasta, flag, value, needle):
  assert needle in refused(capsys, "baseline", "--data", fasta, "--input", fasta, flag, value)


def test_train_refuses_an_empty_split(capsys, tmp_path, fasta):
  cp = _corpus_without_training_split(tmp_path, fasta, capsys)
  workdir = tmp_path / "run"
  line = refused(capsys, "train", "--config", "tiny", "--workdir", str(workdir), "--data", cp)
  assert "the training split is empty" in line
  assert not workdir.exists()
  line = refused(capsys, "train", "--config", "tiny", "--workdir", str(workdir), "--data", fasta,
                 "--config.data.val_fraction=0")
  assert "the validation split would be empty" in line and "data.val_fraction" in line
  assert not workdir.exists()
  line = refused(capsys, "train", "--config", "tiny", "--workdir", str(workdir), "--data", fasta,
                 "--config.data.val_fraction=1.5")
  assert "validation fraction 1.5" in line and "--config.data.val_fraction" in line
  assert not workdir.exists()
