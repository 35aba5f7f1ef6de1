"""Expression prediction and design (issue 16): finetune.method=trees (and auto) on synonymous variants of one protein,
`dnajax predict` with it, and `dnajax design --objective expression|pll --expression-model`, trust region and 5'
folding bound."""

import csv
import json
import os

import numpy as np
import pytest
from Bio.Seq import Seq
from conftest import refused
from scipy.stats import spearmanr

from dnajax import cli
from dnajax.bio import codons, expression
from dnajax.data import rundir
from dnajax.design import constraints, expression_search
from dnajax.evaluation import finetuned
from dnajax.evaluation.expression_model import ExpressionModel

PROTEIN = "MKKLLPTAAAGLLLLAAQPAMAKLV"  # 25 aa + stop: 78 nt
FAST = ["--no-progress", "--config.finetune.tree_iterations=60", "--config.finetune.tree_learning_rate=0.1"]


def _variants(n: int, seed: int) -> list[tuple[str, float]]:
  """Synonymous CDS of PROTEIN (uniform codon choice) with a made-up 'expression': an AT-rich start expresses better,
  plus a little codon adaptation and noise."""
  rng = np.random.default_rng(seed)
  uniform = {aa: {c: 1.0 for c in cs} for aa, cs in codons.codon_usage("e_coli", 11).items()}
  out = []
  for _ in range(n):
    cds = codons.sample_cds(PROTEIN, uniform, rng)
    value = 10 - 4 * expression.gc_5prime(cds, 24) + 0.5 * expression.features(cds)["cai"] + rng.normal(0, 0.05)
    out.append((cds, float(value)))
  return out


def _csv(path, rows, header=("id", "Sequence", "Value")):
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(header)
    for i, (s, v) in enumerate(rows):
      w.writerow([f"v{i}", s.replace("T", "U"), v])  # written as RNA, as the mRFP library is
  return str(path)


@pytest.fixture(scope="module")
def expression_ft(tiny_run, tmp_path_factory):
  """(base workdir, fine-tuning directory, data directory, val rows) of a default regression fine-tuning."""
  base, _ = tiny_run
  d = tmp_path_factory.mktemp("expr")
  train, val = _variants(160, 0), _variants(60, 1)
  ft = d / "ft"
  code = cli.main(["finetune", "--workdir", base, "--train", _csv(d / "train.csv", train), "--val",
                   _csv(d / "val.csv", val), "--output", str(ft), "--task", "regression", "--sequence-column",
                   "Sequence", "--label-column", "Value", *FAST])
  assert code == 0
  return base, str(ft), d, val


def test_regression_defaults_to_trees_with_features_and_predicts(expression_ft, tmp_path, capsys):
  base, ft, d, val = expression_ft
  info = rundir.read_info(ft)
  assert info["finetune"]["method"] == "trees" and info["features"] == "expression" and info["positions"] == 78
  assert info["organism"] == "e_coli" and set(info["baselines"]) == {"kmer", "position_onehot", "features"}
  run = info["runs"]["0"]
  assert 1 <= run["best_step"] <= 60 and run["inputs"] == 78 * 3 + len(expression.HEAD_FEATURE_NAMES)
  assert run["val"]["spearman"] > 0.6  # a learnable signal (the 5' GC), far above chance
  kept = rundir.read_training_sequences(ft)
  assert len(kept) == 160 and all(set(s) <= set("ACGT") and len(s) == 78 for s in kept)
  test = tmp_path / "test.csv"
  test.write_text("id,sequence\n" + "".join(f"t{i},{s}\n" for i, (s, _) in enumerate(val)))
  out = tmp_path / "pred.tsv"
  assert cli.main(["predict", "--workdir", ft, "--input", str(test), "--output", str(out)]) == 0
  rows = list(csv.DictReader(open(out), delimiter="\t"))
  assert [r["id"] for r in rows] == [f"t{i}" for i in range(len(val))]
  pred = [float(r["prediction"]) for r in rows]
  assert np.isclose(spearmanr(pred, [v for _, v in val])[0], run["val"]["spearman"], atol=1e-6)
  capsys.readouterr()


