import os
import shutil

import pytest

from dnajax.apps import report
from dnajax.errors import UserError


def test_report_plots_and_summary(tiny_run, tmp_path):
  workdir, final = tiny_run
  md, images = report.report(workdir, str(tmp_path / "out" / "run.md"))
  text = open(md).read()
  assert "| this model |" in text and "| Bayes-optimal (exact) |" in text and "| k-mer context model |" in text
  assert f"{final['masked_accuracy']:.4f}" in text and f"{100 * final['fraction_of_bayes']:.1f}%" in text
  for path in images:
    with open(path, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.basename(path) in text
  # The Bayes limit, the k-mer model, the majority base and uniform are the accuracy plot's reference lines.
  labels = [label for label, _ in report.reference_lines(report.read_metrics(workdir)["val"], "masked_accuracy")]
  assert labels[0] == "Bayes-optimal" and labels[1].startswith("k-mer") and labels[2:] == ["majority base", "uniform"]


def test_report_tolerates_a_torn_last_line_and_rejects_non_runs(tiny_run, tmp_path):
  workdir, _ = tiny_run
  copy = tmp_path / "run"
  shutil.copytree(workdir, copy, ignore=shutil.ignore_patterns("checkpoints", "corpus", "tensorboard"))
  with open(copy / "metrics.jsonl", "a") as f:
    f.write('{"step": 61, "split": "tr')  # what a run killed mid-write leaves
  assert report.read_metrics(str(copy))["train"][-1]["step"] == 60
  with pytest.raises(UserError, match="no metrics.jsonl"):
    report.report(str(tmp_path / "empty"))
  (tmp_path / "bad").mkdir()
  (tmp_path / "bad" / "metrics.jsonl").write_text("hello\nworld\n")
  with pytest.raises(UserError, match="line 1 is not a metrics record"):
    report.read_metrics(str(tmp_path / "bad"))
