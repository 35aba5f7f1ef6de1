import gzip

import numpy as np
import pytest
from conftest import shared_file, write

from dnajax.data import readers, staging, tokens
from dnajax.data import text as text_lib
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


def _read_error(tmp_path, name, data) -> tuple[str, str]:
  """(the UserError message of reading a file holding `data`, the file's path)."""
  p = tmp_path / name
  p.write_bytes(data if isinstance(data, bytes) else data.encode())
  with pytest.raises(UserError) as e:
    readers.read_file(str(p))
  return str(e.value), str(p)


@pytest.mark.parametrize("name,content,needle", [
    ("protein.fa", ">p\nMKVLEFIQPLLAAG\n", "not an IUPAC nucleotide"),
    ("ambig.fa", ">p\nMKVRRSSWWKKMMDDHHVVACGT\n", "ambiguity"),
    ("empty.fa", "", "empty"),
    ("blank.fa", "\n\n  \n", "empty"),
    ("junk.fa", b"\x00\x01\x02\xff\xfe" * 100, "byte 0x00 at offset 0 is not a text character"),
    ("trunc.gb", GENBANK[:-4], "truncated"),
    ("noheader.fa", "ACGT\n", "not FASTA: the first non-blank line 'ACGT' does not start with '>'"),
    ("query.fa", ">q\nAC?T\n", "predict"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, name, content, needle):
  msg, path = _read_error(tmp_path, name, content)
  assert needle in msg and path in msg and "\n" not in msg


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
  assert staging.split_segments(rec, n_run=10, min_len=40) == [(0, 100), (112, 265)]
  assert staging.split_segments(rec, n_run=10, min_len=200) == []


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
    assert list(readers.fasta_records("x", text)) == bio, repr(text)
  assert list(readers.fasta_records("x", "\n\n>a b\nAC GT\n\n>c\n")) == [("a", "ACGT"), ("c", "")]


# ---------------------------------------------------------------------------- byte-order marks and what the bytes show
PLAIN = ">r1 desc\nACGTacgtNNACGTACGTAC\nRYUuACGTACGTACGTACGT\n>r2\nGGGCCC\n"
BOM_VARIANTS = {
    "utf8_bom.fa": b"\xef\xbb\xbf" + PLAIN.encode(),
    "utf8_bom_crlf.fa": b"\xef\xbb\xbf" + PLAIN.replace("\n", "\r\n").encode(),
    "utf8_bom.fa.gz": gzip.compress(b"\xef\xbb\xbf" + PLAIN.encode(), mtime=0),
    "utf16le.fa": "\ufeff".encode("utf-16-le") + PLAIN.encode("utf-16-le"),
    "utf16be.fa": "\ufeff".encode("utf-16-be") + PLAIN.encode("utf-16-be"),
    "utf32.fa": PLAIN.encode("utf-32"),  # with its byte-order mark
    "no_extension": b"\xef\xbb\xbf" + PLAIN.encode(),  # format sniffed from the first line, after the mark
    # two files saved with a mark, then concatenated: the second mark starts a line
    "concatenated.fa": b"\xef\xbb\xbf" + PLAIN[:PLAIN.index(">r2")].encode() + b"\xef\xbb\xbf>r2\nGGGCCC\n",
}


def _same_records(got, want):
  assert [r.name for r in got] == [r.name for r in want]
  for a, b in zip(got, want):
    assert (a.ids == b.ids).all() and (a.soft_masked == b.soft_masked).all()
    assert a.letters.tobytes() == b.letters.tobytes()


@pytest.mark.parametrize("name", sorted(BOM_VARIANTS))
def test_byte_order_marks_read_like_the_plain_file(tmp_path, name):
  want = readers.read_file(write(tmp_path / "plain.fa", PLAIN), keep_letters=True)
  p = tmp_path / name
  p.write_bytes(BOM_VARIANTS[name])
  _same_records(readers.read_file(str(p), keep_letters=True), want)
  assert text_lib.read_text(str(p)) == PLAIN


def test_genbank_with_byte_order_mark(tmp_path):
  want = readers.read_file(write(tmp_path / "plain.gb", GENBANK))
  for name, data in (("bom.gb", b"\xef\xbb\xbf" + GENBANK.encode()),
                     ("bom.gb.gz", gzip.compress(b"\xef\xbb\xbf" + GENBANK.encode())),
                     ("bom_utf16.gb", GENBANK.encode("utf-16")),
                     ("bom_sniffed", b"\xef\xbb\xbf" + GENBANK.encode())):
    p = tmp_path / name
    p.write_bytes(data)
    got = readers.read_file(str(p))
    assert [r.name for r in got] == [r.name for r in want] and (got[0].ids == want[0].ids).all(), name


def test_shared_bom_cases():
  import os

  from conftest import SHARED_DATA

  cases = os.path.join(os.path.dirname(SHARED_DATA), "cases")
  for name, n in (("bom.fa", 3000), ("bom_small.fa", 200)):
    path = os.path.join(cases, name)
    if not os.path.isfile(path):
      pytest.skip(f"{path} not present")
    recs = readers.read_file(path)
    assert len(recs) == 1 and len(recs[0].ids) == n


@pytest.mark.parametrize("name,data,needle", [
    ("png.fa", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "byte 0x89 at offset 0 is not a text character"),
    ("late_nul.fa", b">a\nACGT\x00ACGT\n", "byte 0x00 at offset 7 is not a text character"),
    ("x.fa.bz2", b"BZh91AY&SY" + bytes(range(256)) * 2, "bzip2-compressed"),
    ("x.fa.gz", gzip.compress(b">a\nAC\x01\x02\x03\x04GT\n" * 3, mtime=0),
     "(decompressed): not text: byte 0x01 at offset 5"),
    ("utf16_no_bom.fa", PLAIN.encode("utf-16-le"), "UTF-16 text without a byte-order mark"),
    ("bad_utf16.fa", b"\xff\xfe" + ">a\nACGT\n".encode("utf-16-le") + b"\x00", "UTF-16LE"),
    ("utf16_nul.fa", b"\xff\xfe" + ">a\n".encode("utf-16-le") + bytes(40), "UTF-16LE text (byte-order mark) holding "
     "character U+0000 at byte 8"),
    ("utf32_cut.fa", b"\xff\xfe\x00\x00" + ">a\n".encode("utf-32-le") + b"A\x00",
     "UTF-32LE byte-order mark but byte 16"),
    ("genbank_as_fasta.fa", GENBANK, "it starts with LOCUS, as GenBank does: pass --format genbank"),
    ("fasta_as_genbank.gb", PLAIN,
     "not GenBank: the first line '>r1 desc' does not start with LOCUS; it starts with '>'"),
    ("embl.fa", "ID   X56734; SV 1; linear; mRNA\nSQ   Sequence\n",
     "first non-blank line 'ID   X56734; SV 1; linear; mRNA'"),
    ("unknown", "@read1\nACGT\n+\nIIII\n",
     "the first line '@read1' starts with neither '>' (FASTA) nor LOCUS (GenBank)"),
    ("long_line.fa", "x" * 500 + "\n", "'" + "x" * 40 + "'..."),
    ("gap.fa", ">a\nAC-GT\n", "alignment gap"),
    ("accent.fa", ">a\nAC\u00e9GT\n", "position 2: character '\\xe9' is not an IUPAC"),
    ("one_bad_letter.fa", ">a\nACGTACGTACGTACGTACGTEACGT\n", "IUPAC nucleotide codes are ACGTU"),
])
def test_hints_say_what_the_bytes_show(tmp_path, name, data, needle):
  msg, path = _read_error(tmp_path, name, data)
  assert needle in msg and path in msg and "\n" not in msg, msg
  for guess in ("binary", "protein", "pass --format genbank if", "pass --format fasta if"):
    if guess not in needle:
      assert guess not in msg, msg


def test_non_ascii_is_never_a_query_position(tmp_path):
  p = tmp_path / "q.fa"
  p.write_bytes(b">q\n" + b"ACGT" * 100 + b"\xe9T\n")  # a stray Latin-1 byte: U+FFFD, never '?' (a query)
  with pytest.raises(UserError, match="position 400: character '.ufffd'.*not UTF-8"):
    readers.read_file(str(p), allow_query=True)
  assert (tokens.encode("AC\u00e9?") == [tokens.A, tokens.C, tokens.INVALID, tokens.MASK]).all()


def test_letters_kept_only_when_asked(tmp_path):
  p = write(tmp_path / "a.fa", ">a\nACgt\nU?RY\n" + "ACGT" * 10 + "\n")
  assert readers.read_file(p, allow_query=True)[0].letters is None
  rec = readers.read_files([p], allow_query=True, keep_letters=True)[0]
  assert rec.letters.dtype == np.uint8 and rec.letters.tobytes() == b"ACgtU?RY" + b"ACGT" * 10


def test_utf8_titles_kept(tmp_path):
  p = tmp_path / "t.fa"
  p.write_bytes(">s\u00e9q1 caf\u00e9\nACGT\n".encode())
  assert readers.read_file(str(p))[0].name == "s\u00e9q1"


def test_prepare_cli_reads_bom_files_like_plain_ones(tmp_path, capsys):
  from dnajax import cli

  plain = write(tmp_path / "plain.fa", PLAIN * 20)
  outs = {}
  for name, data in (("plain", None), ("bom.fa", b"\xef\xbb\xbf" + (PLAIN * 20).encode()),
                     ("bom.fa.gz", gzip.compress(b"\xef\xbb\xbf" + (PLAIN * 20).encode())),
                     ("utf16.fa", (PLAIN * 20).encode("utf-16"))):
    path = plain
    if data is not None:
      path = str(tmp_path / name)
      open(path, "wb").write(data)
    out = tmp_path / f"corpus_{name}"
    assert cli.main(["prepare", "--input", path, "--output", str(out), "--min-len", "4"]) == 0, capsys.readouterr()
    outs[name] = ((out / "tokens.u8").read_bytes(), (out / "softmask.u8").read_bytes())
  assert all(v == outs["plain"] for v in outs.values())


@pytest.mark.parametrize("name,data,needle", [
    ("junk.fa", b"\x00\x01\x02\xff\xfe" * 100, "not text: byte 0x00 at offset 0"),
    ("gb.fa", GENBANK, "it starts with LOCUS, as GenBank does"),
    ("head.fa", "NAME: sample 7\nACGT\n", "the first non-blank line 'NAME: sample 7' does not start with '>'"),
])
def test_prepare_cli_hints_are_one_line(tmp_path, capsys, name, data, needle):
  from dnajax import cli

  p = tmp_path / name
  p.write_bytes(data if isinstance(data, bytes) else data.encode())
  code = cli.main(["prepare", "--input", str(p), "--output", str(tmp_path / "c")])
  err = capsys.readouterr().err
  assert code == 2 and err.startswith("dnajax: error: ") and err.count("\n") == 1 and needle in err, err
  assert "Traceback" not in err and not (tmp_path / "c").exists()
