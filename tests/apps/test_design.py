import numpy as np
import pytest
from Bio.Seq import Seq

from dnajax import cli
from dnajax.bio import codons, sequence
from dnajax.data import tokens
from dnajax.design import constraints, search
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
    d = constraints.describe(seq, PROTEIN, codons.codon_usage("e_coli", 11),
                        constraints.Constraints(0.3, 0.65, 50, ("BsaI", "BsmBI"), 6, 20), 11)
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
  c = constraints.Constraints()
  problem = constraints.feasible_start(PROTEIN, usage, c, 11, np.random.default_rng(0))
  start = problem.sequence
  js = list(range(0, len(PROTEIN) + 1, 8))
  options = constraints.codon_options(PROTEIN, usage, c)
  before = search.codon_scores(engine, start, js, options)
  changes = search.improve(engine, problem, options, rounds=1)
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
  c = constraints.Constraints(avoid_splice_sites=True)
  usage = codons.codon_usage("h_sapiens", 1)
  d = constraints.describe("ATGGTAAGTTAA", "MVS", usage, c, 1)
  assert d["splice_sites"] == ["donor@3"] and constraints.violations(d, c) == ["splice_site"]
  engine = Engine.from_workdir(tiny_run[0])
  protein = "MVSVSVSLQVSRVSVSVSLQVSVS" * 2  # Val-Ser (GTR AGT) and Leu-Gln (... CAG) invite both sites
  [out] = search.design_protein(engine, "p", protein, "h_sapiens", 1, c, 1, 0, rounds=1)
  assert out["violations"] == [] and out["splice_sites"] == [] and out["translation_ok"]


# ------------------------------------------------------------------ kinds of input design got wrong (issue 13, item 5)
def _design(workdir, tmp_path, *argv):
  out, report = tmp_path / "d.fasta", tmp_path / "d.tsv"
  code = cli.main(["design", "--workdir", workdir, "--rounds", "1", "--output", str(out), "--report", str(report),
                   *argv])
  if not out.exists():
    return code, [], []
  recs = [r.splitlines() for r in out.read_text().split(">")[1:]]
  lines = report.read_text().splitlines()
  rows = [dict(zip(lines[0].split("\t"), line.split("\t"))) for line in lines[1:]]
  return code, recs, rows


