"""Sequence tables (FASTA, CSV, TSV) for downstream use: ids, sequences, labels; every bad row one line."""

import csv
import gzip

import numpy as np
import pytest
from conftest import write

from dnajax.data import tables, tokens
from dnajax.errors import UserError


def _seqs(t):
  return [tokens.decode(s) for s in t.seqs]


def test_csv_with_id_and_label_columns(tmp_path):
  p = write(tmp_path / "t.csv", 'ID, Sequence ,Label\ng1,ACGU,yes\n\n"g2","acgtacgtac gt\nRN",no\n,,\n')
  t = tables.read_table(p)
  assert (t.format, t.ids, _seqs(t), t.labels, t.source, len(t)) == \
      ("csv", ["g1", "g2"], ["ACGT", "ACGTACGTACGTNN"], ["yes", "no"], p, 2)
  assert all(s.dtype == np.uint8 for s in t.seqs)


def test_csv_without_id_or_label_numbers_rows_from_one(tmp_path):
  t = tables.read_table(write(tmp_path / "t.csv", "name,seq\na,AAAA\n\nb,CCCC\nc,GGGG\n"), sequence_column="SEQ")
  assert (t.ids, _seqs(t), t.labels) == (["1", "2", "3"], ["AAAA", "CCCC", "GGGG"], None)
  # a label column with an empty cell is fine unless labels are required
  t = tables.read_table(write(tmp_path / "l.csv", "sequence,label\nAC,x\nGT,\n"))
  assert t.labels == ["x", ""]
  with pytest.raises(UserError, match=r"l\.csv: row 2 \(line 3\): no label; fill in its 'label' cell"):
    tables.read_table(str(tmp_path / "l.csv"), require_labels=True)


@pytest.mark.parametrize("name,text,fmt", [
    ("t.tsv", "id\tsequence\tlabel\nx\tACGT\t1\ny\tGGCC\t0\n", "tsv"),
    ("t.txt", "id\tsequence\tlabel\nx\tACGT\t1\ny\tGGCC\t0\n", "tsv"),  # sniffed: a tab in the header
    ("t.dat", "id,sequence,label\nx,ACGT,1\ny,GGCC,0\n", "csv"),  # sniffed: a comma
    ("t.fa", ">x label=1 some words\nAC\nGT\n>y  label=0\nGGCC\n", "fasta"),
    ("t.txt", ">x label=1\nACGT\n>y label=\"0\"\nGGCC\n", "fasta"),  # sniffed: '>'
])
def test_tsv_and_fasta_give_the_same_table(tmp_path, name, text, fmt):
  t = tables.read_table(write(tmp_path / name, text), require_labels=True)
  assert (t.format, t.ids, _seqs(t), t.labels) == (fmt, ["x", "y"], ["ACGT", "GGCC"], ["1", "0"])


def test_single_column_csv_is_sniffed_and_fasta_labels_are_optional(tmp_path):
  t = tables.read_table(write(tmp_path / "t", "Sequence\nACGT\nuuuu\n"))
  assert (t.format, t.ids, _seqs(t)) == ("csv", ["1", "2"], ["ACGT", "TTTT"])
  t = tables.read_table(write(tmp_path / "f.fa", ">a label=pos\nACGT\n>b\nGG\n>\nTT\n"))
  assert (t.ids, t.labels) == (["a", "b", "3"], ["pos", "", ""])
  assert tables.read_table(write(tmp_path / "g.fa", ">a\nACGT\n")).labels is None
  with pytest.raises(UserError, match=r"f\.fa: record b: no label; write '>b label=VALUE' in its title line"):
    tables.read_table(str(tmp_path / "f.fa"), require_labels=True)
  t = tables.read_table(write(tmp_path / "h.fa", ">a class=3\nACGT\n"), label_column="class", require_labels=True)
  assert t.labels == ["3"]


def test_gzip_bom_and_line_endings_read_like_plain(tmp_path):
  text = "id,sequence,label\nr1,ACGTN,a\nr2,TTGCA,b\n"
  want = tables.read_table(write(tmp_path / "plain.csv", text))
  for name, data in (("t.csv.gz", gzip.compress(text.encode())),
                     ("bom.csv", b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode()),
                     ("bom.csv.gz", gzip.compress(b"\xef\xbb\xbf" + text.encode())),
                     ("utf16.csv", text.encode("utf-16")),
                     ("sniffed.gz", gzip.compress(text.encode()))):
    (tmp_path / name).write_bytes(data)
    t = tables.read_table(str(tmp_path / name))
    assert (t.ids, _seqs(t), t.labels) == (want.ids, _seqs(want), want.labels), name


def test_long_fields_read_and_the_csv_limit_is_restored(tmp_path):
  limit = csv.field_size_limit()
  seq = "ACGT" * 50_000  # longer than the csv module's default field limit (131,072 characters)
  t = tables.read_table(write(tmp_path / "long.csv", f"sequence\n{seq}\n"))
  assert len(t.seqs[0]) == len(seq) and csv.field_size_limit() == limit


@pytest.mark.parametrize("name,text,kw,message", [
    ("nocol.csv", "id,seq\na,ACGT\n", {},
     r"nocol\.csv: header line: no column 'sequence' \(columns: 'id', 'seq'\); pass --sequence-column NAME"),
    ("semi.csv", "sequence;label\nACGT;1\n", {}, r"semi\.csv: header line: .*the header holds ';'"),
    ("twice.csv", "sequence,SEQUENCE\nA,C\n", {}, r"twice\.csv: header line: 2 columns are named 'sequence'"),
    ("nolabel.csv", "sequence\nACGT\n", {"require_labels": True},
     r"nolabel\.csv: header line: no column 'label' .*pass --label-column NAME"),
    ("protein.csv", "id,sequence\nok,ACGT\np1,MKVLEEHHQWTS\n", {},
     r"protein\.csv: row 2 \(line 3\): record p1: position 3: letter 'L' is not an IUPAC nucleotide code"),
    ("gap.tsv", "sequence\nAC-GT\n", {}, r"gap\.tsv: row 1 \(line 2\): record 1: position 2: letter '-'"),
    ("empty_seq.csv", "id,sequence\na,\n", {}, r"empty_seq\.csv: row 1 \(line 2\): record a: empty sequence"),
    ("ragged.csv", "id,sequence\na,ACGT\nb,ACGT,extra\n", {},
     r"ragged\.csv: row 2 \(line 3\): 3 fields where the header has 2; give every row one field per column"),
    ("noid.csv", "id,sequence\n,ACGT\n", {}, r"noid\.csv: row 1 \(line 2\): empty id"),
    ("header_only.csv", "sequence,label\n", {}, r"header_only\.csv: no sequences \(the table has no data rows\)"),
    ("empty.csv", "", {}, r"empty\.csv: file is empty"),
    ("blank.tsv", "\n \n", {}, r"blank\.tsv: file is empty"),
    ("notfasta.fa", "ACGT\n", {}, r"notfasta\.fa: not FASTA: the first non-blank line 'ACGT'"),
    ("empty_record.fa", ">a\n>b\nACGT\n", {}, r"empty_record\.fa: record a: empty sequence"),
    ("what.txt", "ACGT\nACGT\n", {}, r"what\.txt: cannot tell the table format: .*first line 'ACGT'"),
    ("quote.csv", 'sequence\n"AC\x00GT"\n', {}, r"quote\.csv: "),
])
def test_bad_tables_are_one_line(tmp_path, name, text, kw, message):
  with pytest.raises(UserError, match=message) as e:
    tables.read_table(write(tmp_path / name, text), **kw)
  assert "\n" not in str(e.value)
