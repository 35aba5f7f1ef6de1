"""`dnajax export` / `import` (safetensors + model.json + a PyTorch module), the shipped models and `dnajax.open`."""

import json
import os
import sys

import numpy as np
import pytest
from conftest import refused

from dnajax import cli
from dnajax.data import rundir, tokens
from dnajax.errors import UserError
from dnajax.model import weights


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
  out = str(tmp_path_factory.mktemp("export") / "tiny")
  assert cli.main(["export", "--workdir", tiny_run[0], "--output", out]) == 0
  return out


def _windows(L: int, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  w = rng.integers(tokens.A, tokens.T + 1, size=(6, L)).astype(np.uint8)
  w[rng.random(w.shape) < 0.2] = tokens.MASK
  w[1, L // 2:] = tokens.PAD
  w[4, 5:] = tokens.PAD
  w[2, 7] = tokens.N
  return w


def test_export_writes_every_tensor_with_its_role_and_shape(exported, tiny_run):
  from safetensors.numpy import load_file

  info = json.load(open(os.path.join(exported, weights.MANIFEST)))
  tensors = load_file(os.path.join(exported, weights.WEIGHTS))
  assert info["format"] == weights.FORMAT and info["source"]["step"] == 60
  assert set(info["tensors"]) == set(tensors) and "layer_0.qkv" in tensors
  for name, t in info["tensors"].items():
    assert t["shape"] == list(tensors[name].shape) and t["role"] and t["dtype"] == "float32"
  assert info["run_config"]["model"]["d_model"] == info["model"]["d_model"]
  assert os.path.isfile(os.path.join(exported, weights.TORCH_MODULE))


def test_import_round_trips_exactly_and_predicts_the_same(exported, tiny_run, tmp_path):
  from dnajax.evaluation.engine import Engine

  imported = str(tmp_path / "imported")
  assert cli.main(["import", "--input", exported, "--workdir", imported]) == 0
  a, b = Engine.from_workdir(tiny_run[0]), Engine.from_workdir(imported)
  w = _windows(a.seq_len)
  assert b.step == a.step and np.array_equal(a.log_probs(w), b.log_probs(w))
  again = str(tmp_path / "again")
  assert cli.main(["export", "--workdir", imported, "--output", again]) == 0
  assert (open(os.path.join(again, weights.WEIGHTS), "rb").read()
          == open(os.path.join(exported, weights.WEIGHTS), "rb").read())


def test_pytorch_module_matches_dnajax_log_probs(exported, tiny_run):
  torch = pytest.importorskip("torch")
  pytest.importorskip("safetensors.torch")
  from dnajax.evaluation.engine import Engine

  sys.path.insert(0, exported)
  try:
    from modeling_dnajax import DnajaxEncoder
  finally:
    sys.path.remove(exported)
  engine = Engine.from_workdir(tiny_run[0])
  model = DnajaxEncoder.from_exported(exported)
  w = _windows(engine.seq_len, 1)
  ours = engine.log_probs(w)
  theirs = model.base_log_probs(torch.from_numpy(w.astype(np.int64))).numpy()
  real = w != tokens.PAD
  assert np.abs(ours - theirs)[real].max() < 1e-5
  assert model.encode(["ACgu?N"]).tolist() == [[tokens.A, tokens.C, tokens.G, tokens.T, tokens.MASK, tokens.N]]


def test_bad_imports_and_exports_are_one_line(exported, tiny_run, tmp_path, capsys):
  assert "pass the --output folder" in refused(capsys, "import", "--input", str(tmp_path / "nope"), "--workdir",
                                               str(tmp_path / "w"))
  (tmp_path / "busy").mkdir()
  (tmp_path / "busy" / "x").write_text("x")
  assert "already exists" in refused(capsys, "import", "--input", exported, "--workdir", str(tmp_path / "busy"))
  broken = tmp_path / "broken"
  broken.mkdir()
  info = json.load(open(os.path.join(exported, weights.MANIFEST)))
  info["model"]["d_model"] *= 2
  info["run_config"]["model"]["d_model"] *= 2
  (broken / weights.MANIFEST).write_text(json.dumps(info))
  (broken / weights.WEIGHTS).write_bytes(open(os.path.join(exported, weights.WEIGHTS), "rb").read())
  line = refused(capsys, "import", "--input", str(broken), "--workdir", str(tmp_path / "w2"))
  assert "the model in model.json needs" in line
  assert not os.path.exists(tmp_path / "w2") and not [p for p in os.listdir(tmp_path) if p.startswith(".w2")]
  assert "a training run" in refused(capsys, "export", "--workdir", str(tmp_path), "--output", str(tmp_path / "o"))


def test_an_imported_run_is_refused_by_train_in_one_line(exported, tmp_path, capsys):
  imported = str(tmp_path / "imported")
  assert cli.main(["import", "--input", exported, "--workdir", imported]) == 0
  capsys.readouterr()
  line = refused(capsys, "train", "--workdir", imported, "--config.train.steps=70", "--no-progress")
  assert "cannot be resumed" in line


def test_dnajax_open_serves_what_the_verbs_compute(tiny_run, capsys, tmp_path):
  import dnajax
  from dnajax.evaluation.engine import Engine

  lm = dnajax.open(tiny_run[0])
  seq = "ACGTTGCAACGGT" * 5
  engine = Engine.from_workdir(tiny_run[0])
  masked = tokens.encode(seq)
  masked[[3, 9]] = tokens.MASK
  assert np.allclose(lm.masked_log_probs(seq, [3, 9]), engine.sequence_log_probs([masked])[0][[3, 9]])
  fasta = tmp_path / "s.fa"
  fasta.write_text(f">s\n{seq}\n")
  capsys.readouterr()
  assert cli.main(["score", "--workdir", tiny_run[0], "--input", str(fasta), "--json"]) == 0
  assert lm.pseudo_log_likelihood(seq) == pytest.approx(json.loads(capsys.readouterr().out)["sequences"][0]["pll"])
  assert lm.embed([seq, seq[:20]]).shape == (2, lm.d_model)
  with pytest.raises(UserError, match="not a nucleotide letter"):
    lm.embed(["ACGT!"])
  with pytest.raises(UserError, match="not a dnajax workdir"):
    dnajax.open(str(tmp_path))


def test_shipped_models_are_listed_and_open_by_name(capsys):
  models = rundir.shipped_models()
  if not models:
    pytest.skip("no shipped models in this checkout")
  assert cli.main(["models", "--json"]) == 0
  listed = json.loads(capsys.readouterr().out)
  assert {m["kind"] for m in listed} >= {"cds", "genome"}
  for m in listed:
    assert {"name", "kind", "trained_on", "command", "licence", "validation", "baselines"} <= m.keys()
    assert m["validation"]["masked_accuracy"] > m["baselines"]["kmer"]["masked_accuracy"]
    assert os.path.isdir(rundir.resolve(m["name"])) and rundir.pretraining(m["name"])
  assert sum(m["size_mb"] for m in listed) < 30


def test_damaged_exports_are_one_line_and_write_nothing(exported, tmp_path, capsys):
  from safetensors.numpy import load_file, save_file

  def variant(name, manifest=None, tensors=None, drop=None):
    d = tmp_path / name
    d.mkdir()
    info = json.load(open(os.path.join(exported, weights.MANIFEST)))
    (d / weights.MANIFEST).write_text(json.dumps(manifest(info) if manifest else info))
    t = load_file(os.path.join(exported, weights.WEIGHTS))
    if drop != weights.WEIGHTS:
      save_file(tensors(t) if tensors else t, str(d / weights.WEIGHTS))
    return str(d)

  cases = {
      "no model.safetensors": variant("a", drop=weights.WEIGHTS),
      "no 'run_config' object": variant("b", manifest=lambda i: {k: v for k, v in i.items() if k != "run_config"}),
      "no 'tensors' object": variant("c", manifest=lambda i: {k: v for k, v in i.items() if k != "tensors"}),
      "is not an integer": variant("d", manifest=lambda i: {**i, "format_version": "1"}),
      "run_config.model.d_model": variant("e", manifest=lambda i: {**i, "run_config": {
          **i["run_config"], "model": {**i["run_config"]["model"], "d_model": 64}}}),
      "not float32": variant("f", tensors=lambda t: {**t, "embed": t["embed"].astype(np.int32)}),
      "NaN or infinite": variant("g", tensors=lambda t: {**t, "head_bias": t["head_bias"] * np.nan}),
  }
  for expected, folder in cases.items():
    line = refused(capsys, "import", "--input", folder, "--workdir", str(tmp_path / "out"))
    assert expected in line, (expected, line)
    assert not os.path.exists(tmp_path / "out")
  assert "--output is empty" in refused(capsys, "export", "--workdir", exported, "--output", "")
  (tmp_path / "file.txt").write_text("x")
  assert "cannot be created" in refused(capsys, "import", "--input", exported, "--workdir",
                                        str(tmp_path / "file.txt" / "x"))


def test_a_new_run_may_not_take_a_shipped_models_name(exported, tmp_path, monkeypatch, capsys):
  if not rundir.shipped_models():
    pytest.skip("no shipped models in this checkout")
  name = rundir.shipped_models()[0]["name"]
  monkeypatch.chdir(tmp_path)
  assert "the name of a shipped model" in refused(capsys, "train", "--config", "tiny", "--workdir", name)
  assert "the name of a shipped model" in refused(capsys, "import", "--input", exported, "--workdir", name)
  assert not os.path.exists(tmp_path / name)
  (tmp_path / name).mkdir()  # a folder of that name here wins over the shipped model, and is said
  assert rundir.resolve(name) == name
  assert "not the shipped model" in capsys.readouterr().err


def test_the_api_refuses_odd_inputs_in_one_line(tiny_run, exported):
  import dnajax

  lm = dnajax.open(tiny_run[0])
  for call, words in ((lambda: lm.embed("ACGT"), "pass a list"), (lambda: lm.embed([""]), "empty"),
                      (lambda: lm.masked_log_probs("ACGT", [1.5]), "integer positions"),
                      (lambda: lm.masked_log_probs("ACGT", [4]), "outside"),
                      (lambda: lm.log_probs(["ACGT"]), "not a string"),
                      (lambda: lm.score_variants("ref.fa", [("chr1", 5, "A", "N?")]), "REF and ALT"),
                      (lambda: lm.score_variants("ref.fa", [("chr1", 5, "A")]), "variant 1")):
    with pytest.raises(UserError, match=words):
      call()
  torch = pytest.importorskip("torch")
  sys.path.insert(0, exported)
  try:
    from modeling_dnajax import DnajaxEncoder
  finally:
    sys.path.remove(exported)
  model = DnajaxEncoder.from_exported(exported)
  with pytest.raises(ValueError, match="trained on windows"):
    model(torch.zeros((1, model.window + 1), dtype=torch.int64) + 2)
  with pytest.raises(ValueError, match="not a nucleotide letter"):
    model.encode(["AC-GT"])
