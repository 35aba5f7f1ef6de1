"""Corpora of several sources: weighted mixtures, `prepare --append`, groups (directories, globs), soft-mask rows,
and validation and `evaluate` by source."""

import json
import os

import numpy as np
import pytest

from dnajax import cli, config
from dnajax.apps import report
from dnajax.data import corpus, preparation, readers, tokens
from dnajax.data import sampler as sampler_lib
from dnajax.errors import UserError
from dnajax.training import loop


def _fasta(path, rng, letters, n_records, length, soft=False):
  """Records of `letters` only (so a window tells which file it came from), soft-masked runs when `soft`."""
  with open(path, "w") as f:
    for r in range(n_records):
      s = np.frombuffer(letters.encode(), np.uint8)[rng.integers(0, len(letters), length)].copy()
      if soft:
        for a in rng.integers(0, length, 10):
          s[a:a + 100] |= 0x20
      f.write(f">{os.path.basename(path)}_{r}\n{s.tobytes().decode()}\n")
  return str(path)


@pytest.fixture
def two_sources(tmp_path):
  rng = np.random.default_rng(0)
  big = _fasta(tmp_path / "big.fa", rng, "AC", 3, 100_000, soft=True)  # 50x the other
  small = _fasta(tmp_path / "small.fa", rng, "GT", 1, 6_000, soft=True)
  return big, small


def _from_big(ids_RxL):
  return ((ids_RxL == tokens.A) | (ids_RxL == tokens.C)).any(1)


def test_weights_split_windows_as_asked_and_rows_stay_deterministic(tmp_path, two_sources):
  c = preparation.prepare_files(list(two_sources), str(tmp_path / "c"), corpus.SplitSettings(0.1))
  assert c.sources() == list(two_sources) and c.source_labels() == ["big.fa", "small.fa"]
  weighted = sampler_lib.WindowSampler(c, 64, seed=1, weights=("0.5", "0.5"))
  ids = np.concatenate([weighted.rows(step, range(128))["ids"] for step in range(79)])  # 10,112 windows
  assert len(ids) > 10_000 and abs(_from_big(ids).mean() - 0.5) < 0.02
  plain = sampler_lib.WindowSampler(c, 64, seed=1)  # in proportion to length: the small file 6 kb of 306 kb
  assert 0.95 < _from_big(np.concatenate([plain.rows(s, range(128))["ids"] for s in range(10)])).mean() < 0.995
  # Row r of step t depends on (seed, t, r) only: any split over processes, and a resumed run, see the same rows.
  whole = weighted.rows(7, range(16))["ids"]
  halves = [weighted.rows(7, range(0, 5))["ids"], weighted.rows(7, range(5, 16))["ids"]]
  assert np.array_equal(whole, np.concatenate(halves))
  assert np.array_equal(whole, sampler_lib.WindowSampler(c, 64, seed=1, weights=(0.5, 0.5)).rows(7, range(16))["ids"])
  only_small = sampler_lib.WindowSampler(c, 64, seed=1, weights=(0, 1)).rows(0, range(64))["ids"]
  assert not _from_big(only_small).any()
  for bad, match in (((1,), "1 values for the 2 sources"), ((-1, 1), "finite number >= 0"), (("x", 1), "not numbers"),
                     ((0, 0), "not all 0")):
    with pytest.raises(UserError, match=match):
      sampler_lib.WindowSampler(c, 64, seed=1, weights=bad)


def test_soft_rows_are_the_windows_flags(tmp_path, two_sources):
  c = preparation.prepare_files(list(two_sources), str(tmp_path / "c"), corpus.SplitSettings(0.1))
  for rc in (False, True):
    rows = sampler_lib.WindowSampler(c, 64, seed=2, reverse_complement=rc, soft=True).rows(3, range(64))
    assert rows["soft"].shape == rows["ids"].shape and 0 < rows["soft"].mean() < 1
    plain = sampler_lib.WindowSampler(c, 64, seed=2, reverse_complement=rc).rows(3, range(64))
    assert np.array_equal(plain["ids"], rows["ids"])
  # Without reverse complement each row is a stretch of the corpus: its flags are the corpus's at that stretch.
  rows = sampler_lib.WindowSampler(c, 64, seed=2, soft=True).rows(3, range(8))
  tok, soft = np.asarray(c.tokens), np.asarray(c.softmask)
  for ids, flags in zip(rows["ids"], rows["soft"]):
    at = next(i for i in range(len(tok) - 63) if np.array_equal(tok[i:i + 64], ids))
    assert np.array_equal(soft[at:at + 64], flags)


