"""`dnajax fetch` reads an answer as any user file is read (byte-order marks, UTF-16, line endings) and caches the
normalised text; the request itself is replaced (tests never reach the internet; test_fetch.py covers HTTP)."""

import pytest

from dnajax import cli
from dnajax.apps import fetch
from dnajax.data import readers

PLAIN = ">NC_TEST1 test record\nACGTACGTACGTNNACGTacgt\n"


@pytest.fixture
def answers(monkeypatch, tmp_path):
  monkeypatch.setenv("DNAJAX_CACHE", str(tmp_path / "cache"))
  table = {}
  monkeypatch.setattr(fetch, "_request", lambda accession, fmt, email: table[accession])
  return table


@pytest.mark.parametrize("name,data", [
    ("utf8_bom", b"\xef\xbb\xbf" + PLAIN.replace("\n", "\r\n").encode()),
    ("utf16_bom", PLAIN.encode("utf-16")),
])
def test_fetch_answer_with_byte_order_mark(answers, tmp_path, capsys, name, data):
  answers["NC_TEST1"], answers["NC_TEST2"] = data, PLAIN.replace("TEST1", "TEST2").encode()
  out = tmp_path / "x.fa"
  assert cli.main(["fetch", "NC_TEST1", "NC_TEST2", "--output", str(out)]) == 0, capsys.readouterr().err
  assert out.read_bytes() == (PLAIN + PLAIN.replace("TEST1", "TEST2")).encode()
  assert (tmp_path / "cache" / "entrez" / "NC_TEST1.fasta").read_bytes() == PLAIN.encode()
  assert [r.name for r in readers.read_file(str(out))] == ["NC_TEST1", "NC_TEST2"]
  assert cli.main(["fetch", "NC_TEST1", "--output", str(out)]) == 0  # from the cache, through read_text
  assert out.read_bytes() == PLAIN.encode() and "1 from the cache" in capsys.readouterr().out


def test_fetch_non_text_answer_is_one_line_and_not_cached(answers, tmp_path, capsys):
  answers["NC_BIN"] = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
  out = tmp_path / "x.fa"
  assert cli.main(["fetch", "NC_BIN", "--output", str(out)]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "fetch NC_BIN: the answer is not a fasta nucleotide record" in err
  assert "byte 0x89 at offset 0" in err and "binary" not in err
  assert not out.exists() and not list((tmp_path / "cache" / "entrez").iterdir())
