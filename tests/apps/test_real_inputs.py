"""Inputs from public bug reports (issue 27), through the CLI: class labels written two ways, a validation table that
lacks a training class, the same id on two rows, VCF headers that htslib refuses, and VCF positions shifted by one.
Each input is built here; the files of ../shared/cases are also run when that folder is present (else skipped)."""

import gzip
import json
import os

import numpy as np
import pytest
from conftest import ROOT, refused, write

from dnajax import cli
from dnajax.data import labels, tables, tokens

RNG = np.random.default_rng(27)
CASES = os.path.join(os.path.dirname(ROOT), "shared", "cases")
FAST = ["--method", "head", "--config.finetune.epochs=1", "--config.finetune.batch=16", "--no-progress"]
REF_SEQ = tokens.decode(RNG.integers(tokens.A, tokens.T + 1, 300).astype(np.uint8))
VCF_HEADER = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def _case(name):
  path = os.path.join(CASES, name)
  if not os.path.isfile(path):
    pytest.skip(f"{path} not present")
  return path


def _seq(n=40):
  return tokens.decode(RNG.integers(tokens.A, tokens.T + 1, n).astype(np.uint8))


def _table(labels_):
  return "id,sequence,label\n" + "".join(f"r{i},{_seq()},{y}\n" for i, y in enumerate(labels_))


def _warnings(err):
  return [line for line in err.splitlines() if line.startswith("dnajax: warning: ")]


def test_labels_written_two_ways_are_one_class_and_a_missing_class_says_why_auroc_is_absent(tiny_run, tmp_path,
                                                                                          capsys):
  """Training labels 0/1/2 with 1.0 and 2.0 among them (a column that went through a float type) are three classes,
  not five; a validation table without class 2 says so in one stderr line (AUROC has no value there); predict on a
  labelled table with a repeated id names it."""
  base, _ = tiny_run
  train = write(tmp_path / "train.csv", _table(["0", "1", "2", "1.0", "2.0", "0.0"] * 8))
  val = write(tmp_path / "val.csv", _table(["0", "1.0", "1", "0"] * 4))
  out = tmp_path / "ft"
  code = cli.main(["finetune", "--workdir", base, "--train", train, "--val", val, "--output", str(out), *FAST])
  err = capsys.readouterr().err
  assert code == 0, err
  info = json.load(open(out / "finetune.json"))
  assert info["coding"]["classes"] == ["0", "1", "2"]
  said = _warnings(err)
  assert f"dnajax: warning: {train}: labels equal as numbers are one class: '0.0' read as '0', '1.0' read as '1', " \
         "'2.0' read as '2'" in said[0]
  assert f"{val}: labels equal as numbers are one class: '1.0' read as '1'" in said[1]
  assert f"{val}: no row of training class '2' (2 of the 3 training classes have rows here); AUROC" in said[2]
  assert len(said) == 3 and info["runs"]["0"]["val"]["auroc"] is None
  # predict on a labelled table: a label spelt 2.0 is class 2, and a repeated id is named with its rows.
  inp = write(tmp_path / "cand.csv", "id,sequence,label\na,ACGTACGTAC,2.0\nb,ACGTTTGTAC,0\na,ACGAAAGTAC,1\n")
  assert cli.main(["predict", "--workdir", str(out), "--input", inp, "--output", str(tmp_path / "p.tsv")]) == 0
  err = capsys.readouterr().err
  assert f"{inp}: the same id on more than one row: 'a' on rows 1 and 3;" in err
  assert "'2.0' read as '2'" in err and "metrics on 3 labelled rows" in err
  assert [line.split("\t")[0] for line in open(tmp_path / "p.tsv").read().splitlines()] == ["id", "a", "b", "a"]


def test_label_coding_merges_numbers_only(tmp_path, capsys):
  t = tables.SequenceTable(list("abcdef"), [np.array([tokens.A], np.uint8)] * 6, ["1", "1.0", "01", "yes", "Yes",
                                                                                   "-0"], "f.csv", "csv")
  c = labels.LabelCoding.fit("classification", t)
  assert c.classes == ["-0", "1", "Yes", "yes"]  # strings stay as written; 1, 1.0 and 01 are one number
  assert c.targets(t).tolist() == [1, 1, 1, 3, 2, 0]
  assert "'01' read as '1', '1.0' read as '1'" in capsys.readouterr().err