def test_append_keeps_what_is_there(tmp_path, two_sources, capsys):
  big, small = two_sources
  out = tmp_path / "c"
  assert cli.main(["prepare", "--input", big, "--output", str(out)]) == 0
  before = corpus.Corpus(str(out))
  tok, segments = bytes(before.tokens), before.segments
  extra = _fasta(tmp_path / "more.fa", np.random.default_rng(3), "ACGT", 6, 2_000)
  assert cli.main(["prepare", "--input", small, extra, "--output", str(out), "--append"]) == 0
  after = corpus.Corpus(str(out))
  assert bytes(after.tokens)[:len(tok)] == tok and after.segments[:len(segments)] == segments
  alone = preparation.prepare_files([small, extra], str(tmp_path / "alone"), corpus.SplitSettings(0.1))
  assert bytes(after.tokens)[len(tok):] == bytes(alone.tokens)  # the new files split as if prepared alone
  assert [s["split"] for s in after.segments[len(segments):]] == [s["split"] for s in alone.segments]
  assert after.sources() == [big, small, extra] and after.index["num_records"] == 3 + 1 + 6
  assert "small.fa" in capsys.readouterr().out  # the per-source table
  for argv, match in ((["--input", small], "already in the corpus"),
                      (["--input", str(tmp_path / "x.fa"), "--val-fraction", "0.3"], "was prepared with 0.1"),
                      (["--input", big, "--force"], "choose one")):
    if argv[1].endswith("x.fa"):
      _fasta(tmp_path / "x.fa", np.random.default_rng(4), "ACGT", 1, 500)
    assert cli.main(["prepare", *argv, "--output", str(out), "--append"]) == 2
    assert match in capsys.readouterr().err
  assert bytes(corpus.Corpus(str(out)).tokens) == bytes(after.tokens)  # refused: nothing changed


def test_directories_and_globs_are_one_source_each(tmp_path, capsys):
  rng = np.random.default_rng(5)
  os.makedirs(tmp_path / "fly")
  for k in range(3):
    _fasta(tmp_path / "fly" / f"chr{k}.fa", rng, "ACGT", 2, 3_000)
  worm = [_fasta(tmp_path / f"worm{k}.fa", rng, "ACGT", 2, 3_000) for k in range(2)]
  entries = [str(tmp_path / "fly"), str(tmp_path / "worm*.fa")]
  assert [g for _, g in readers.expand_groups(entries)] == [entries[0]] * 3 + [entries[1]] * 2
  out = str(tmp_path / "c")
  assert cli.main(["prepare", "--input", *entries, "--output", out, "--weights", "0.25", "0.75"]) == 0
  c = corpus.Corpus(out)
  assert c.sources() == entries and c.source_weights() == [0.25, 0.75]
  table = {r["source"]: r for r in c.source_table()}
  assert table["fly"]["files"] == 3 and table["worm*.fa"]["records"] == 4
  assert cli.main(["prepare", "--input", *worm, "--output", str(tmp_path / "d"), "--weights", "1"]) == 2
  assert "1 values for 2 --input sources" in capsys.readouterr().err
  assert cli.main(["prepare", "--input", *worm, "--output", str(tmp_path / "d"), "--weights", "0", "0"]) == 2
  assert "not all 0" in capsys.readouterr().err
  for twice in ([worm[0], worm[0]], [str(tmp_path / "worm*.fa"), worm[1]]):  # a file given twice
    assert cli.main(["prepare", "--input", *twice, "--output", str(tmp_path / "d")]) == 2
    assert "the same content as" in capsys.readouterr().err
  assert not os.path.exists(tmp_path / "d")
  # Names in metrics never hold '/': basenames, or the entries as given with '/' written '_' where they repeat.
  os.makedirs(tmp_path / "other")
  _fasta(tmp_path / "other" / "worm0.fa", rng, "ACGT", 2, 3_000)
  c = preparation.prepare_files([worm[0], str(tmp_path / "other" / "worm0.fa")], str(tmp_path / "e"),
                                corpus.SplitSettings(0.1))
  assert all("/" not in label for label in c.source_labels()) and len(set(c.source_labels())) == 2
  with pytest.raises(UserError, match="matches no file"):
    readers.expand_groups([str(tmp_path / "nothing*.fa")])


