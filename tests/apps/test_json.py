"""Every JSON dnajax prints or writes parses with a strict parser (RFC 8259: no NaN or Infinity literals), also when a
value is computed over nothing (an all-N record): `evaluate`, `score` and `baseline` with `--json`, the JSON file
of `bench` and its worker's line, `metrics.jsonl` (read by `report`), and config.json."""

import json
import os
import shutil

import numpy as np
import pytest
from conftest import write

from dnajax import cli
from dnajax.apps import bench, report
from dnajax.training import writer as writer_lib


def strict(text: str):
  """`text` parsed as JSON, failing the test on a NaN, Infinity or -Infinity literal."""
  return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c} in {text[:200]}"))


@pytest.fixture
def with_all_n(tmp_path):
  """A FASTA with a real record, an all-N record and three bases among N."""
  real = "".join(np.random.default_rng(5).choice(list("ACGT"), 400))
  return write(tmp_path / "mixed.fa", f">real\n{real}\n>all_n\n{'N' * 300}\n>three\n{'N' * 40}ACG{'N' * 40}\n")


def _run(capsys, *argv):
  code = cli.main(list(argv))
  out, err = capsys.readouterr()
  return code, out, err


def test_evaluate_json_is_strict(tiny_run, with_all_n, tmp_path, capsys):
  workdir, _ = tiny_run
  code, out, err = _run(capsys, "evaluate", "--workdir", workdir, "--input", with_all_n, "--json")
  assert code == 0, err
  r = strict(out)
  assert r["num_masked"] > 0 and all(v is None or 0 <= v <= 1 for v in r["per_base_accuracy"].values())
  only_n = write(tmp_path / "only_n.fa", ">n\n" + "N" * 4000 + "\n")
  code, out, err = _run(capsys, "evaluate", "--workdir", workdir, "--input", only_n, "--json")
  assert code == 2 and out == "" and len(err.strip().splitlines()) == 1


def test_score_json_is_strict(tiny_run, with_all_n, capsys):
  code, out, err = _run(capsys, "score", "--workdir", tiny_run[0], "--input", with_all_n, "--json")
  assert code == 0, err
  seqs = {s["name"]: s for s in strict(out)["sequences"]}
  assert seqs["all_n"]["pll"] is None and seqs["all_n"]["pll_per_base"] is None
  assert seqs["three"]["scored_bases"] == 3 and seqs["real"]["pll_per_base"] < 0


def test_baseline_json_is_strict(with_all_n, tmp_path, capsys):
  rng = np.random.default_rng(6)
  train = write(tmp_path / "train.fa", "".join(f">r{i}\n{''.join(rng.choice(list('ACGT'), 2000))}\n" for i in range(3)))
  code, out, err = _run(capsys, "baseline", "--data", train, "--input", with_all_n, "--json")
  assert code == 0, err
  r = strict(out)
  assert r["num_masked"] > 0 and r["baselines"]["kmer_of_training_data"]["loss"] > 0


def test_bench_json_file_and_worker_line_are_strict(tmp_path, monkeypatch, capsys):
  """A measurement with non-finite numbers (a ratio over a zero time, an unknown peak) still writes strict JSON."""
  nan, inf = float("nan"), float("inf")
  measurement = {"tokens_per_second": inf, "tokens_per_second_min": nan, "tokens_per_second_max": inf,
                 "steps_per_second": nan, "compile_seconds": 1.0, "flops_per_token": 10.0, "achieved_flops": nan,
                 "peak_flops": None, "peak_flops_source": "none", "mfu": nan, "peak_host_rss_gib": 0.5,
                 "input_pipeline_tokens_per_second": 1.0, "input_pipeline_ratio": nan, "parameters": 7,
                 "device_kind": "cpu", "device_count": 1, "framework": "jax"}
  monkeypatch.setattr(bench, "run_jax", lambda cfg, steps, windows: dict(measurement))
  line = bench.worker_main(["configs/tiny.py", "[]", "1", "1"])
  assert "\n" not in line and strict(line)["mfu"] is None
  monkeypatch.setattr(bench, "worker", lambda *a: json.loads(line))
  out = tmp_path / "b.json"
  assert cli.main(["bench", "--config", "configs/tiny.py", "--output", str(out)]) == 0
  table = capsys.readouterr().out
  r = strict(out.read_text())
  assert r["jax"]["tokens_per_second"] is None and r["input_pipeline_ratio"] is None
  assert "nan" not in table.lower() and "inf" not in table.lower().replace("info", "")


def test_metrics_jsonl_config_json_and_report_with_nulls(tiny_run, tmp_path):
  workdir, _ = tiny_run
  lines = open(os.path.join(workdir, "metrics.jsonl")).read().splitlines()
  assert lines and all(isinstance(strict(x), dict) for x in lines)
  strict(open(os.path.join(workdir, "config.json")).read())
  # A validation over nothing and a non-finite training number: null in metrics.jsonl, `-` in the report.
  run = tmp_path / "run"
  shutil.copytree(workdir, run, ignore=shutil.ignore_patterns("checkpoints", "corpus", "tensorboard"))
  w = writer_lib.MetricsWriter(str(run), tensorboard=False)
  w.write(61, "train", {"train/mlm_cross_entropy": float("nan"), "train/masked_accuracy": None,
                        "perf/tokens_per_second": float("inf")})
  w.write(61, "val", {"val/masked_accuracy": None, "val/loss": None, "val/num_masked": 0,
                      "val/fraction_of_bayes": None, "val/excess_loss": None, "val/bayes/masked_accuracy": None,
                      "val/bayes/loss": None, "val/baselines/uniform": 0.25})
  w.close()
  for x in open(run / "metrics.jsonl").read().splitlines():
    strict(x)
  md, _ = report.report(str(run))
  text = open(md).read()
  assert "| this model | - | - |" in text and "-% of the Bayes-optimal" in text and "None" not in text