def test_trees_classification_and_features_refusal(tiny_run, tmp_path, capsys):
  base, _ = tiny_run
  rng = np.random.default_rng(3)
  rows = ["id,sequence,label"]
  for i in range(80):  # class 1 starts with GGGG
    s = "".join(rng.choice(list("ACGT"), 30))
    rows.append(f"r{i},{('GGGG' + s[4:]) if i % 2 else ('AAAA' + s[4:])},{i % 2}")
  train = tmp_path / "train.csv"
  train.write_text("\n".join(rows[:61]) + "\n")
  val = tmp_path / "val.csv"
  val.write_text("\n".join(rows[:1] + rows[61:]) + "\n")
  out = tmp_path / "ft"
  assert cli.main(["finetune", "--workdir", base, "--train", str(train), "--val", str(val), "--output", str(out),
                   "--method", "trees", *FAST]) == 0
  info = json.load(open(out / "finetune.json"))
  assert info["features"] == "none" and info["runs"]["0"]["val"]["mcc"] > 0.8
  probs = finetuned.load(str(out)).predict([np.zeros(30, np.uint8) + 2])
  assert probs.shape == (1, 2) and np.isclose(probs.sum(), 1)
  capsys.readouterr()
  line = refused(capsys, "finetune", "--workdir", base, "--train", str(train), "--val", str(val), "--output",
                 str(tmp_path / "ft2"), "--method", "trees", "--config.finetune.features=expression", "--no-progress")
  assert "row 1 (id r0)" in line and "not a coding sequence" in line and not os.path.exists(tmp_path / "ft2")


def test_expression_design_beats_pll_design_and_keeps_bounds(expression_ft, tmp_path, capsys):
  base, ft, _, _ = expression_ft
  reports = {}
  for objective in ("pll", "expression"):
    report = tmp_path / f"{objective}.tsv"
    assert cli.main(["design", "--workdir", base, "--protein", PROTEIN, "--objective", objective,
                     "--expression-model", ft, "--rounds", "2", "--report", str(report),
                     "--output", str(tmp_path / f"{objective}.fasta")]) == 0
    reports[objective] = dict(zip(*[line.split("\t") for line in report.read_text().splitlines()]))
  model = ExpressionModel(ft)
  for objective, r in reports.items():
    seq = open(tmp_path / f"{objective}.fasta").read().split("\n")[1]
    assert str(Seq(seq).translate(table=11)) == PROTEIN + "*" and r["objective"] == objective
    assert np.isclose(float(r["predicted_expression"]), model.predict([seq])[0], atol=1e-4)
    assert int(r["codon_distance_to_training"]) == model.codon_distance(seq)
    assert np.isclose(float(r["mfe_5prime"]), expression.mfe_5prime(seq), atol=1e-4)
  assert float(reports["expression"]["predicted_expression"]) >= float(reports["pll"]["predicted_expression"])
  best_training = max(model.predict(model.training))
  assert float(reports["expression"]["predicted_expression"]) >= best_training - 1e-4  # starts from the best one
  # Trust region and folding bound: every design within them, and their columns say so.
  report = tmp_path / "bounded.tsv"
  assert cli.main(["design", "--workdir", base, "--protein", PROTEIN, "--objective", "expression",
                   "--expression-model", ft, "--rounds", "2", "--max-codon-changes", "2", "--mfe-5prime-min", "-3",
                   "--n", "2", "--report", str(report), "--output", str(tmp_path / "b.fasta")]) == 0
  header, *rows = [line.split("\t") for line in report.read_text().splitlines()]
  for row in rows:
    r = dict(zip(header, row))
    assert int(r["codon_distance_to_training"]) <= 2 and float(r["mfe_5prime"]) >= -3
  capsys.readouterr()


