"""`dnajax predict` writes the user's letters back exactly: only the '?' change (issue 13)."""

import gzip
import os

import numpy as np
import pytest
from conftest import SHARED_DATA, write

from dnajax import cli
from dnajax.data import tokens

# A soft-masked DNA record ('?' first, after upper case, after lower case, a run of two after lower case) and an RNA
# record with U, the IUPAC codes R and Y, lower case and '?'.
SOFT = "?GGAACAATTCACCGTGTTC?TAAAAATATgacatcctctg??ctctctatcAGGTTTTTGG?ttcaaagcttgtag?"
RNA = "CCGUACUAAARCUUCAUUGUYAUUAUUUUUUGUGAUUUGAGUACAGUACAACC?CAUUAUuaua?uuuacauauuguUGUGCUUCAGAACUAAU?"
INPUT = f">softmasked_dna some description\n{SOFT[:40]}\n{SOFT[40:]}\n>rna_with_iupac\n{RNA}\n"


def _fasta(path):
  """{name: letters} of a FASTA file."""
  out = {}
  for block in open(path).read().split(">")[1:]:
    title, seq = block.split("\n", 1)
    out[title.split()[0]] = seq.replace("\n", "")
  return out


def _run(capsys, workdir, inp, out):
  code = cli.main(["predict", "--workdir", workdir, "--input", inp, "--output", out])
  captured = capsys.readouterr()
  assert code == 0, captured.err
  return open(out).read().splitlines(), _fasta(os.path.splitext(out)[0] + ".fasta")


def _check_filled(original: str, filled: str, predicted: dict[int, str]):
  """`filled` equals `original` except at '?', where it holds the predicted base in its record's conventions."""
  assert len(filled) == len(original) and "?" not in filled
  rna = "U" in original.upper() and "T" not in original.upper()
  for i, (a, b) in enumerate(zip(original, filled)):
    if a != "?":
      assert a == b, (i, a, b)
      continue
    base = predicted[i].replace("T", "U") if rna else predicted[i]
    j = i - 1
    while j >= 0 and original[j] == "?":  # a run of '?' shares the case of the letter before it
      j -= 1
    assert b == (base.lower() if j >= 0 and original[j].islower() else base), (i, b)


def test_predict_keeps_case_u_and_iupac_codes(tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  inp = write(tmp_path / "case.fa", INPUT)
  tsv, filled = _run(capsys, workdir, inp, str(tmp_path / "out" / "pred.tsv"))
  assert tsv[0] == "record\tposition\tA\tC\tG\tT\tpredicted"
  rows = [line.split("\t") for line in tsv[1:]]
  assert [(r[0], int(r[1])) for r in rows] == [("softmasked_dna", i) for i, c in enumerate(SOFT) if c == "?"] + \
      [("rna_with_iupac", i) for i, c in enumerate(RNA) if c == "?"]
  assert all(r[6] in "ACGT" for r in rows)  # the TSV stays in A/C/G/T
  for name, original in (("softmasked_dna", SOFT), ("rna_with_iupac", RNA)):
    _check_filled(original, filled[name], {int(r[1]): r[6] for r in rows if r[0] == name})
  assert filled["softmasked_dna"][0].isupper() and filled["softmasked_dna"][41:43].islower()
  assert "T" not in filled["rna_with_iupac"].upper() and filled["rna_with_iupac"][10] == "R"


def test_predict_reads_bom_and_gzip_input_like_plain(tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  want = _run(capsys, workdir, write(tmp_path / "plain.fa", INPUT), str(tmp_path / "plain.tsv"))
  for name, data in (("bom.fa", b"\xef\xbb\xbf" + INPUT.replace("\n", "\r\n").encode()),
                     ("bom.fa.gz", gzip.compress(b"\xef\xbb\xbf" + INPUT.encode())),
                     ("utf16.fa", INPUT.encode("utf-16"))):
    p = tmp_path / name
    p.write_bytes(data)
    assert _run(capsys, workdir, str(p), str(tmp_path / f"{name}.tsv")) == want, name


def test_predict_bad_input_is_one_line(tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  p = tmp_path / "png.fa"
  p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
  out = tmp_path / "o.tsv"
  assert cli.main(["predict", "--workdir", workdir, "--input", str(p), "--output", str(out)]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "byte 0x89 at offset 0 is not a text character" in err and "binary" not in err
  assert not out.exists() and not (tmp_path / "o.fasta").exists()


def test_fill_letters():
  def fill(letters, positions, bases):
    ids = [tokens.encode(b)[0] for b in bases]
    return tokens.fill_letters(np.frombuffer(letters, np.uint8), np.array(positions), np.array(ids)).decode()

  assert fill(b"?acg??T?", [0, 4, 5, 7], "GATC") == "GacgatTC"  # DNA: T stays T; case from the left
  assert fill(b"acgu??RY?", [4, 5, 8], "TTT") == "acguuuRYU"  # RNA: U; 'Y' on the left is upper case
  assert fill(b"ACGU?T", [4], "T") == "ACGUTT"  # U and T both present: T
  assert fill(b"AC", [], "") == "AC"


def test_shared_predict_case(tiny_run, tmp_path, capsys):
  path = os.path.join(os.path.dirname(SHARED_DATA), "cases", "predict_case.fa")
  if not os.path.isfile(path):
    pytest.skip(f"{path} not present")
  workdir, _ = tiny_run
  tsv, filled = _run(capsys, workdir, path, str(tmp_path / "case.tsv"))
  rows = [line.split("\t") for line in tsv[1:]]
  for name, original in _fasta(path).items():
    _check_filled(original, filled[name], {int(r[1]): r[6] for r in rows if r[0] == name})


def test_predict_names_a_bad_workdir_before_reading_the_input(tiny_run, tmp_path, capsys):
  from conftest import refused

  table = tmp_path / "t.csv"
  table.write_text("sequence,label\nACGT,1\n")
  line = refused(capsys, "predict", "--workdir", str(tmp_path / "nosuch"), "--input", str(table))
  assert "nosuch: does not exist" in line
  line = refused(capsys, "predict", "--workdir", str(table), "--input", str(table))
  assert "a file, not a run directory" in line
  line = refused(capsys, "predict", "--workdir", tiny_run[0], "--input", str(table))
  assert "a table;" in line and "pretraining run" in line and "dnajax finetune" in line
