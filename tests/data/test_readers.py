import gzip

import numpy as np
import pytest
from conftest import shared_file, write

from dnajax.data import corpus, readers, tokens
from dnajax.errors import UserError


def test_fasta_multirecord_lowercase_iupac_u(tmp_path):
  p = write(tmp_path / "a.fa", ">r1 desc\nACGTacgt\nNNRYACGTACGTACGTACGT\n>r2\nACGU\n")
  recs = readers.read_file(p)
  assert [r.name for r in recs] == ["r1", "r2"]
  assert tokens.decode(recs[0].ids) == "ACGTACGTNNNN" + "ACGT" * 4
  assert recs[0].soft_masked.tolist() == [False] * 4 + [True] * 4 + [False] * 20
  assert tokens.decode(recs[1].ids) == "ACGT"


def test_gzip_and_format_sniffing(tmp_path):
  p = tmp_path / "x.seqdata.gz"
  p.write_bytes(gzip.compress(b">r\nACGTACGT\n"))
  assert tokens.decode(readers.read_file(str(p))[0].ids) == "ACGTACGT"


GENBANK = """LOCUS       TEST1                     12 bp    DNA     linear   BCT 01-JAN-2000
DEFINITION  test.
ACCESSION   TEST1
FEATURES             Location/Qualifiers
     source          1..12
ORIGIN
        1 acgtacgtac gt
//
"""


def test_genbank(tmp_path):
  recs = readers.read_file(write(tmp_path / "t.gb", GENBANK))
  assert recs[0].name == "TEST1" and tokens.decode(recs[0].ids) == "ACGTACGTACGT"


def test_shared_genbank_gz():
  recs = readers.read_file(shared_file("NC_005816.gb"))
  assert len(recs) == 1 and len(recs[0].ids) == 9609


def test_soft_masked_shared_file():
  recs = readers.read_file(shared_file("hg38_chr13_chr4_regions.fa"))
  assert any(r.soft_masked.any() for r in recs)


@pytest.mark.parametrize("name,content,needle", [
    ("protein.fa", ">p\nMKVLEFIQPLLAAG\n", "not an IUPAC nucleotide"),
    ("ambig.fa", ">p\nMKVRRSSWWKKMMDDHHVVACGT\n", "ambiguity"),
    ("empty.fa", "", "empty"),
    ("blank.fa", "\n\n  \n", "empty"),
    ("junk.fa", b"\x00\x01\x02\xff\xfe" * 100, "binary"),
    ("trunc.gb", GENBANK[:-4], "truncated"),
    ("noheader.fa", "ACGT\n", "not FASTA"),
    ("query.fa", ">q\nAC?T\n", "predict"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, name, content, needle):
  p = tmp_path / name
  p.write_bytes(content if isinstance(content, bytes) else content.encode())
  with pytest.raises(UserError) as e:
    readers.read_file(str(p))
  msg = str(e.value)
  assert needle in msg and str(p) in msg and "\n" not in msg


def test_truncated_gzip(tmp_path):
  p = tmp_path / "t.fa.gz"
  seq = np.random.default_rng(0).choice(list(b"ACGT"), 100_000).astype(np.uint8).tobytes()
  p.write_bytes(gzip.compress(b">r\n" + seq)[:5000])
  with pytest.raises(UserError, match="truncated or corrupt"):
    readers.read_file(str(p))


def test_directory_inputs(tmp_path):
  with pytest.raises(UserError, match="no sequence files"):
    readers.expand_inputs([str(tmp_path)])
  write(tmp_path / "b.fa", ">b\nACGT\n")
  write(tmp_path / "a.fasta", ">a\nACGT\n")
  write(tmp_path / "notes.txt", "x")
  assert [p.split("/")[-1] for p in readers.expand_inputs([str(tmp_path)])] == ["a.fasta", "b.fa"]
  with pytest.raises(UserError, match="no such file"):
    readers.expand_inputs([str(tmp_path / "missing.fa")])


def test_query_allowed_for_predict(tmp_path):
  rec = readers.read_file(write(tmp_path / "q.fa", ">q\nAC?T\n"), allow_query=True)[0]
  assert rec.ids[2] == tokens.MASK


def test_split_segments_at_n_runs():
  ids = tokens.encode("A" * 100 + "N" * 12 + "C" * 50 + "N" * 3 + "G" * 100)
  rec = readers.Record("r", ids, np.zeros(len(ids), bool), "x")
  assert corpus.split_segments(rec, n_run=10, min_len=40) == [(0, 100), (112, 265)]
  assert corpus.split_segments(rec, n_run=10, min_len=200) == []


def test_line_endings_crlf_and_cr(tmp_path):
  for eol in ("\r\n", "\r"):
    p = tmp_path / "x.fa"
    p.write_bytes(f">a{eol}ACGTACGT{eol}acgt{eol}>b{eol}GGGG{eol}".encode())
    recs = readers.read_file(str(p))
    assert [r.name for r in recs] == ["a", "b"] and len(recs[0].ids) == 12 and recs[0].soft_masked[8:].all()


def test_fasta_reader_matches_biopython(tmp_path):
  import io as _io
  import random

  from Bio import SeqIO

  rng = random.Random(0)
  pieces = ["A", "C", "g", "t", "N", " ", "\t", "\n", "\n", ">", "x y", "", ">id desc\n", "\n\n"]
  for _ in range(2000):
    text = ">" + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 40)))
    bio = [(r.id, str(r.seq)) for r in SeqIO.parse(_io.StringIO(text), "fasta")]
    assert list(readers._fasta_records("x", text)) == bio, repr(text)
  assert list(readers._fasta_records("x", "\n\n>a b\nAC GT\n\n>c\n")) == [("a", "ACGT"), ("c", "")]
