import numpy as np
import pytest
from Bio.Seq import Seq

from dnajax import cli
from dnajax.apps import design
from dnajax.bio import codons, sequence
from dnajax.data import tokens
from dnajax.evaluation.engine import Engine

PROTEIN = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGLY"


def test_design_translates_meets_constraints_and_reports(tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  out, report = tmp_path / "d.fasta", tmp_path / "d.tsv"
  prot = tmp_path / "p.fa"
  prot.write_text(f">good\n{PROTEIN}*\n>impossible\nKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKK\n")
  code = cli.main(["design", "--workdir", workdir, "--protein-fasta", str(prot), "--organism", "e_coli",
                   "--gc-min", "0.3", "--gc-max", "0.65", "--gc-window", "50", "--avoid-sites", "BsaI,BsmBI",
                   "--max-homopolymer", "6", "--avoid-repeats", "20", "--n", "2", "--seed", "1", "--rounds", "1",
                   "--output", str(out), "--report", str(report)])
  err = capsys.readouterr().err
  engine = Engine.from_workdir(workdir)
  assert code == 2  # poly-K has only AAA/AAG: some 20-mer repeats. Reported; the feasible protein still written
  assert "protein impossible: infeasible: no sequence satisfies the constraints (UniquifyAllKmers" in err
  recs = out.read_text().split(">")[1:]
  assert len(recs) == 2 and all(r.startswith("good_design") for r in recs)
  rows = [line.split("\t") for line in report.read_text().splitlines()]
  header, rows = rows[0], rows[1:]
  assert len(rows) == 2 and header[0] == "name"
  for rec, row in zip(recs, rows):
    seq = rec.splitlines()[1]
    assert str(Seq(seq).translate(table=11)) == PROTEIN + "*" and seq[-3:] in ("TAA", "TAG", "TGA")
    d = design.describe(seq, PROTEIN, codons.codon_usage("e_coli", 11),
                        design.Constraints(0.3, 0.65, 50, ("BsaI", "BsmBI"), 6, 20), 11)
    assert 0.3 <= d["gc_window_min"] and d["gc_window_max"] <= 0.65 and d["longest_homopolymer"] <= 6
    assert d["repeated_kmers"] == 0 and not {"BsaI", "BsmBI"} & set(d["restriction_sites"])
    assert "GGTCTC" not in seq and "GAGACC" not in seq  # BsaI either strand
    r = dict(zip(header, row))
    assert float(r["model_pll"]) < 0 and 0 < float(r["cai"]) <= 1 and r["pll_unit"] == "codon"
    lp = engine.pseudo_log_likelihood(tokens.encode(seq), "codon")
    assert np.isclose(float(r["model_pll"]), lp.sum(), atol=1e-3)  # the reported PLL is the exact codon PLL
  assert (tmp_path / "d.protein.fasta").read_text().count(PROTEIN) == 2


def test_model_guided_changes_raise_the_estimate(tiny_run):
  workdir, _ = tiny_run
  engine = Engine.from_workdir(workdir)
  usage = codons.codon_usage("e_coli", 11)
  c = design.Constraints()
  problem = design.feasible_start(PROTEIN, usage, c, 11, np.random.default_rng(0))
  start = problem.sequence
  js = list(range(0, len(PROTEIN) + 1, 8))
  before = design.codon_scores(engine, start, js, usage, PROTEIN)
  changes = design.improve(engine, problem, PROTEIN, usage, rounds=1)
  assert changes > 0 and problem.sequence != start
  assert str(Seq(problem.sequence).translate(table=11)) == PROTEIN + "*"
  # The first pass masks codons 0, 8, 16, ... of the starting sequence together; with no constraint to refuse a
  # change, each of them ends as the synonymous codon that pass scored best.
  for j, scores in before.items():
    if len(scores) > 1:
      assert problem.sequence[3 * j:3 * j + 3] == max(scores, key=scores.get)


@pytest.mark.parametrize("argv,needle", [
    (["--protein", "MKB"], "not amino acids"),
    (["--protein", "MK*KL"], "letters * are not amino acids"),
    (["--protein", "KKKKKKKKKKFFFFFFFFFFNNNNN", "--gc-min", "0.6", "--gc-max", "0.7", "--gc-window", "30"],
     "infeasible: no sequence satisfies the constraints (EnforceGCContent"),
    (["--protein", "MK", "--avoid-sites", "NotAnEnzyme"], "not a restriction enzyme"),
    (["--protein", "MK", "--organism", "martian"], "unknown"),
    (["--protein", "MK", "--gc-min", "0.7", "--gc-max", "0.6"], "--gc-min"),
])
def test_design_input_errors_are_one_line(tiny_run, capsys, argv, needle):
  workdir, _ = tiny_run
  assert cli.main(["design", "--workdir", workdir, *argv]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and needle in err


def test_splice_sites_are_found_and_avoided(tiny_run):
  assert sequence.splice_sites("AAGTAAGTCC") == ["donor@2"]
  assert sequence.splice_sites("T" * 11 + "ACAG") == ["acceptor@0"]
  assert sequence.splice_sites(str(Seq("AAGTAAGTCC").reverse_complement())) == []  # the coding strand only
  c = design.Constraints(avoid_splice_sites=True)
  usage = codons.codon_usage("h_sapiens", 1)
  d = design.describe("ATGGTAAGTTAA", "MVS", usage, c, 1)
  assert d["splice_sites"] == ["donor@3"] and design.violations(d, c) == ["splice_site"]
  engine = Engine.from_workdir(tiny_run[0])
  protein = "MVSVSVSLQVSRVSVSVSLQVSVS" * 2  # Val-Ser (GTR AGT) and Leu-Gln (... CAG) invite both sites
  [out] = design.design_protein(engine, "p", protein, "h_sapiens", 1, c, 1, 0, rounds=1)
  assert out["violations"] == [] and out["splice_sites"] == [] and out["translation_ok"]