def test_search_steps_only_up_and_within_the_region(expression_ft):
  _, ft, _, _ = expression_ft
  model = ExpressionModel(ft)
  usage = codons.codon_usage("e_coli", 11)
  guide = expression_search.Guide("expression", model, 3)
  start = expression_search.ranked_training(guide, PROTEIN, 11)[-1]  # the worst-predicted training sequence
  c = constraints.Constraints()
  problem = constraints.start_from(start, PROTEIN, c, 11)
  before = model.predict([problem.sequence])[0]
  changes = expression_search.improve_expression(model, problem, constraints.codon_options(PROTEIN, usage, c), 3,
                                      lambda p: expression_search.within_trust(guide, p.sequence))
  after = model.predict([problem.sequence])[0]
  assert changes >= 1 and after > before and model.codon_distance(problem.sequence) <= 3
  moved = sum(start[i:i + 3] != problem.sequence[i:i + 3] for i in range(0, len(start), 3))
  assert moved <= changes  # a codon changed twice counts twice


@pytest.mark.parametrize("extra, needle", [
    (["--objective", "expression"], "--objective expression needs --expression-model"),
    (["--max-codon-distance", "3"], "--max-codon-distance needs --expression-model"),
])
def test_expression_options_without_a_model_are_one_line(tiny_run, capsys, extra, needle):
  base, _ = tiny_run
  assert needle in refused(capsys, "design", "--workdir", base, "--protein", PROTEIN, *extra)


def test_a_classification_model_is_not_an_expression_model(tiny_run, tmp_path, capsys):
  base, _ = tiny_run
  ft = tmp_path / "cls"
  ft.mkdir()
  (ft / "finetune.json").write_text(json.dumps({"task": "classification"}))
  line = refused(capsys, "design", "--workdir", base, "--protein", PROTEIN, "--objective", "expression",
                 "--expression-model", str(ft))
  assert "a classification model" in line and "--task regression" in line


def test_head_features_are_the_library_values():
  cds = "ATGGCTAGCAAAGGAGAAGAACTTTTCACTGGAGTTGTCCCAATTCTTGTTGAATTAGATGGTGATGTTAATGGGCACAAATTTTCTTAA"
  import RNA

  values = dict(zip(expression.HEAD_FEATURE_NAMES, expression.head_features(cds)))
  for w in expression.HEAD_MFE_WINDOWS:
    assert np.isclose(values[f"mfe_5prime_{w}"], RNA.fold(cds[:w].replace("T", "U"))[1], atol=1e-6)
  assert values["mfe_5prime"] == expression.mfe_5prime(cds) and values["cai"] == expression.features(cds)["cai"]


def test_raise_mfe_reaches_the_bound_or_says_it_cannot():
  usage = codons.codon_usage("e_coli", 11)
  gc_rich = "".join(max(usage[aa], key=lambda c: (c.count("G") + c.count("C"), c)) for aa in PROTEIN + "*")
  start = expression.mfe_5prime(gc_rich)
  c = constraints.Constraints(min_mfe_5prime=start + 2.0)
  problem = constraints.start_from(gc_rich, PROTEIN, c, 11)
  options = constraints.codon_options(PROTEIN, usage, c)
  assert expression_search.raise_mfe(problem, options, c) >= 1
  assert expression.mfe_5prime(problem.sequence) >= start + 2.0
  assert str(Seq(problem.sequence).translate(table=11)) == PROTEIN + "*"
  with pytest.raises(constraints.Infeasible, match="lower --mfe-5prime-min"):
    # A bound above any MFE (<= 0):
    expression_search.raise_mfe(problem, options, constraints.Constraints(min_mfe_5prime=0.1))


