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
    assert f"({12 - matched} of them match it one base further on" in line and "add 1 to every position" in line
    assert not out.exists()
  assert cli.main(["vep", "--workdir", tiny_run[0], "--reference", ref, "--vcf", vcf, "--output", str(out),
                   "--allow-shifted-positions", "--no-progress"]) == 0
  err = capsys.readouterr().err
  assert f"({12 - matched} of them match it one base further on" in err and "(0-based?)" not in err
  assert f"the {matched} whose REF matches at the position as written were scored there (--allow-shifted-positions)" \
      in err and f"scored {matched}" in err and "genome build" not in err
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
  val = tables.read_table(_case("two_of_three_val.csv"), require_labels=True)
  three.say_absent(val.source, three.targets(val))
  assert "no row of training class 'gc_high'" in capsys.readouterr().err
  for name in ("dup_ids.csv", "dup_ids.fa"):
    assert "'geneA' on " in _read_warnings(capsys, _case(name))
  ref, out = _vep_setup(tmp_path)
  line = refused(capsys, "vep", "--workdir", tiny_run[0], "--reference", ref, "--vcf", _case("vcf_no_fileformat.vcf"),
                 "--output", str(out))
  assert "the header is only the '#CHROM' line; add '##fileformat=VCFv4.2' as the first line" in line


# New-user findings after round 3: NaN labels, a two-class table of one class, VCF lines htslib refuses with a
# message that does not name them, gzip variant tables, positions one too high, empty ALT cells, '?' in predict,
# empty tables, outputs in folders that do not exist yet.

def test_nan_labels_are_missing_labels(tiny_run, tmp_path, capsys):
  base, _ = tiny_run
  val = write(tmp_path / "val.csv", _table(["0", "1"] * 4))
  for label in ("nan", "NaN"):
    train = write(tmp_path / f"train_{label}.csv", _table(["0", "1"] * 8 + [label]))
    out = tmp_path / f"ft_{label}"
    line = refused(capsys, "finetune", "--workdir", base, "--train", train, "--val", val, "--output", str(out), *FAST)
    assert line == f"dnajax: error: {train}: row 17 (id r16): label {label!r} is missing (NaN is no class); fill in " \
                   "the label or drop the row"
    assert not out.exists()


def test_a_table_of_one_class_of_a_two_class_model_says_why_mcc_and_auroc_are_absent(tiny_run, tmp_path, capsys):
  """--test and predict tables with rows of one class only: one stderr line names the table and the absent class;
  a validation table of one class is still refused on a line of its own."""
  base, _ = tiny_run
  train = write(tmp_path / "train.csv", _table(["a", "b"] * 8))
  val = write(tmp_path / "val.csv", _table(["a", "b"] * 4))
  test = write(tmp_path / "test.csv", _table(["a"] * 6))
  out = tmp_path / "ft"
  line = refused(capsys, "finetune", "--workdir", base, "--train", train, "--val", test, "--test", val,
                 "--output", str(out), *FAST)
  assert f"{test}: every validation row has one class" in line and not out.exists()
  code = cli.main(["finetune", "--workdir", base, "--train", train, "--val", val, "--test", test, "--output", str(out),
                   *FAST])
  err = capsys.readouterr().err
  assert code == 0, err
  said = [w for w in _warnings(err) if "no row of training class" in w]
  assert said == [f"dnajax: warning: {test}: no row of training class 'b' (1 of the 2 training classes have rows "
                  "here); MCC and AUROC, which compare classes, have no value over this table"]
  assert cli.main(["predict", "--workdir", str(out), "--input", test, "--output", str(tmp_path / "p.tsv")]) == 0
  assert f"{test}: no row of training class 'b'" in capsys.readouterr().err
  # '?' in a table given to a fine-tuned run names the verb that takes it.
  q = write(tmp_path / "q.csv", "id,sequence\nx,ACG?TACG\n")
  line = refused(capsys, "predict", "--workdir", str(out), "--input", q, "--output", str(tmp_path / "q.tsv"))
  assert "'?' marks positions to fill and is accepted only by predict on a pretraining run" in line


GOOD_ROWS = [(p, REF_SEQ[p - 1], "ACGT"[("ACGT".index(REF_SEQ[p - 1]) + 1) % 4]) for p in range(20, 280, 20)]


def _vcf_lines(rows=GOOD_ROWS):
  return [f"chr1\t{p}\tv{p}\t{r}\t{a}\t.\t.\t." for p, r, a in rows]


@pytest.mark.parametrize("name, data", [
    ("trailing_blank", "\n".join(_vcf_lines()) + "\n\n"),
    ("middle_blank", "\n".join(_vcf_lines()[:3]) + "\n\n" + "\n".join(_vcf_lines()[3:]) + "\n"),
    ("bom", "\n".join(_vcf_lines()) + "\n"),
])
def test_vcfs_with_blank_lines_or_a_byte_order_mark_are_read(tiny_run, tmp_path, capsys, name, data):
  ref, out = _vep_setup(tmp_path)
  text = ("\ufeff" if name == "bom" else "") + VCF_HEADER + data
  for path in (write(tmp_path / f"{name}.vcf", text), write(tmp_path / f"{name}.vcf.gz", gzip.compress(text.encode()),
                                                            "wb")):
    assert cli.main(["vep", "--workdir", tiny_run[0], "--reference", ref, "--vcf", path, "--output", str(out),
                     "--no-progress"]) == 0
    assert f"scored {len(GOOD_ROWS)} (snv {len(GOOD_ROWS)})" in capsys.readouterr().err
    assert len(open(out).read().splitlines()) == len(GOOD_ROWS) + 1


