"""`dnajax finetune` and `dnajax predict` on its directory: methods, windows, resume, meshes, bad inputs."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import ROOT, refused, write

from dnajax import cli, config
from dnajax.data import labels, tables, tokens
from dnajax.errors import UserError
from dnajax.training import finetune_job, finetune_program

MOTIF = "TATAAA"
FAST = ["--config.finetune.epochs=2", "--config.finetune.batch=16", "--config.finetune.log_every=2",
        "--no-progress"]


def _labelled(n, length, seed, classes=("no", "yes")):
  """CSV text: random sequences; class 1 carries the motif at a random place (learnable by any model)."""
  rng = np.random.default_rng(seed)
  lines = ["id,sequence,label"]
  for i in range(n):
    s = list(tokens.decode(rng.integers(tokens.A, tokens.T + 1, length)))
    y = i % 2
    if y:
      at = int(rng.integers(0, length - len(MOTIF)))
      s[at:at + len(MOTIF)] = MOTIF
    lines.append(f"r{i},{''.join(s)},{classes[y]}")
  return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
  d = tmp_path_factory.mktemp("ft_data")
  return {"train": write(d / "train.csv", _labelled(64, 40, 0)), "val": write(d / "val.csv", _labelled(32, 40, 1)),
          "long": write(d / "long.csv", _labelled(8, 150, 2)), "dir": d}


def _finetune(capsys, base, data, out, *extra):
  code = cli.main(["finetune", "--workdir", base, "--train", str(data["train"]), "--val", str(data["val"]),
                   "--output", str(out), *FAST, *extra])
  captured = capsys.readouterr()
  assert code == 0, captured.err
  return captured


def test_lora_finetune_then_predict_in_input_order(tiny_run, data, tmp_path, capsys):
  base, _ = tiny_run
  out = tmp_path / "ft"
  captured = _finetune(capsys, base, data, out, "--method", "lora", "--test", str(data["long"]),
                       "--config.finetune.pool=mean")  # 40-base training rows, 150-base test rows: mean pooling
  table = captured.out.strip().splitlines()
  assert table[0].startswith("| split | rows | model | mcc | accuracy | macro_f1 | auroc")
  assert [r.split("|")[1].strip() for r in table[2:]] == ["val", "val", "test", "test"]
  assert "baseline: 1-4-mer counts + logistic regression" in table[3] and "dnajax lora (1 seed)" in table[2]
  info = json.load(open(out / "finetune.json"))
  assert info["coding"]["classes"] == ["no", "yes"] and info["window"] == 40 and info["base"]["step"] == 60
  run = info["runs"]["0"]
  assert run["steps"] == 8 and run["best_step"] in (4, 8) and run["val"]["num_rows"] == 32
  assert run["test"]["num_rows"] == 8  # 150-base sequences through overlapping 40-base windows
  assert info["baselines"]["kmer"]["val"]["num_rows"] == 32 and set(info["summary"]) == {"val", "test"}
  assert info["positions"] == 0 and "position_onehot" not in info["baselines"]
  cfg = config.from_json(open(out / "config.json").read())
  assert (cfg.finetune.method, cfg.model.lora_rank) == ("lora", cfg.finetune.lora_rank)
  # Only adapters and the head moved: the encoder's own weights are the base run's.
  ckpt_state = _best_params(out)
  base_params = _base_params(base)
  np.testing.assert_array_equal(ckpt_state["encoder"]["layer_0"]["qkv"], base_params["layer_0"]["qkv"])
  assert np.abs(ckpt_state["encoder"]["layer_0"]["lora_qkv"]["lora_b"]).max() > 0
  # predict: one row per input, in input order, class columns as written in the training file.
  inp = write(tmp_path / "cand.csv", "sequence\n" + "\n".join(
      line.split(",")[1] for line in open(data["long"]).read().splitlines()[1:]) + "\n")
  assert cli.main(["predict", "--workdir", str(out), "--input", str(inp)]) == 0
  lines = capsys.readouterr().out.splitlines()
  assert lines[0] == "id\tprediction\tp_no\tp_yes" and [x.split("\t")[0] for x in lines[1:]] == \
      [str(i) for i in range(1, 9)]
  for x in lines[1:]:
    _, pred, p0, p1 = x.split("\t")
    assert abs(float(p0) + float(p1) - 1) < 1e-5 and pred == ("no" if float(p0) > float(p1) else "yes")
  # With labels: the same metrics as the fine-tuning's own test rows, on stderr; --json puts them on stdout.
  assert cli.main(["predict", "--workdir", str(out), "--input", str(data["long"]), "--output",
                   str(tmp_path / "p.tsv"), "--json"]) == 0
  captured = capsys.readouterr()
  metrics = json.loads(captured.out)
  assert "metrics on 8 labelled rows: mcc" in captured.err
  for k in ("mcc", "accuracy", "auroc"):
    assert metrics[k] == pytest.approx(run["test"][k], abs=1e-6)


def _best_params(out):
  from dnajax.evaluation.finetuned import SequencePredictor
  return jax.device_get(SequencePredictor.from_workdir(str(out)).params)


def _base_params(base):
  from dnajax.evaluation.engine import Engine
  return jax.device_get(Engine.from_workdir(base).params)


def test_head_method_regression_in_label_units(tiny_run, data, tmp_path, capsys):
  base, _ = tiny_run
  rng = np.random.default_rng(3)
  rows = ["sequence,expression"]
  for _ in range(48):
    s = tokens.decode(rng.integers(tokens.A, tokens.T + 1, 30))
    rows.append(f"{s},{100 + 10 * s.count('G') + rng.normal():.3f}")  # GC-driven, far from 0: units matter
  train = write(tmp_path / "reg.csv", "\n".join(rows[:33]) + "\n")
  val = write(tmp_path / "reg_val.csv", "\n".join([rows[0]] + rows[33:]) + "\n")
  out = tmp_path / "reg"
  code = cli.main(["finetune", "--workdir", base, "--train", str(train), "--val", str(val), "--output", str(out),
                   "--task", "regression", "--method", "head", "--label-column", "Expression", *FAST,
                   "--config.finetune.learning_rate=0.01"])
  assert code == 0, capsys.readouterr().err
  info = json.load(open(out / "finetune.json"))
  assert info["coding"]["task"] == "regression" and 100 < info["coding"]["mean"] < 200
  # Every training row is 30 bases: a position-wise head (pool=auto), beside a one-hot-per-position baseline.
  assert info["positions"] == 30 and set(info["baselines"]) == {"kmer", "position_onehot"}
  assert set(info["summary"]["val"]) >= {"spearman", "pearson", "r2", "rmse"}
  state = _best_params(out)
  np.testing.assert_array_equal(state["encoder"]["layer_1"]["w_in"], _base_params(base)["layer_1"]["w_in"])
  capsys.readouterr()
  assert cli.main(["predict", "--workdir", str(out), "--input", str(val)]) == 0
  captured = capsys.readouterr()
  lines = captured.out.splitlines()
  assert lines[0] == "id\tprediction" and len(lines) == 17
  assert all(60 < float(x.split("\t")[1]) < 250 for x in lines[1:])  # in the labels' units, not standardised
  assert "spearman" in captured.err
  assert "no label column 'nope'" in refused(capsys, "predict", "--workdir", str(out), "--input", str(val),
                                            "--label-column", "nope")
  assert "add --output FILE" in refused(capsys, "predict", "--workdir", str(out), "--input", str(val), "--json")
  # A rerun into the same directory after the training table changed is refused, not mixed with old results.
  with open(train, "a") as f:
    f.write(rows[1] + "\n")
  line = refused(capsys, "finetune", "--workdir", base, "--train", str(train), "--val", str(val), "--output", str(out),
                 "--task", "regression", "--method", "head", "--label-column", "Expression", *FAST,
                 "--config.finetune.learning_rate=0.01")
  assert "another version of" in line and "reg.csv" in line
  line = refused(capsys, "embed", "--workdir", str(out), "--input", str(val), "--output", str(tmp_path / "e.npz"))
  assert "a fine-tuning directory; this command takes a pretraining run's --workdir" in line and base in line
  longer = write(tmp_path / "longer.csv", "sequence\nACGT\n" + "ACGT" * 8 + "\n")
  line = refused(capsys, "predict", "--workdir", str(out), "--input", str(longer), "--output", str(tmp_path / "o.tsv"))
  assert "row 2 (id 2): 32 bases" in line and "at most 30 bases" in line and not (tmp_path / "o.tsv").exists()


@pytest.mark.slow
def test_resume_after_sigterm_is_bit_identical(tiny_run, data, tmp_path, capsys):
  base, _ = tiny_run
  args = ["--config.finetune.epochs=4", "--config.finetune.batch=8", "--config.finetune.log_every=1",
          "--config.finetune.patience=0", "--config.finetune.dropout=0.1", "--method", "full", "--no-progress"]
  straight = tmp_path / "straight"
  code = cli.main(["finetune", "--workdir", base, "--train", str(data["train"]), "--val", str(data["val"]),
                   "--output", str(straight), *args])
  assert code == 0
  capsys.readouterr()
  run = tmp_path / "run"
  cmd = [sys.executable, "-m", "dnajax.cli", "finetune", "--workdir", base, "--train", str(data["train"]), "--val",
         str(data["val"]), "--output", str(run), *args]
  proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  metrics = run / "seed_0" / "metrics.jsonl"
  t0 = time.time()
  while not (metrics.exists() and metrics.read_text().count("\n") >= 3):
    assert proc.poll() is None, proc.communicate()
    assert time.time() - t0 < 180
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 0 and "stopped by SIGTERM after step" in err, err
  stopped = int(err.split("stopped by SIGTERM after step ")[1].split()[0])
  assert 3 <= stopped < 32 and not (run / "seed_0" / "result.json").exists()
  r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 0, r.stderr
  a, b = (json.load(open(d / "seed_0" / "result.json")) for d in (straight, run))
  assert a["val"] == b["val"] and a["best_step"] == b["best_step"]
  for x, y in zip(jax.tree.leaves(_best_params(straight)), jax.tree.leaves(_best_params(run))):
    np.testing.assert_array_equal(x, y)
  # Rerun once more: finished seeds are read back, not trained again.
  r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
  assert r.returncode == 0 and "seed 0" not in r.stderr


@pytest.mark.slow
def test_one_and_eight_devices_give_the_same_metrics(tiny_run, data, tmp_path, capsys):
  base, _ = tiny_run
  args = ["finetune", "--workdir", base, "--train", str(data["train"]), "--val", str(data["val"]), *FAST,
          "--method", "full", "--json"]
  captured = _finetune(capsys, base, data, tmp_path / "one", "--method", "full", "--json")
  one = json.loads(captured.out)
  spec = {"cli": {"fsdp": args + ["--output", str(tmp_path / "fsdp"), "--config.mesh.data=4",
                                  "--config.mesh.fsdp=2"]}}  # 8 devices: data 4 x fsdp 2 (parameters sharded)
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
  r = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "multidevice_runner.py"), json.dumps(spec)],
                     capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  out = json.loads([x for x in r.stdout.splitlines() if x.startswith("RESULT ")][-1][len("RESULT "):])
  for name in ("fsdp",):
    assert out[name]["code"] == 0, out[name]["stderr"]
    other = json.loads(out[name]["stdout"])
    for k in ("loss", "accuracy", "auroc"):
      assert other["runs"]["0"]["val"][k] == pytest.approx(one["runs"]["0"]["val"][k], rel=1e-5)


def test_bad_inputs_are_one_line_and_write_nothing(tiny_run, data, tmp_path, capsys):
  base, _ = tiny_run
  d = data["dir"]
  good = open(data["train"]).read()
  cases = {
      "missing label": (write(d / "nolabel.csv", good.replace(",yes\n", ",\n", 1)), "row 2 (line 3)", "no label"),
      "bad letters": (write(d / "letters.csv", good.replace("\nr3,", "\nr3,JJ", 1)), "r3", ""),
      "one class": (write(d / "oneclass.csv", good.replace(",yes", ",no")), "two classes", ""),
      "empty sequence": (write(d / "empty.csv", "sequence,label\n,1\nACGT,0\n"), "row 1", ""),
  }
  for name, (path, *needles) in cases.items():
    out = tmp_path / name.replace(" ", "_")
    line = refused(capsys, "finetune", "--workdir", base, "--train", str(path), "--val", str(data["val"]),
                   "--output", str(out), *FAST)
    for needle in needles:
      assert needle in line, (name, line)
    assert not out.exists(), name
  unseen = write(d / "unseen.csv", open(data["val"]).read().replace(",yes\n", ",maybe\n", 1))
  line = refused(capsys, "finetune", "--workdir", base, "--train", str(data["train"]), "--val", str(unseen),
                 "--output", str(tmp_path / "x"), *FAST)
  assert "'maybe' is not one of the training classes ('no', 'yes')" in line and not (tmp_path / "x").exists()
  assert "not a finite number" in refused(capsys, "finetune", "--workdir", base, "--train", str(data["train"]),
                                          "--val", str(data["val"]), "--output", str(tmp_path / "y"), "--task",
                                          "regression", *FAST)
  assert "base run's --workdir" in refused(capsys, "finetune", "--workdir", base, "--train", str(data["train"]),
                                           "--val", str(data["val"]), "--output", base)
  assert "the model and its pretraining are the base run's" in refused(
      capsys, "finetune", "--workdir", base, "--train", str(data["train"]), "--val", str(data["val"]),
      "--output", str(tmp_path / "z"), "--config.model.num_layers=1")
  assert "finetune.batch=0" in refused(capsys, "finetune", "--workdir", base, "--train", str(data["train"]),
                                       "--val", str(data["val"]), "--output", str(tmp_path / "z"),
                                       "--config.finetune.batch=0")
  assert "--seeds" in refused(capsys, "finetune", "--workdir", base, "--train", str(data["train"]), "--val",
                              str(data["val"]), "--output", str(tmp_path / "z"), "--seeds", "1,1")
  assert not (tmp_path / "z").exists()
  const = write(d / "const.csv", "sequence,y\nACGTACGT,5\nAAAACCCC,5\n")
  assert "every training label is 5" in refused(capsys, "finetune", "--workdir", base, "--train", str(const),
                                                "--val", str(const), "--output", str(tmp_path / "c"), "--task",
                                                "regression", "--label-column", "y")
  one_class_val = write(d / "val1.csv", "sequence,label\nACGTACGTAA,yes\n")
  assert "every validation row has one class" in refused(capsys, "finetune", "--workdir", base, "--train",
                                                         str(data["train"]), "--val", str(one_class_val),
                                                         "--output", str(tmp_path / "c"), *FAST)
  assert "model.max_len" in refused(capsys, "finetune", "--workdir", base, "--train", str(data["train"]), "--val",
                                    str(data["val"]), "--output", str(tmp_path / "c"),
                                    "--config.finetune.window=100000")
  assert "not a classification metric" in refused(capsys, "finetune", "--workdir", base, "--train",
                                                  str(data["train"]), "--val", str(data["val"]), "--output",
                                                  str(tmp_path / "c"), "--config.finetune.select=spearman")
  assert not (tmp_path / "c").exists()


def test_label_coding_orders_numeric_classes_and_standardises():
  t = tables.SequenceTable(["a", "b", "c", "d"], [np.array([tokens.A], np.uint8)] * 4, ["10", "9", "10", "2"],
                           "f.csv", "csv")
  c = labels.LabelCoding.fit("classification", t)
  assert c.classes == ["2", "9", "10"] and c.targets(t).tolist() == [2, 1, 2, 0]
  r = labels.LabelCoding.fit("regression", t)
  y = r.targets(t)
  assert abs(float(y.mean())) < 1e-6 and abs(float(y.std()) - 1) < 1e-6
  np.testing.assert_allclose(r.values(y[:, None]), [10, 9, 10, 2], rtol=1e-6)
  with pytest.raises(UserError, match=r"f.csv: row 2 \(id b\): label '9' is not one of"):
    labels.LabelCoding(task="classification", classes=["10", "2"]).targets(t)


def test_partition_trains_what_each_method_says():
  params = {"encoder": {"embed": 1, "head": 2, "head_bias": 3, "layer_0": {"qkv": 4, "lora_qkv": {"lora_a": 5}}},
            "head": 6, "head_bias": 7}
  leaves = lambda d: sorted(jax.tree.leaves(d))  # noqa: E731
  assert leaves(finetune_program.partition(params, "head")[0]) == [6, 7]
  assert leaves(finetune_program.partition(params, "lora")[0]) == [5, 6, 7]
  assert leaves(finetune_program.partition(params, "full")[0]) == [1, 4, 5, 6, 7]  # not the MLM projection
  a, b = finetune_program.partition(params, "lora")
  assert finetune_program.combine(a, b) == params
  with pytest.raises(UserError, match="finetune.method"):
    finetune_job.finetune_config(config.load("configs/tiny.py"), [("finetune.method", "prefix")])