def test_gradient_head_reads_the_hand_features(expression_ft, tmp_path, capsys):
  """--method head on coding sequences: the hand features enter the head next to the pooled states (auto), which is
  what carries this data's signal (the 5' GC); features=none leaves the head with the states alone."""
  base, _, d, val = expression_ft
  common = ["finetune", "--workdir", base, "--train", str(d / "train.csv"), "--val", str(d / "val.csv"), "--task",
            "regression", "--method", "head", "--sequence-column", "Sequence", "--label-column", "Value",
            "--no-progress", "--config.finetune.epochs=6", "--config.finetune.batch=16",
            "--config.finetune.log_every=5", "--config.finetune.learning_rate=0.01"]
  spearman = {}
  for kind in ("auto", "none"):
    out = tmp_path / kind
    assert cli.main([*common, "--output", str(out), f"--config.finetune.features={kind}"]) == 0
    info = rundir.read_info(str(out))
    assert info["features"] == ("expression" if kind == "auto" else "none")
    assert ("organism" in info) == (kind == "auto") and ("features" in info["baselines"]) == (kind == "auto")
    spearman[kind] = info["runs"]["0"]["val"]["spearman"]
    model = finetuned.load(str(out))
    assert model.num_features == (len(expression.HEAD_FEATURE_NAMES) if kind == "auto" else 0)
  assert spearman["auto"] > spearman["none"] + 0.1, spearman  # measured 0.55 vs 0.39
  # predict computes the features itself and gives the validation rows' numbers back
  test = tmp_path / "test.csv"
  test.write_text("id,sequence\n" + "".join(f"t{i},{s}\n" for i, (s, _) in enumerate(val)))
  pred = tmp_path / "pred.tsv"
  assert cli.main(["predict", "--workdir", str(tmp_path / "auto"), "--input", str(test), "--output", str(pred)]) == 0
  values = [float(r["prediction"]) for r in csv.DictReader(open(pred), delimiter="\t")]
  assert np.isclose(spearmanr(values, [v for _, v in val])[0], spearman["auto"], atol=1e-6)
  # a row that is not a coding sequence is named in one line
  bad = tmp_path / "bad.csv"
  bad.write_text("id,sequence\nok," + val[0][0] + "\nnotcds,ACGTACGTAC\n")
  capsys.readouterr()
  line = refused(capsys, "predict", "--workdir", str(tmp_path / "auto"), "--input", str(bad))
  assert "notcds" in line and "coding sequence" in line


def test_auto_features_keep_a_native_gene_set_with_a_few_odd_genes():
  from types import SimpleNamespace

  from dnajax.data import tokens
  from dnajax.errors import UserError
  from dnajax.evaluation import hand_features

  rng = np.random.default_rng(0)
  usage = codons.codon_usage("e_coli", 11)
  genes = [codons.sample_cds(PROTEIN, usage, rng) for _ in range(20)]

  def table(seqs):
    return SimpleNamespace(seqs=[tokens.encode(s) for s in seqs], source="t.csv", format="csv",
                           ids=[str(i) for i in range(20)])

  ctg = ["CTG" + g[3:] if i == 0 else g for i, g in enumerate(genes)]  # 1 of 20 with a CTG start (E. coli b2496)
  assert hand_features.choose("auto", "e_coli", table(ctg)) == "expression"
  odd = ["CTG" + g[3:] if i < 4 else g for i, g in enumerate(genes)]  # 4 of 20: below the 90% share
  assert hand_features.choose("auto", "e_coli", table(odd)) == "none"
  with pytest.raises(UserError, match="row 1 .*not a coding sequence"):  # explicit: every row a complete CDS
    hand_features.choose("expression", "e_coli", table(odd))
  frameshift = [g[:-1] if i == 0 else g for i, g in enumerate(genes)]  # not whole codons: no features at all
  assert hand_features.choose("auto", "e_coli", table(frameshift)) == "none"
  with pytest.raises(UserError, match="row 1 .*not a coding sequence"):
    hand_features.choose("expression", "e_coli", table(frameshift))