@pytest.mark.parametrize("name, line, needle", [
    ("badpos", "chr1\t2x8\t.\tA\tG\t.\t.\t.", "line 4: POS '2x8': not a whole number; fix that line"),
    ("negpos", "chr1\t-5\t.\tA\tG\t.\t.\t.", "line 4: POS '-5': positions start at 1; fix that line"),
    ("trailing_space", "chr1\t20\t.\tA\tG\t.\t.\t. ", "line 4 ends with a space after its last column"),
    ("short", "chr1\t20\t.\tA\tG", "line 4 has 5 tab-separated columns"),
])
def test_vcf_data_lines_htslib_refuses_are_named(tiny_run, tmp_path, capsys, name, line, needle):
  ref, out = _vep_setup(tmp_path)
  path = write(tmp_path / f"{name}.vcf", VCF_HEADER + _vcf_lines()[0] + "\n" + line + "\n")
  got = refused(capsys, "vep", "--workdir", tiny_run[0], "--reference", ref, "--vcf", path, "--output", str(out))
  assert got.startswith(f"dnajax: error: --vcf {path}: ") and needle in got, got
  assert not out.exists()


def test_vcf_header_case_and_tables_given_as_vcf(tiny_run, tmp_path, capsys):
  ref, out = _vep_setup(tmp_path)
  lower = write(tmp_path / "lower.vcf", VCF_HEADER.replace("#CHROM", "#chrom") + _vcf_lines()[0] + "\n")
  line = refused(capsys, "vep", "--workdir", tiny_run[0], "--reference", ref, "--vcf", lower, "--output", str(out))
  assert "line 2: the header line starts '#chrom'; '#CHROM' must be upper case" in line
  table = write(tmp_path / "t.tsv", "chrom\tpos\tref\talt\nchr1\t20\tA\tG\n")
  line = refused(capsys, "vep", "--workdir", tiny_run[0], "--reference", ref, "--vcf", table, "--output", str(out))
  assert "names the columns of a variant table, not a VCF header; pass the table with --variants" in line
  assert not out.exists()


def test_variant_tables_gzip_positions_and_empty_alts(tiny_run, tmp_path, capsys):
  ref, out = _vep_setup(tmp_path)
  base = ["vep", "--workdir", tiny_run[0], "--reference", ref, "--output", str(out), "--no-progress", "--variants"]
  text = "chrom\tpos\tref\talt\n" + "".join(f"chr1\t{p}\t{r}\t{a}\n" for p, r, a in GOOD_ROWS) + "chr1\t5\tA\t\n"
  gz = write(tmp_path / "v.tsv.gz", gzip.compress(text.encode()), "wb")
  assert cli.main(base + [gz]) == 0
  err = capsys.readouterr().err
  assert f"scored {len(GOOD_ROWS)} " in err and "skipped: 1 no ALT ('.' or an empty cell)" in err
  line = refused(capsys, *base, write(tmp_path / "neg.tsv", "chrom\tpos\tref\talt\nchr1\t-5\tA\tG\n"))
  assert "line 2: pos '-5': positions start at 1; fix that line" in line
  # every position one too high: refused (subtract 1), scored as written only when asked, the REFs described
  path = write(tmp_path / "high.tsv", "chrom\tpos\tref\talt\n" + "".join(f"chr1\t{p + 2}\t{r}\t{a}\n"
                                                                          for p, r, a in _shifted_rows()))
  line = refused(capsys, *base, path)
  assert "positions look shifted by one: " in line and "(0-based?)" not in line
  assert "match it one base earlier" in line and "subtract 1 from every position" in line
  assert cli.main(base + [path, "--allow-shifted-positions"]) == 0
  err = capsys.readouterr().err
  assert "match it one base earlier); those are flagged ref_mismatch" in err


def test_empty_tables_and_outputs_in_new_folders(tiny_run, tmp_path, capsys):
  base, _ = tiny_run
  empty = write(tmp_path / "e.csv", "")
  line = refused(capsys, "embed", "--workdir", base, "--input", empty, "--output", str(tmp_path / "e.npz"))
  assert line == f"dnajax: error: {empty}: file is empty; expected a CSV/TSV table: a header line naming its " \
                 "columns, then one row per sequence"
  # every output file: missing folders on its path are made (as README says)
  inp = write(tmp_path / "s.csv", "id,sequence\na,ACGTACGTAA\n")
  out = tmp_path / "new" / "dir" / "x.npz"
  assert cli.main(["embed", "--workdir", base, "--input", inp, "--output", str(out)]) == 0 and out.exists()
  capsys.readouterr()
  blocked = write(tmp_path / "file", "x")
  line = refused(capsys, "embed", "--workdir", base, "--input", inp, "--output", os.path.join(blocked, "x.npz"))
  assert "is not a directory" in line
