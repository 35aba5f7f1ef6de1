"""The CLI end to end: evaluate and predict on a saved checkpoint, and one-line errors for bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, shared_file, write

from dnajax import cli

PROTEIN = ">sp|P69905|HBA_HUMAN\nMVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHFDLSHGSAQVKGHGKKVADALTNAVAHVDDMPNALSAL\n"


def run_cli(capsys, *argv):
  code = cli.main(list(argv))
  out, err = capsys.readouterr()
  return code, out, err


def test_evaluate_json(tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  rng = np.random.default_rng(0)
  seq = "".join(rng.choice(list("ACGT"), 3000)) + "acgtacgtac" * 50
  fa = write(tmp_path / "x.fa", f">a\n{seq}\n>b\n{seq[:700]}\n")
  code, out, err = run_cli(capsys, "evaluate", "--workdir", workdir, "--input", fa, "--json", "--mask-rate", "0.3")
  assert code == 0, err
  r = json.loads(out)
  for key in ("masked_accuracy", "loss", "perplexity", "num_masked", "checkpoint_step", "mask_rate",
              "per_base_accuracy", "strata", "reverse_complement"):
    assert key in r
  assert r["checkpoint_step"] == 60 and r["mask_rate"] == 0.3 and set(r["per_base_accuracy"]) == set("ACGT")
  assert 0 < r["baselines"]["kmer_of_training_data"]["masked_accuracy"] < 1
  st = r["strata"]
  assert st["repeat"]["num_masked"] + st["non_repeat"]["num_masked"] == r["num_masked"]
  assert sum(v["num_masked"] for k, v in st.items() if k.startswith("gc_")) == r["num_masked"]
  assert "coding" not in st  # FASTA carries no annotation
  assert 0 < st["repeat"]["baselines"]["kmer_of_training_data"]["masked_accuracy"] < 1  # beside each stratum
  assert "no training corpus" not in err
  code, out, err = run_cli(capsys, "evaluate", "--workdir", "human-chr17", "--input", fa, "--json")
  assert code == 0 and "kmer_of_training_data" not in json.loads(out)["baselines"]
  assert "human-chr17: no training corpus here" in err  # why the k-mer model is not beside it
  rc = r["reverse_complement"]  # the mapping itself is tested in test_metrics
  assert 0 <= rc["agreement"] <= 1 and 0 <= rc["mean_tv_distance"] <= 1
  assert 0.2 < rc["masked_accuracy_from_reverse_strand"] < 1
  assert abs(r["num_masked"] - 0.3 * 4200) < 100
  assert abs(r["perplexity"] - np.exp(r["loss"])) < 1e-9
  # Same seed, same input, same checkpoint: the same numbers; an older checkpoint differs.
  assert json.loads(run_cli(capsys, "evaluate", "--workdir", workdir, "--input", fa, "--json", "--mask-rate",
                            "0.3")[1]) == r
  older = json.loads(run_cli(capsys, "evaluate", "--workdir", workdir, "--input", fa, "--json", "--step", "30")[1])
  assert older["checkpoint_step"] == 30


def test_evaluate_genbank_text(tiny_run, capsys):
  code, out, err = run_cli(capsys, "evaluate", "--workdir", tiny_run[0], "--input", shared_file("NC_005816.gb"))
  assert code == 0, err
  assert "masked_accuracy" in out and "majority base of input" in out


def test_predict_tsv_and_fasta(tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  rng = np.random.default_rng(1)
  long = list("".join(rng.choice(list("ACGT"), 300)))  # longer than the model's 64-base windows
  for p in (0, 5, 150, 299):
    long[p] = "?"
  fa = write(tmp_path / "q.fa", f">long\n{''.join(long)}\n>short\nAC?TAC\n")
  out_tsv = str(tmp_path / "out" / "pred.tsv")
  code, _, err = run_cli(capsys, "predict", "--workdir", workdir, "--input", fa, "--output", out_tsv)
  assert code == 0, err
  lines = open(out_tsv).read().splitlines()
  assert lines[0] == "record\tposition\tA\tC\tG\tT\tpredicted"
  rows = [x.split("\t") for x in lines[1:]]
  assert [(r[0], int(r[1])) for r in rows] == [("long", 0), ("long", 5), ("long", 150), ("long", 299), ("short", 2)]
  for r in rows:
    probs = np.array([float(x) for x in r[2:6]])
    assert abs(probs.sum() - 1) < 1e-6 and len(r[2].split(".")[1]) >= 6
    assert r[6] == "ACGT"[int(probs.argmax())]
  filled = open(str(tmp_path / "out" / "pred.fasta")).read().split(">")[1:]
  long_filled = filled[0].split("\n", 1)[1].replace("\n", "")
  assert len(long_filled) == 300 and "?" not in long_filled and long_filled[150] == rows[2][6]
  # Without --output the TSV goes to stdout.
  code, out, _ = run_cli(capsys, "predict", "--workdir", workdir, "--input", fa)
  assert code == 0 and out.splitlines() == lines


def test_train_cli_with_overrides_then_resume(tmp_path, capsys):
  w = str(tmp_path / "w")
  args = ["train", "--config", os.path.join(ROOT, "configs/tiny.py"), "--workdir", w, "--no-progress",
          "--config.train.steps=4", "--config.train.eval_every", "4"]
  code, out, err = run_cli(capsys, *args)
  assert code == 0, err
  assert "final validation (step 4" in out and "Bayes-optimal" in out
  code, out, err = run_cli(capsys, *args)  # nothing left to do: reports the restored checkpoint
  assert code == 0 and "step 4" in out


def test_train_refuses_a_workdir_with_another_model(tiny_run, capsys):
  code, _, err = run_cli(capsys, "train", "--config", "configs/tiny.py", "--workdir", tiny_run[0],
                         "--config.model.d_model=64")
  assert code == 2 and "different model config" in err and err.count("\n") == 1


BAD_INPUTS = {
    "protein.fa": PROTEIN,
    "empty.fa": "",
    "junk.fa.gz": b"\x1f\x8b\x08\x00garbage that is not deflate data",
    "binary.fa": bytes(range(256)) * 8,
    "truncated.gb": "LOCUS       T1   40 bp    DNA     linear   BCT 01-JAN-2000\nORIGIN\n        1 acgtacgtac gt",
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_prepare_rejects_bad_input_in_one_line(tmp_path, capsys, name):
  content = BAD_INPUTS[name]
  path = tmp_path / name
  path.write_bytes(content if isinstance(content, bytes) else content.encode())
  out_dir = tmp_path / "corpus"
  code, out, err = run_cli(capsys, "prepare", "--input", str(path), "--output", str(out_dir))
  assert code == 2
  assert err.count("\n") == 1 and err.startswith("dnajax: error: ") and str(path) in err
  assert not out_dir.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".corpus")]


@pytest.mark.parametrize("argv,needle", [
    (["train", "--workdir", "W", "--config.model.num_layer=3"], "unknown config key"),
    (["train", "--workdir", "W", "--config.model.num_heads=5"], "not divisible"),
    (["evaluate", "--workdir", "NOPE", "--input", "x.fa"], "x.fa"),
    (["train", "--workdir", "W", "--data", "missing.fa"], "missing.fa"),
    (["frobnicate"], "invalid choice"),
])
def test_usage_errors_are_one_line(tmp_path, capsys, monkeypatch, argv, needle):
  monkeypatch.chdir(tmp_path)
  code, _, err = run_cli(capsys, *argv)
  assert code == 2 and err.count("\n") == 1 and needle in err, err
  assert not os.path.exists(tmp_path / "W")


def test_console_script_protein_fasta_no_traceback(tmp_path):
  fa = write(tmp_path / "p.fa", PROTEIN)
  exe = os.path.join(os.path.dirname(sys.executable), "dnajax")
  cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "dnajax.cli"]
  r = subprocess.run(cmd + ["prepare", "--input", fa, "--output", str(tmp_path / "c")], capture_output=True,
                     text=True, cwd=ROOT)
  assert r.returncode == 2 and "Traceback" not in r.stderr
  assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "protein" in r.stderr