# ------------------------------------------------------- start sequence, locks, score-only, top-N, 5'UTR (issue 31)
def _report(path) -> list[dict]:
  header, *rows = [line.split("\t") for line in open(path).read().splitlines()]
  return [dict(zip(header, row)) for row in rows]


def test_lock_and_start_sequence_keep_the_locked_codons(expression_ft, tmp_path, capsys):
  base, ft, _, val = expression_ft
  start = val[0][0]
  out, report = tmp_path / "d.fasta", tmp_path / "d.tsv"
  assert cli.main(["design", "--workdir", base, "--start-sequence", start.lower(), "--lock", "1-8", "--lock", "20-22",
                   "--objective", "expression", "--expression-model", ft, "--rounds", "2", "--n", "3",
                   "--gc-min", "0.3", "--gc-max", "0.7", "--output", str(out), "--report", str(report)]) == 0
  err = capsys.readouterr().err
  assert "dnajax: design: 3 designs (expression objective) for 1 protein, written to" in err
  seqs = [block.split("\n")[1] for block in out.read_text().split(">")[1:]]
  rows = _report(report)
  assert [r["rank"] for r in rows] == ["1", "2", "3"] and [r["name"] for r in rows] == [
      f"protein_design{k}" for k in (1, 2, 3)]
  pred = [float(r["predicted_expression"]) for r in rows]
  assert pred == sorted(pred, reverse=True)  # ranked by the objective
  model = ExpressionModel(ft)
  assert float(rows[0]["predicted_expression"]) >= model.predict([start])[0] - 1e-6  # never worse than the start
  for seq, r in zip(seqs, rows):
    assert seq[:24] == start[:24] and seq[57:66] == start[57:66]  # codons 1-8 and 20-22 byte for byte
    assert str(Seq(seq).translate(table=11)) == PROTEIN + "*" and r["violations"] == ""
    assert r["codon_distance_to_training"] != "" and r["objective"] == "expression"
  assert len(set(seqs)) == 3


def test_score_only_reports_the_sequence_unchanged(expression_ft, tmp_path, capsys):
  base, ft, _, val = expression_ft
  start = val[1][0]
  code = cli.main(["design", "--workdir", base, "--start-sequence", start, "--score-only", "--expression-model", ft,
                   "--gc-max", "0.4", "--utr5", "GGGAAAUUUCCC"])
  out, err = capsys.readouterr()
  [row] = [dict(zip(*[line.split("\t") for line in out.splitlines()]))]
  assert code == 0 and row["objective"] == "score_only" and row["codon_changes_by_model"] == "0"
  assert np.isclose(float(row["predicted_expression"]), ExpressionModel(ft).predict([start])[0], atol=1e-4)
  assert np.isclose(float(row["mfe_5prime"]), expression.mfe_5prime(start, utr5="GGGAAATTTCCC"), atol=1e-4)
  assert row["codon_distance_to_training"] != "" and row["translation_ok"] == "True"
  assert row["violations"] == "gc" and "breaks gc" in err  # it is scored as it is, not fixed
  # The same sequence without its stop codon is scored as given, too (the predictor never saw that length: said).
  assert cli.main(["design", "--workdir", base, "--start-sequence", start[:-3], "--score-only", "--expression-model",
                   ft]) == 0
  out, err = capsys.readouterr()
  row = dict(zip(*[line.split("\t") for line in out.splitlines()]))
  assert row["length"] == str(len(start) - 3) and row["translation_ok"] == "True"
  assert "an extrapolation" in err and row["codon_distance_to_training"] == ""
  # From a FASTA file, with --report: the report goes there, nothing to stdout, and the last line says so.
  fasta, report = tmp_path / "start.fa", tmp_path / "r.tsv"
  fasta.write_text(f">given some description\n{start[:40]}\n{start[40:]}\n")
  assert cli.main(["design", "--workdir", base, "--start-sequence", str(fasta), "--score-only", "--report",
                   str(report)]) == 0
  out, err = capsys.readouterr()
  assert out == "" and f"1 sequence scored (--score-only, unchanged), written to {report}" in err
  assert _report(report)[0]["length"] == str(len(start))