def test_validation_and_evaluate_report_each_source(tmp_path, two_sources, capsys):
  big, small = two_sources
  w = str(tmp_path / "run")
  cfg = config.load("configs/tiny.py", [("data.sources", f"{big},{small}"), ("data.weights", "0.5,0.5"),
                                         ("data.softmask_weight", "0.1"), ("train.steps", "4"),
                                         ("train.eval_every", "4"), ("train.log_every", "2")])
  loop.train_and_evaluate(cfg, w, show_progress=False)
  val = [r for r in map(json.loads, open(os.path.join(w, "metrics.jsonl"))) if r["split"] == "val"][-1]
  for label in ("big.fa", "small.fa"):
    assert 0 < val[f"val/sources/{label}/num_masked"] < val["val/num_masked"]
    assert val[f"val/sources/{label}/masked_accuracy"] is not None
    # each source's number beside its baselines, fitted on the training split
    assert 0.25 < val[f"val/sources/{label}/baselines/kmer_of_training_data/masked_accuracy"] < 1
    assert val[f"val/sources/{label}/baselines/majority_base_of_training_data/loss"] > 0
  assert "val/baselines/kmer_of_training_data/strata/source:big.fa/masked_accuracy" not in val
  assert cli.main(["report", "--workdir", w]) == 0
  md = open(os.path.join(w, "report.md")).read()
  assert "| this model on small.fa" in md and "| k-mer context model on small.fa |" in md
  assert report.source_labels([val]) == ["big.fa", "small.fa"]  # one curve each, not one per baseline key
  capsys.readouterr()
  only_n = tmp_path / "only_N.fa"
  only_n.write_text(">n\n" + "N" * 500 + "\n")
  assert cli.main(["evaluate", "--workdir", w, "--input", big, small, str(only_n), "--json",
                   "--no-reverse-complement"]) == 0
  out = capsys.readouterr()
  r = json.loads(out.out)
  assert set(r["sources"]) == {"big.fa", "small.fa", "only_N.fa"}
  assert sum(s["num_masked"] for s in r["sources"].values()) == r["num_masked"]
  assert r["sources"]["only_N.fa"]["masked_accuracy"] is None and "only_N.fa: no A/C/G/T base" in out.err
  for label in ("big.fa", "small.fa"):
    assert set(r["sources"][label]["baselines"]) == {"majority_base_of_input", "kmer_of_training_data",
                                                     "majority_base_of_training_data"}
  assert "strata" not in r["baselines"]["kmer_of_training_data"]
  assert cli.main(["evaluate", "--workdir", w, "--input", big, small, "--no-reverse-complement"]) == 0
  text = capsys.readouterr().out
  assert "source small.fa: masked_accuracy" in text and "| k-mer context model" in text.split("source small.fa")[1]


def test_sources_without_segments_or_validation_are_said_by_prepare_and_train(tmp_path, capsys, caplog):
  rng = np.random.default_rng(0)
  big = _fasta(tmp_path / "big.fa", rng, "AC", 9, 3_000)
  small = _fasta(tmp_path / "small.fa", rng, "GT", 1, 3_000)
  only_n = tmp_path / "only_n.fa"
  only_n.write_text(">n\n" + "N" * 500 + "\n")
  assert cli.main(["prepare", "--input", big, small, str(only_n), "--output", str(tmp_path / "c"),
                   "--split", "records"]) == 0
  err = capsys.readouterr().err
  assert "only_n.fa gave no segment" in err and "no validation bases from small.fa" in err
  assert "use --split blocks to validate every source" in err
  cfg = config.load("configs/tiny.py", [("data.sources", f"{big},{small}"), ("data.split", "records"),
                                         ("train.steps", "1"), ("eval.max_windows", "8")])
  with caplog.at_level("WARNING", logger="dnajax"):
    loop.train_and_evaluate(cfg, str(tmp_path / "run"), show_progress=False)
  said = [r.getMessage() for r in caplog.records if "no validation bases" in r.getMessage()]
  assert len(said) == 1 and "small.fa" in said[0] and "--config.data.split=blocks" in said[0]