def test_repeated_ids_are_named_in_every_table_reader(tiny_run, tmp_path, capsys):
  """embed (CSV and FASTA tables) and score (FASTA records): the output keeps every row, in order; stderr names the
  repeated id and where it stands."""
  base, _ = tiny_run
  seqs = [_seq(30) for _ in range(3)]
  csv_in = write(tmp_path / "d.csv", "id,sequence\n" + "".join(f"{i},{s}\n" for i, s in zip("ABA", seqs)))
  fa_in = write(tmp_path / "d.fa", "".join(f">{i}\n{s}\n" for i, s in zip("ABA", seqs)))
  for inp, unit in ((csv_in, "rows"), (fa_in, "records")):
    out = tmp_path / (os.path.basename(inp) + ".npz")
    assert cli.main(["embed", "--workdir", base, "--input", inp, "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"dnajax: warning: {inp}: the same id on more than one {unit[:-1]}: 'A' on {unit} 1 and 3;" in err
    with np.load(out) as z:
      assert z["ids"].tolist() == ["A", "B", "A"] and z["embeddings"].shape[0] == 3
  assert cli.main(["score", "--workdir", base, "--input", fa_in]) == 0
  captured = capsys.readouterr()
  assert f"{fa_in}: the same id on more than one record: 'A' on records 1 and 3;" in captured.err
  assert [line.split("\t")[0] for line in captured.out.splitlines()] == ["name", "A", "B", "A"]
  # unique ids: nothing said
  assert not _warnings(_read_warnings(capsys, write(tmp_path / "u.csv", "id,sequence\nA,ACGT\nB,ACGT\n")))


def _read_warnings(capsys, path):
  tables.read_table(path)
  return capsys.readouterr().err


def _vep_setup(tmp_path):
  ref = write(tmp_path / "ref.fa", ">chr1\n" + "".join(REF_SEQ[i:i + 60] + "\n" for i in range(0, 300, 60)))
  return ref, tmp_path / "out.tsv"


@pytest.mark.parametrize("name, text, needles", [
    ("only_chrom.vcf", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t5\t.\tA\tG\t.\t.\t.\n",
     ["no '##fileformat=VCFv4.x' line: the header is only the '#CHROM' line; add '##fileformat=VCFv4.2' as the "
      "first line"]),
    ("no_header.vcf", "chr1\t5\t.\tA\tG\t.\t.\t.\n",
     ["the file has no header lines (line 1 is 'chr1\\t5", "add '##fileformat=VCFv4.2' as the first line",
      "no '#CHROM' header line"]),
    ("spaces.vcf", "##fileformat=VCFv4.2\n#CHROM POS ID REF ALT QUAL FILTER INFO\nchr1 5 . A G . . .\n",
     ["the columns of the '#CHROM' header line (line 2) are separated by spaces, not tabs"]),
    ("spaced_data.vcf", VCF_HEADER + "chr1 5 . A G . . .\n",
     ["the columns of the first data line (line 3) are separated by spaces, not tabs"]),
    ("short_chrom.vcf", "##fileformat=VCFv4.2\n#CHROM\tPOS\nchr1\t5\n",
     ["the '#CHROM' line (line 2) has 2 tab-separated columns; a VCF's has at least the 8 of"]),
])
def test_vcf_headers_name_what_is_missing(tiny_run, tmp_path, capsys, name, text, needles):
  ref, out = _vep_setup(tmp_path)
  for path in (write(tmp_path / name, text), write(tmp_path / (name + ".gz"), gzip.compress(text.encode()),
                                                                 "wb")):
    line = refused(capsys, "vep", "--workdir", tiny_run[0], "--reference", ref, "--vcf", path, "--output", str(out))
    assert line.startswith(f"dnajax: error: --vcf {path}: cannot be read as VCF: ") and "b'" not in line, line
    for needle in needles:
      assert needle in line, line
    assert not out.exists()


def test_htslib_refusals_show_the_path_as_text(tiny_run, tmp_path, capsys):
  ref, out = _vep_setup(tmp_path)
  path = write(tmp_path / "fmt.vcf", "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\n")
  line = refused(capsys, "vep", "--workdir", tiny_run[0], "--reference", ref, "--vcf", path, "--output", str(out))
  assert f"--vcf {path}: not a VCF file (file `{path}` does not have valid header" in line and "b'" not in line


def test_variant_table_headers_name_what_the_first_line_shows(tiny_run, tmp_path, capsys):
  ref, out = _vep_setup(tmp_path)
  base = ["vep", "--workdir", tiny_run[0], "--reference", ref, "--output", str(out), "--variants"]
  line = refused(capsys, *base, write(tmp_path / "s.tsv", "chrom pos ref alt\nchr1 5 A G\n"))
  assert "the header's columns are separated by spaces, not tabs" in line
  line = refused(capsys, *base, write(tmp_path / "d.tsv", "chr1\t5\tA\tG\nchr1\t6\tA\tG\n"))
  assert "the first line (chr1, 5, A, G) holds data, not column names" in line
  line = refused(capsys, *base, write(tmp_path / "r.tsv", "chrom\tpos\tref\talt\nchr1 5 A G\n"))
  assert "line 2: 1 columns, the header has 4; its columns are separated by spaces, not tabs" in line
  assert not out.exists()


def _shifted_rows():
  """12 SNVs written 0-based (POS one less than the base their REF names): 10 whose REF differs from the base at POS
  read 1-based, and 2 whose REF equals it by chance (the base before is the same)."""
  rows = {False: [], True: []}
  for w in range(10, 280, 3):
    same = REF_SEQ[w - 1] == REF_SEQ[w]
    if len(rows[same]) < (2 if same else 10):
      rows[same].append((w, REF_SEQ[w], "ACGT"[("ACGT".index(REF_SEQ[w]) + 1) % 4]))
  assert len(rows[True]) == 2 and len(rows[False]) == 10
  return sorted(rows[False] + rows[True])


def test_positions_shifted_by_one_are_refused_unless_asked(tiny_run, tmp_path, capsys, monkeypatch):
  _, out = _vep_setup(tmp_path)
  monkeypatch.chdir(tmp_path)
  ref = "ref.fa"  # named without a folder: its index is made beside it
  rows = _shifted_rows()
  vcf = write(tmp_path / "zero.vcf", VCF_HEADER + "".join(f"chr1\t{p}\tv{p}\t{r}\t{a}\t.\t.\t.\n" for p, r, a in rows))
  table = write(tmp_path / "zero.tsv", "chrom\tpos\tref\talt\n" + "".join(f"chr1\t{p}\t{r}\t{a}\n" for p, r, a in rows))
  matched = 2  # REF equal to the base at POS as written, by chance
  for flag, path in (("--vcf", vcf), ("--variants", table)):
    line = refused(capsys, "vep", "--workdir", tiny_run[0], "--reference", ref, flag, path, "--output", str(out))
    assert f"{flag} {path}: positions look shifted by one (0-based?): {12 - matched} of 12 variants" in line
    assert f"({12 - matched} of them match it one base further on)" in line and "--allow-shifted-positions" in line
    assert not out.exists()
  assert cli.main(["vep", "--workdir", tiny_run[0], "--reference", ref, "--vcf", vcf, "--output", str(out),
                   "--allow-shifted-positions", "--no-progress"]) == 0
  err = capsys.readouterr().err
  assert "positions look shifted by one (0-based?)" in err and "--allow-shifted-positions" in err
  assert f"scored {matched}" in err and "genome build" not in err
  # The same variants at their right (1-based) positions: all scored, nothing said about shifts.
  right = write(tmp_path / "one.vcf", VCF_HEADER + "".join(f"chr1\t{p + 1}\t.\t{r}\t{a}\t.\t.\t.\n"
                                                             for p, r, a in rows))
  assert cli.main(["vep", "--workdir", tiny_run[0], "--reference", ref, "--vcf", right, "--output", str(out),
                   "--no-progress"]) == 0
  err = capsys.readouterr().err
  assert "scored 12 (snv 12)" in err and "warning" not in err


def test_shared_cases(tiny_run, tmp_path, capsys):
  """The files of ../shared/cases for this round, when present."""
  train = tables.read_table(_case("labels_int_float_train.csv"), require_labels=True)
  assert labels.LabelCoding.fit("classification", train).classes == ["0", "1"]
  three = labels.LabelCoding.fit("classification", tables.read_table(_case("three_class_train.csv"),
                                                                     require_labels=True))
  three.targets(tables.read_table(_case("two_of_three_val.csv"), require_labels=True))
  assert "no row of training class 'gc_high'" in capsys.readouterr().err
  for name in ("dup_ids.csv", "dup_ids.fa"):
    assert "'geneA' on " in _read_warnings(capsys, _case(name))
  ref, out = _vep_setup(tmp_path)
  line = refused(capsys, "vep", "--workdir", tiny_run[0], "--reference", ref, "--vcf", _case("vcf_no_fileformat.vcf"),
                 "--output", str(out))
  assert "the header is only the '#CHROM' line; add '##fileformat=VCFv4.2' as the first line" in line