def test_5prime_bound_with_a_utr_holds(expression_ft, tmp_path, capsys):
  base, _, _, val = expression_ft
  report = tmp_path / "r.tsv"
  utr = "GGGCCCAAAGGGCCC"
  start = val[2][0]
  bound = expression.mfe_5prime(start, utr5=utr) + 1.0
  assert cli.main(["design", "--workdir", base, "--protein", PROTEIN, "--start-sequence", start, "--utr5", utr,
                   "--mfe-5prime-min", str(bound), "--rounds", "1", "--report", str(report),
                   "--output", str(tmp_path / "d.fa")]) == 0
  [row] = _report(report)
  seq = (tmp_path / "d.fa").read_text().split("\n")[1]
  assert float(row["mfe_5prime"]) >= bound and np.isclose(expression.mfe_5prime(seq, utr5=utr),
                                                         float(row["mfe_5prime"]), atol=1e-4)
  capsys.readouterr()


@pytest.mark.parametrize("extra, needle", [
    (["--protein", "MKK", "--lock", "1-5"], "--lock keeps codons of --start-sequence"),
    (["--start-sequence", "ATGAAAAAA", "--lock", "2-9"], "--lock 2-9: outside codons 1-4"),
    (["--start-sequence", "ATGAAAAAA", "--lock", "x"], "--lock 'x': give START-END"),
    (["--start-sequence", "ATGAAAAAA", "--lock", "3-2"], "--lock 3-2: END comes before START"),
    (["--protein", "MKK", "--objective", "expression", "--expression-model", "/nonexistent/ft"],
     "--expression-model /nonexistent/ft: does not exist"),
    (["--start-sequence", "ATGAAGAAATAA", "--protein", "MKR"], "differs from --protein"),
    (["--start-sequence", "ATGAAGAA"], "not a whole number of codons"),
    (["--start-sequence", "ATGTAAAAA"], "stop codon at codon 2"),
    (["--score-only", "--protein", "MKK"], "--score-only reports the columns of an existing"),
    (["--protein", "MKK", "--utr5", "ACGX"], "--utr5: 5'UTR has letters"),
])
def test_start_lock_and_score_only_refusals(tiny_run, tmp_path, capsys, extra, needle):
  base, _ = tiny_run
  out = tmp_path / "d.fasta"
  assert needle in refused(capsys, "design", "--workdir", base, "--output", str(out), *extra)
  assert not os.listdir(tmp_path)


def test_expression_model_refusals_name_the_fix(tiny_run, tmp_path, capsys):
  base, _ = tiny_run
  f = tmp_path / "model.txt"
  f.write_text("x")
  line = refused(capsys, "design", "--workdir", base, "--protein", "MKK", "--objective", "expression",
                 "--expression-model", str(f))
  assert "a file, not a fine-tuning directory" in line
  line = refused(capsys, "design", "--workdir", base, "--protein", "MKK", "--objective", "expression",
                 "--expression-model", base)
  assert f"--expression-model {base}: a pretraining run, not a fine-tuning" in line


def test_an_infeasible_only_run_writes_nothing(tiny_run, tmp_path, capsys):
  base, _ = tiny_run
  code = cli.main(["design", "--workdir", base, "--protein", "KKKKKKKKKKFFFFFFFFFFNNNNN", "--gc-min", "0.6",
                   "--gc-max", "0.7", "--gc-window", "30", "--output", str(tmp_path / "d.fasta"),
                   "--report", str(tmp_path / "d.tsv")])
  assert code == 2 and not os.listdir(tmp_path)
  assert len(capsys.readouterr().err.strip().splitlines()) == 1
