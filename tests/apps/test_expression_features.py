"""`dnajax features`: one TSV row per CDS in input order, values equal to dnajax.bio.expression's, the model's
pseudo-log-likelihoods with --workdir, and one-line refusals."""

import csv

import numpy as np
from conftest import refused

from dnajax import cli
from dnajax.bio import expression
from dnajax.data import tokens
from dnajax.evaluation.engine import Engine

CDS = ["ATGGCTAGCAAAGGAGAAGAACTTTTCACTGGAGTTGTCCCAATTCTTGTTGAATTAGATGGTGATGTTAATGGGCACAAATAA",
       "ATGAGAAGGCGAATACTAAGACTGCTGCTGGCGGCGGGCTAA"]


def _read(path):
  with open(path) as f:
    return list(csv.DictReader(f, delimiter="\t"))


def test_features_of_a_csv_with_labels_and_a_fasta_with_the_model(tiny_run, tmp_path, capsys):
  table = tmp_path / "lib.csv"
  table.write_text("Sequence,Value\n" + "".join(f"{s.replace('T', 'U')},{v}\n" for s, v in zip(CDS, (1.5, -0.25))))
  out = tmp_path / "f.tsv"
  assert cli.main(["features", "--input", str(table), "--output", str(out), "--sequence-column", "Sequence",
                   "--label-column", "Value", "--no-progress"]) == 0
  assert "the CDS start alone" in capsys.readouterr().err
  rows = _read(out)
  assert list(rows[0]) == ["id", "length", "label"] + list(expression.FEATURE_NAMES)
  assert [r["id"] for r in rows] == ["1", "2"] and [r["label"] for r in rows] == ["1.5", "-0.25"]
  for r, s in zip(rows, CDS):
    want = expression.features(s)
    np.testing.assert_allclose([float(r[k]) for k in expression.FEATURE_NAMES], [want[k] for k in want], atol=1e-4)
  assert float(rows[1]["rare_codon_fraction"]) > 0 and float(rows[0]["mfe_5prime"]) < 0

  fasta = tmp_path / "x.fa"
  fasta.write_text("".join(f">g{i}\n{s}\n" for i, s in enumerate(CDS)))
  utr = "GAAGGAGATATACAT"
  assert cli.main(["features", "--input", str(fasta), "--output", str(tmp_path / "m.tsv"), "--workdir", tiny_run[0],
                   "--utr5", utr, "--mfe-window", "30", "--no-progress"]) == 0
  rows = _read(tmp_path / "m.tsv")
  assert [r["id"] for r in rows] == ["g0", "g1"] and "label" not in rows[0]
  assert float(rows[0]["mfe_5prime"]) == round(expression.mfe_5prime(CDS[0], 30, utr), 4)
  engine = Engine.from_workdir(tiny_run[0])
  for r, s in zip(rows, CDS):
    ids = tokens.encode(s)
    base, codon = engine.pseudo_log_likelihood(ids, "base"), engine.pseudo_log_likelihood(ids, "codon")
    np.testing.assert_allclose([float(r["pll_per_base"]), float(r["pll_per_codon"])],
                               [base.sum() / len(s), codon.sum() / (len(s) // 3)], atol=1e-4)


def test_bad_inputs_are_one_line(tmp_path, capsys):
  fasta = tmp_path / "x.fa"
  fasta.write_text(f">good\n{CDS[0]}\n>short\n{CDS[1][:-1]}\n")
  out = str(tmp_path / "never.tsv")
  assert "row short" in refused(capsys, "features", "--input", str(fasta), "--output", out)
  fasta.write_text(f">good\n{CDS[0]}\n")
  assert "--organism mars: unknown" in refused(capsys, "features", "--input", str(fasta), "--output", out,
                                               "--organism", "mars")
  assert "--mfe-window 0" in refused(capsys, "features", "--input", str(fasta), "--output", out, "--mfe-window", "0")
  assert refused(capsys, "features", "--input", str(fasta), "--output", out, "--utr5", "GGXX")
  assert not (tmp_path / "never.tsv").exists()
