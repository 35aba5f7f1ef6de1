"""`dnajax vep` end to end on the tiny model: the score's definition, strands, windows at edges and N runs, regions,
batch independence, outputs (TSV, VCF, bgzip VCF, from a table) and one-line refusals with nothing written."""

import csv
import gzip
import os

import numpy as np
import pysam
import pytest
from conftest import refused

from dnajax import cli
from dnajax.apps import vep as vep_app
from dnajax.data import tokens
from dnajax.evaluation.engine import Engine

RNG = np.random.default_rng(7)
SEQ = tokens.decode(RNG.integers(tokens.A, tokens.T + 1, 400).astype(np.uint8))
N_SEQ = SEQ[:200] + "N" * 20 + SEQ[220:]  # an N run at 200..219 (0-based)


def _fasta(path, records):
  with open(path, "w") as f:
    for name, seq in records:
      f.write(f">{name}\n" + "".join(seq[i:i + 60] + "\n" for i in range(0, len(seq), 60)))
  return str(path)


def _vcf(path, rows):
  with open(path, "w") as f:
    f.write("##fileformat=VCFv4.2\n##INFO=<ID=DP,Number=1,Type=Integer,Description=\"Depth\">\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    for chrom, pos, vid, ref, alt in rows:
      f.write(f"{chrom}\t{pos}\t{vid}\t{ref}\t{alt}\t.\t.\tDP=3\n")
  return str(path)


def _other(base):
  return "ACGT"[("ACGT".index(base) + 1) % 4]


def _read(path):
  with open(path) as f:
    return list(csv.DictReader(f, delimiter="\t"))


@pytest.fixture
def setup(tiny_run, tmp_path, monkeypatch):
  monkeypatch.setenv("DNAJAX_CACHE", str(tmp_path / "cache"))
  ref = _fasta(tmp_path / "ref.fa", [("chr1", SEQ), ("chr2", N_SEQ)])
  rows = [("chr1", 150, "mid", SEQ[149], ",".join(b for b in "ACGT" if b != SEQ[149])),
          ("1", 1, "first", SEQ[0].lower(), _other(SEQ[0])), ("chr1", 400, "last", SEQ[399], _other(SEQ[399])),
          ("chr2", 205, "inN", "A", "G"), ("chr2", 198, "beforeN", N_SEQ[197], _other(N_SEQ[197])),
          ("chr1", 20, "mismatch", _other(SEQ[19]), SEQ[19]), ("chr1", 30, "sym", SEQ[29], "<DEL>"),
          ("chr1", 60, "del", SEQ[59:62], SEQ[59]), ("chr1", 80, "ins", SEQ[79], SEQ[79] + "GA")]
  return tiny_run[0], ref, _vcf(tmp_path / "v.vcf", rows), tmp_path


def test_scores_are_the_masked_log_likelihood_ratio_on_both_strands(setup, capsys):
  workdir, ref, vcf, tmp = setup
  out = str(tmp / "out.tsv")
  assert cli.main(["vep", "--workdir", workdir, "--reference", ref, "--vcf", vcf, "--output", out]) == 0
  err = capsys.readouterr().err
  assert "scored 8 (snv 6, deletion 1, insertion 1)" in err and "2 ref_mismatch" in err and "1 symbolic" in err
  assert "variants/s" in err and "warning" in err  # 2 of 10 REF mismatches: a wrong build is suspected
  rows = _read(out)
  assert list(rows[0]) == list(vep_app.COLUMNS)
  by_id = {}
  for r in rows:
    by_id.setdefault(r["id"], []).append(r)
  assert [r["alt"] for r in by_id["mid"]] == [b for b in "ACGT" if b != SEQ[149]]
  assert by_id["inN"][0]["flag"] == "ref_mismatch" and by_id["inN"][0]["score"] == ""
  assert by_id["mismatch"][0]["flag"] == "ref_mismatch" and "sym" not in by_id
  assert by_id["first"][0]["ref"] == SEQ[0] and by_id["first"][0]["chrom"] == "1"

  engine = Engine.from_workdir(workdir)
  L = engine.seq_len
  for vid, seq, pos, start in (("mid", SEQ, 149, 149 - L // 2), ("first", SEQ, 0, 0), ("last", SEQ, 399, 400 - L),
                               ("beforeN", N_SEQ, 197, 200 - L)):
    window = np.array(tokens.encode(seq[start:start + L]))
    assert (window != tokens.N).all()
    window[pos - start] = tokens.MASK
    fwd = engine.log_probs(window[None])[0, pos - start]
    rev = engine.log_probs(tokens.reverse_complement(window)[None])[0, L - 1 - (pos - start)]
    for r in by_id[vid]:
      i, j = "ACGT".index(r["ref"]), "ACGT".index(r["alt"])
      f, b = fwd[j] - fwd[i], rev[3 - j] - rev[3 - i]
      np.testing.assert_allclose([float(r["score_forward"]), float(r["score_reverse"]), float(r["score"])],
                                 [f, b, (f + b) / 2], rtol=1e-4, atol=1e-5)
      np.testing.assert_allclose(float(r["ref_prob"]), (np.exp(fwd[i]) + np.exp(rev[3 - i])) / 2, rtol=1e-4)
      assert r["window"] == str(L) and r["kind"] == "snv"
  for vid, kind in (("del", "deletion"), ("ins", "insertion")):
    r = by_id[vid][0]
    assert r["kind"] == kind and np.isfinite(float(r["score"])) and r["window"] == str(L)
    np.testing.assert_allclose(float(r["score"]), (float(r["score_forward"]) + float(r["score_reverse"])) / 2,
                               rtol=1e-5, atol=1e-6)  # each written to 6 decimals

  fwd_only = str(tmp / "fwd.tsv")
  assert cli.main(["vep", "--workdir", workdir, "--reference", ref, "--vcf", vcf, "--output", fwd_only,
                   "--strands", "forward", "--window", "32", "--indels", "skip"]) == 0
  assert "2 MNV or indel (--indels skip)" in capsys.readouterr().err
  rows = _read(fwd_only)
  assert all(r["score_reverse"] == "" and r["score"] == r["score_forward"] for r in rows if not r["flag"])
  assert {r["window"] for r in rows if not r["flag"]} == {"32"} and not any(r["kind"] != "snv" for r in rows)


def test_scores_do_not_depend_on_batch_size_and_regions_are_placed(setup, capsys):
  workdir, ref, vcf, tmp = setup
  kw = dict(vcf=vcf, progress=False)
  a = vep_app.run(workdir, ref, str(tmp / "a.tsv"), batch_size=8, **kw)["results"]
  b = vep_app.run(workdir, ref, str(tmp / "b.tsv"), batch_size=64, **kw)["results"]
  snv = [(x.score, y.score) for x, y in zip(a, b) if x is not None and x.kind == "snv" and x.score is not None]
  indel = [(x.score, y.score) for x, y in zip(a, b) if x is not None and x.kind != "snv"]
  assert len(snv) == 6 and len(indel) == 2
  np.testing.assert_allclose(*zip(*snv), rtol=1e-5, atol=1e-7)
  # An indel's score is the difference of two sums of ~2 x window log-probabilities: float32 rounding of the
  # summands (which XLA tiles differently per batch shape) leaves ~1e-5 absolute.
  np.testing.assert_allclose(*zip(*indel), rtol=0, atol=1e-4)
  # The same sequence as an extracted region (samtools name): the same scores at contig coordinates.
  region = _fasta(tmp / "region.fa", [("chr1:1001-1400", SEQ)])
  shifted = _vcf(tmp / "s.vcf", [("chr1", 1150, "mid", SEQ[149], _other(SEQ[149])), ("chr1", 900, "out", "A", "G"),
                                 ("chr1", 1401, "after", "A", "G")])
  r = vep_app.run(workdir, region, str(tmp / "s.tsv"), vcf=shifted, progress=False)
  assert r["skipped"]["outside_reference"] == 2
  mid = [x for x in r["results"] if x is not None]
  want = [x.score for v, x in zip(vep_app.variants.read_vcf(vcf).variants, a) if (v.id, v.alt) == ("mid",
                                                                                                  _other(SEQ[149]))]
  assert len(mid) == len(want) == 1
  np.testing.assert_allclose(mid[0].score, want[0], rtol=1e-5)


def test_vcf_outputs_and_table_input(setup, capsys):
  workdir, ref, vcf, tmp = setup
  tsv = str(tmp / "a.tsv")
  assert cli.main(["vep", "--workdir", workdir, "--reference", ref, "--vcf", vcf, "--output", tsv]) == 0
  scores = {(r["id"], r["alt"]): r["score"] for r in _read(tsv)}
  for name in ("o.vcf", "o.vcf.gz"):
    out = str(tmp / name)
    assert cli.main(["vep", "--workdir", workdir, "--reference", ref, "--vcf", vcf, "--output", out]) == 0
    with pysam.VariantFile(out) as f:
      assert "DNAJAX_LLR" in f.header.info and f.header.info["DNAJAX_LLR"].number == "A"
      recs, header = list(f), str(f.header)
    assert len(recs) == 9 and all(r.info["DP"] == 3 for r in recs)
    mid = recs[0]
    np.testing.assert_allclose(mid.info["DNAJAX_LLR"], [float(scores[("mid", a)]) for a in mid.alts], atol=2e-5)
    assert recs[5].info["DNAJAX_FLAG"] == ("ref_mismatch",) and recs[5].info["DNAJAX_LLR"] == (None,)
    assert recs[6].info["DNAJAX_LLR"] == (None,) and recs[6].info["DNAJAX_FLAG"] == ("symbolic",)  # kept, unscored
    assert "##dnajax_vepCommand=<workdir=" in header
  table = tmp / "t.tsv"
  table.write_text("chrom\tpos\tref\talt\tid\n" + f"chr1\t150\t{SEQ[149]}\t{_other(SEQ[149])}\tmid\n")
  out = str(tmp / "t_out.tsv")
  assert cli.main(["vep", "--workdir", workdir, "--reference", ref, "--variants", str(table), "--output", out]) == 0
  assert _read(out)[0]["score"] == scores[("mid", _other(SEQ[149]))]


def test_bad_inputs_are_refused_in_one_line_and_nothing_is_written(setup, capsys):
  workdir, ref, vcf, tmp = setup
  out = tmp / "never.tsv"
  base = ["vep", "--workdir", workdir, "--reference", ref, "--output", str(out)]
  (tmp / "junk.vcf").write_text("not a vcf\n")
  assert "cannot be read as VCF" in refused(capsys, *base, "--vcf", str(tmp / "junk.vcf"))
  late = _vcf(tmp / "late.vcf", [("chr1", 5, ".", "A", "G"), ("chr1", "x", ".", "A", "G")])
  assert "line 5: POS 'x': not a whole number" in refused(capsys, *base, "--vcf", late)
  assert "contig 'chr9' is not in the reference" in refused(capsys, *base, "--vcf",
                                                            _vcf(tmp / "c.vcf", [("chr9", 5, ".", "A", "G")]))
  assert "past the end of contig chr1" in refused(capsys, *base, "--vcf", _vcf(tmp / "p.vcf", [("chr1", 401, ".",
                                                                                                "A", "G")]))
  assert "no variant to score" in refused(capsys, *base, "--vcf", _vcf(tmp / "s.vcf", [("chr1", 5, ".", "A", "*")]))
  assert "--window 4096: use 2.." in refused(capsys, *base, "--vcf", vcf, "--window", "4096")
  assert "is the input file" in refused(capsys, "vep", "--workdir", workdir, "--reference", ref, "--vcf", vcf,
                                        "--output", vcf)
  assert "not a dnajax workdir" in refused(capsys, "vep", "--workdir", str(tmp), "--reference", ref, "--vcf", vcf,
                                           "--output", str(out))
  assert not out.exists() and not [f for f in os.listdir(tmp) if f.startswith("never")]


def test_every_spelling_of_an_indel_gets_one_score_and_outputs_follow_the_name(setup, capsys):
  """A deletion of one A from a run of As, written at each position of the run (and with a longer padding), is
  normalised to one variant; outputs: .tsv.gz, '-' (stdout), a symbolic link (its target is written)."""
  workdir, _, _, tmp = setup
  seq = SEQ[:100] + "GAAAAC" + SEQ[106:]
  ref = _fasta(tmp / "run.fa", [("chr1", seq)])
  rows = [("chr1", 101, "d0", "GA", "G"), ("chr1", 102, "d1", "AA", "A"), ("chr1", 104, "d3", "AA", "A"),
          ("chr1", 104, "d3pad", "AAC", "AC"), ("chr1", 101, "ins0", "G", "GA"), ("chr1", 105, "ins4", "A", "AA"),
          ("chr1", 104, "mnv_snv", "AAC", "AGC")]
  vcf = _vcf(tmp / "run.vcf", rows)
  target = tmp / "target.tsv"
  target.write_text("old\n")
  os.symlink(target, tmp / "link.tsv")
  assert cli.main(["vep", "--workdir", workdir, "--reference", ref, "--vcf", vcf, "--output", str(tmp / "link.tsv"),
                   "--no-progress"]) == 0
  assert os.path.islink(tmp / "link.tsv")
  by_id = {r["id"]: r for r in _read(target)}
  deletions = {by_id[k]["score"] for k in ("d0", "d1", "d3", "d3pad")}
  insertions = {by_id[k]["score"] for k in ("ins0", "ins4")}
  assert len(deletions) == 1 and len(insertions) == 1 and "" not in deletions | insertions
  assert by_id["d1"]["kind"] == "deletion" and by_id["mnv_snv"]["kind"] == "snv"  # AAC>AGC is the SNV A>G at 105
  capsys.readouterr()
  assert cli.main(["vep", "--workdir", workdir, "--reference", ref, "--vcf", vcf, "--output", "-",
                   "--no-progress"]) == 0
  out = capsys.readouterr().out
  assert out == target.read_text()
  assert cli.main(["vep", "--workdir", workdir, "--reference", ref, "--vcf", vcf, "--output", str(tmp / "o.tsv.gz"),
                   "--no-progress"]) == 0
  assert gzip.open(tmp / "o.tsv.gz", "rt").read() == out
  capsys.readouterr()
  assert "BCF is not written" in refused(capsys, "vep", "--workdir", workdir, "--reference", ref, "--vcf", vcf,
                                         "--output", str(tmp / "o.bcf"))


def test_references_that_are_not_dna_or_misnamed_regions_are_refused(setup, capsys):
  workdir, _, vcf, tmp = setup
  base = ["vep", "--workdir", workdir, "--vcf", vcf, "--output", str(tmp / "never.tsv"), "--reference"]
  protein = _fasta(tmp / "prot.fa", [("chr1", "MKTLLVAGFEPQRSWY" * 30)])
  assert "is not DNA" in refused(capsys, *base, protein)
  (tmp / "x.gb").write_text("LOCUS       X 10 bp DNA\nORIGIN\n        1 acgtacgtac\n//\n")
  assert "a GenBank file" in refused(capsys, *base, str(tmp / "x.gb"))
  assert "holds 400 bases" in refused(capsys, *base, _fasta(tmp / "bad_region.fa", [("chr1:1001-1500", SEQ)]))
  ucsc = _fasta(tmp / "ucsc.fa", [("chr1:1000-1400", SEQ)])  # UCSC: 0-based start, 400 bases
  one = _vcf(tmp / "one.vcf", [("chr1", 1150, "mid", SEQ[149], _other(SEQ[149]))])
  assert cli.main(["vep", "--workdir", workdir, "--reference", ucsc, "--vcf", one, "--output", str(tmp / "u.tsv"),
                   "--no-progress"]) == 0
  assert _read(tmp / "u.tsv")[0]["flag"] == ""
  capsys.readouterr()
  wrong = _vcf(tmp / "wrong.vcf", [("chr1", 150, "w", _other(SEQ[149]), SEQ[149])])
  assert "no variant could be scored (1 ref_mismatch" in refused(capsys, "vep", "--workdir", workdir, "--reference",
                                                                  _fasta(tmp / "r2.fa", [("chr1", SEQ)]), "--vcf",
                                                                  wrong, "--output", str(tmp / "never.tsv"))
  assert not (tmp / "never.tsv").exists()
