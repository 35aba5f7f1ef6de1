import json

import numpy as np
import pytest

from dnajax import cli
from dnajax.data import tokens
from dnajax.evaluation.engine import Engine


def test_pll_equals_masking_each_base_in_turn(tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  engine = Engine.from_workdir(workdir)
  rng = np.random.default_rng(0)
  seq = rng.integers(tokens.A, tokens.T + 1, 150).astype(np.uint8)  # longer than the 64-base window
  seq[10] = tokens.N
  lp = engine.pseudo_log_likelihood(seq)
  assert np.isnan(lp[10]) and np.isfinite(np.delete(lp, 10)).all() and (lp[~np.isnan(lp)] < 0).all()
  for i in (0, 75, 149):  # by hand: the window centred on i (clipped to the sequence), position i masked
    start = int(np.clip(i - 32, 0, 150 - 64))
    x = seq[start:start + 64].copy()
    x[i - start] = tokens.MASK
    logp = engine.log_probs(x[None])[0, i - start, seq[i] - tokens.A]
    np.testing.assert_allclose(lp[i], logp, rtol=1e-5)
  codon = engine.pseudo_log_likelihood(seq, unit="codon")
  assert np.isfinite(codon[np.arange(150) != 10]).all() and not np.allclose(codon[:9], lp[:9])

  fa = tmp_path / "x.fa"
  fa.write_text(">a\n" + tokens.decode(seq) + "\n>b\nACGTACGTAC\n")
  code = cli.main(["score", "--workdir", workdir, "--input", str(fa), "--json"])
  r = json.loads(capsys.readouterr().out)
  assert code == 0 and [s["name"] for s in r["sequences"]] == ["a", "b"]
  a = r["sequences"][0]
  assert a["scored_bases"] == 149 and np.isclose(a["pll"], np.nansum(lp), rtol=1e-6)
  assert len(a["log_probs"]) == 150 and a["log_probs"][10] is None
  assert cli.main(["score", "--workdir", workdir, "--input", str(fa)]) == 0
  tsv = capsys.readouterr().out.splitlines()
  assert tsv[0].split("\t") == ["name", "length", "scored_bases", "pll", "pll_per_base"] and len(tsv) == 3


def test_short_inputs_use_a_smaller_batch_with_the_same_predictions(tiny_run):
  workdir, _ = tiny_run
  engine = Engine.from_workdir(workdir)
  engine.batch_size = 64
  assert [engine.fit_batch(n) for n in (1, 8, 9, 20, 33, 64, 65, 500)] == [8, 8, 16, 32, 64, 64, 64, 64]
  engine.batch_size = 12
  assert engine.fit_batch(3) == 12
  engine.batch_size = 16
  assert engine.fit_batch(3, floor=4) == 4
  engine.batch_size = 64
  x = np.random.default_rng(1).integers(tokens.A, tokens.T + 1, (70, engine.seq_len)).astype(np.uint8)
  x[:, ::7] = tokens.MASK
  together = engine.log_probs(x)  # batches of 64 (the second padded)
  np.testing.assert_allclose(engine.log_probs(x[65:]), together[65:], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(engine.log_probs(x[:20]), together[:20], rtol=1e-5, atol=1e-5)


def test_a_record_with_nothing_to_score_is_empty_and_named(tiny_run, tmp_path, capsys):
  """All-N: pll and pll_per_base empty (TSV) / null (JSON), one warning naming the record; three bases among N are
  scored; an input where no record has a base to score is refused in one line."""
  workdir, _ = tiny_run
  real = "".join(np.random.default_rng(3).choice(list("ACGT"), 120))
  fa = tmp_path / "n.fa"
  fa.write_text(f">real\n{real}\n>all_n\n{'N' * 120}\n>three\n{'N' * 50}ACG{'N' * 50}\n")
  assert cli.main(["score", "--workdir", workdir, "--input", str(fa)]) == 0
  out, err = capsys.readouterr()
  rows = {line.split("\t")[0]: line.split("\t") for line in out.splitlines()[1:]}
  assert rows["all_n"] == ["all_n", "120", "0", "", ""]
  assert rows["three"][2] == "3" and float(rows["three"][3]) < 0 and float(rows["three"][4]) < 0
  assert float(rows["real"][4]) < 0
  warnings = [line for line in err.splitlines() if "warning" in line]  # the rest is the progress bar
  assert len(warnings) == 1 and warnings[0].startswith("dnajax: warning: record 'all_n' in ")
  assert cli.main(["score", "--workdir", workdir, "--input", str(fa), "--unit", "codon", "--json"]) == 0
  out, err = capsys.readouterr()
  r = {s["name"]: s for s in json.loads(out, parse_constant=lambda c: pytest.fail(c))["sequences"]}
  assert r["all_n"]["pll"] is None and r["all_n"]["pll_per_base"] is None and r["all_n"]["scored_bases"] == 0
  assert set(r["all_n"]["log_probs"]) == {None} and r["three"]["scored_bases"] == 3 and r["three"]["pll"] < 0
  only_n = tmp_path / "only_n.fa"
  only_n.write_text(">a\n" + "N" * 4000 + "\n>b\nNNNN\n")
  assert cli.main(["score", "--workdir", workdir, "--input", str(only_n)]) == 2
  out, err = capsys.readouterr()
  assert out == "" and len(err.strip().splitlines()) == 1 and "no record has an A/C/G/T base" in err