def test_records_with_the_same_id_keep_their_own_protein(tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  first, second = "MSKGEELFTGVVPILVELDG", "MAHHHHHHLEVLFQGPKRRWQQ"
  prot = tmp_path / "dup.faa"
  prot.write_text(f">sp|P0A7B8|ENTRY isoform 1\n{first}\n>sp|P0A7B8|ENTRY isoform 2\n{second}\n>other\nMKW\n")
  code, recs, rows = _design(workdir, tmp_path, "--protein-fasta", str(prot))
  assert code == 0
  names = [r[0].split()[0] for r in recs]
  assert names == ["sp|P0A7B8|ENTRY_record1_design1", "sp|P0A7B8|ENTRY_record2_design1", "other_design1"]
  assert [(r["record"], r["record_id"]) for r in rows] == [("1", "sp|P0A7B8|ENTRY"), ("2", "sp|P0A7B8|ENTRY"),
                                                           ("3", "other")]
  assert "record=2" in recs[1][0]
  # Matched by position: each design translates to its own record's protein, and the proteins file says so too.
  prots = [r.splitlines() for r in (tmp_path / "d.protein.fasta").read_text().split(">")[1:]]
  for rec, p, want in zip(recs, prots, (first, second, "MKW")):
    assert str(Seq(rec[1]).translate(table=11)) == want + "*"
    assert p[0].split()[0] == rec[0].split()[0] and p[1] == want


def test_a_nucleotide_sequence_given_as_a_protein_is_refused(tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  prot = tmp_path / "cds.fa"
  prot.write_text(">lcl|gene_1\nATGAAACGCATTAGCACCACCATTACCACCACCATCACCATTACCACAGGTAACGGTGCGGGCTGA\n")
  code, recs, _ = _design(workdir, tmp_path, "--protein-fasta", str(prot))
  err = capsys.readouterr().err.strip()
  assert code == 2 and recs == [] and not list(tmp_path.glob("d.*"))  # nothing written
  assert len(err.splitlines()) == 1 and err.startswith("dnajax: error: ")
  assert "record 1 (lcl|gene_1): looks like a nucleotide sequence" in err and "--allow-nucleotide-letters" in err
  assert cli.main(["design", "--workdir", workdir, "--protein", "augcccgguuaag"]) == 2  # RNA, lower case
  assert "looks like a nucleotide sequence" in capsys.readouterr().err
  code, recs, _ = _design(workdir, tmp_path, "--protein-fasta", str(prot), "--allow-nucleotide-letters")
  letters = prot.read_text().splitlines()[1]
  assert code == 0 and str(Seq(recs[0][1]).translate(table=11)) == letters + "*"  # forced: Ala-Thr-Gly-...
  code, recs, _ = _design(workdir, tmp_path, "--protein", "GATTACA")  # short: a peptide, not refused
  assert code == 0 and str(Seq(recs[0][1]).translate(table=11)) == "GATTACA*"


def test_n_designs_are_different_or_marked(tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  # Every start of MKW improves to the same sequence; the second and third designs must still differ.
  code, recs, rows = _design(workdir, tmp_path, "--protein", "MKW", "--n", "3")
  assert code == 0 and len({r[1] for r in recs}) == 3 and all(r["duplicate_of"] == "" for r in rows)
  assert "warning" not in capsys.readouterr().err
  for rec in recs:
    assert str(Seq(rec[1]).translate(table=11)) == "MKW*"
  # MW has three coding sequences (its stop codon): the fourth design must repeat one, and says so.
  code, recs, rows = _design(workdir, tmp_path, "--protein", "MW", "--n", "4")
  err = capsys.readouterr().err
  seqs = [r[1] for r in recs]
  assert code == 0 and len(set(seqs)) == 3 and len(seqs) == 4
  assert [r["duplicate_of"] for r in rows][:3] == ["", "", ""]
  names = [r[0].split()[0] for r in recs]
  assert seqs[3] == seqs[names.index(rows[3]["duplicate_of"])]
  assert f"duplicate_of={rows[3]['duplicate_of']}" in recs[3][0]
  warnings = [line for line in err.splitlines() if "warning" in line]
  assert len(warnings) == 1 and "dnajax: warning: design protein_design4 is identical to" in err
  assert err.splitlines()[-1].startswith("dnajax: design: 4 designs (pll objective) for 1 protein, written to")


def test_gc_window_longer_than_the_sequence_is_the_whole_sequence(tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  gc = ["--gc-min", "0.3", "--gc-max", "0.4", "--gc-window", "50"]
  code, recs, rows = _design(workdir, tmp_path, "--protein", "M", "--n", "2", *gc)
  assert code == 0 and sorted(r[1] for r in recs) == ["ATGTAG", "ATGTGA"]  # GC 2/6; ATGTAA (1/6) is not allowed
  assert rows[0]["gc_window_min"] == rows[0]["gc_window_max"] == rows[0]["gc"]
  peptide = tmp_path / "peptide.txt"  # a bare sequence: no '>' header
  peptide.write_text("MGSSHHHHHHSSG\n")
  code, recs, rows = _design(workdir, tmp_path, "--protein-fasta", str(peptide), *gc)
  assert code == 0 and recs[0][0].startswith("peptide_design1 ") and rows[0]["record_id"] == "peptide"
  assert str(Seq(recs[0][1]).translate(table=11)) == "MGSSHHHHHHSSG*"
  assert 0.3 <= sequence.gc_content(recs[0][1]) <= 0.4


@pytest.mark.parametrize("text,needle", [
    ("MKT AYIA, KQRQ.\n", "neither FASTA (no '>' header) nor a bare protein sequence"),
    ("MKTAYIAKQR\n>p\nMKV\n", "line 1 comes before the first '>' header (line 2)"),
    (">p\n\n", "record 1 (p): empty"),
])
def test_protein_files_that_are_not_protein_fasta_are_one_line(tiny_run, tmp_path, capsys, text, needle):
  workdir, _ = tiny_run
  path = tmp_path / "in.txt"
  path.write_text(text)
  assert cli.main(["design", "--workdir", workdir, "--protein-fasta", str(path)]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and needle in err


def test_solver_specifications_and_recheck_agree():
  """Every DNA Chisel specification passes exactly when dnajax's re-check of the same name does, on random and
  planted sequences of every length (GC windows longer than the sequence, sites at either end and on either
  strand, homopolymers, repeats with k longer than the sequence, splice sites)."""
  import dnachisel as dc

  def passes(seq, specs):
    problem = dc.DnaOptimizationProblem(seq, constraints=specs, logger=None)
    return all(e.passes for e in problem.constraints_evaluations())

  usage = codons.codon_usage("e_coli", 11)
  rng = np.random.default_rng(0)
  motifs = ["GGTCTC", "GAGACC", "CGTCTC", "GAATTC", "GTAAGT", "TTTTCTTTCTACAG", "AAAAAAA", "CCCCC"]
  seqs = ["ATGTAA", "ATGTAG" + "A" * 6, "A" * 12 + "GGTCTC", "GAGACC" + "A" * 12]
  for _ in range(400):
    n = 3 * int(rng.integers(2, 30))
    seq = "".join(rng.choice(list("ACGT"), n, p=rng.dirichlet(np.ones(4))))
    for m in motifs:
      if rng.random() < 0.2 and n >= len(m):
        i = int(rng.choice([0, n - len(m), int(rng.integers(0, n - len(m) + 1))]))
        seq = seq[:i] + m + seq[i + len(m):]
    seqs.append(seq)
  for i, seq in enumerate(seqs):
    protein = "A" * (len(seq) // 3 - 1)  # only its length matters here (the GC window)
    c = constraints.Constraints(float(rng.choice([0, 0.3, 0.4])), float(rng.choice([0.4, 0.65, 1.0])),
                           int(rng.choice([3, 20, 50, 200])), ("BsaI", "BsmBI", "EcoRI"),
                           int(rng.choice([0, 3, 6])), int(rng.choice([0, 4, 8, 200])), True)
    if i < 4:
      c = constraints.Constraints(0.3, 0.4, 50, ("BsaI",), 6, 200, True)
    broken = set(constraints.violations(constraints.describe(seq, protein, usage, c, 11), c))
    for check, specs in constraints.chisel_checks(protein, c, 11).items():
      if check != "translation":
        assert passes(seq, specs) == (check not in broken), (check, seq, c)
  # DNA Chisel never evaluates EnforceTranslation ("enforced by nucleotide restrictions"): its mutation space holds
  # the synonymous codons. They must be exactly the sequences the re-check translates to the protein.
  for code in (1, 4, 11):  # TGA: a stop in 1 and 11, Trp in 4
    u = codons.codon_usage("h_sapiens", code)
    protein = "MWKIC"
    specs = constraints.chisel_checks(protein, constraints.Constraints(), code)["translation"]
    problem = dc.DnaOptimizationProblem(codons.sample_cds(protein, u, rng), constraints=specs, logger=None)
    variants = set(problem.mutation_space.all_variants(problem.sequence))
    assert len(variants) == np.prod([len(u[aa]) for aa in protein + "*"])
    assert all(constraints.describe(v, protein, u, constraints.Constraints(), code)["translation_ok"] for v in variants)
