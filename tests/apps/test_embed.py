"""`dnajax embed`: a table of sequences -> an .npz of hidden states (mean-pooled or per position), written whole at
exactly the path given; every bad input one line, exit code 2, nothing written."""

import gzip
import os
import re

import numpy as np
import pytest
from conftest import write

from dnajax import cli
from dnajax.data import tokens

RNG = np.random.default_rng(7)
SEQS = [tokens.decode(RNG.integers(tokens.A, tokens.T + 1, n)) for n in (30, 150, 64)]  # 150 > the 64-base window
CSV = "id,sequence,label\n" + "".join(f"s{i},{s},{i % 2}\n" for i, s in enumerate(SEQS))


def _embed(capsys, workdir, inp, out, *extra):
  code = cli.main(["embed", "--workdir", workdir, "--input", str(inp), "--output", str(out), *extra])
  err = capsys.readouterr().err
  assert code == 0, err
  with np.load(out) as z:
    return {k: z[k] for k in z.files}, err


def test_mean_and_per_position_archives(tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  inp = write(tmp_path / "t.csv", CSV)
  mean, err = _embed(capsys, workdir, inp, tmp_path / "out" / "mean.npz")
  assert sorted(mean) == ["checkpoint_step", "embeddings", "ids", "layer", "pool"]
  assert mean["embeddings"].shape == (3, 32) and mean["embeddings"].dtype == np.float32
  assert mean["ids"].tolist() == ["s0", "s1", "s2"] and mean["ids"].dtype.kind == "U"
  assert (mean["layer"].shape, int(mean["layer"]), str(mean["pool"]), int(mean["checkpoint_step"])) == \
      ((), -1, "mean", 60)
  assert err.strip().splitlines()[-1] == (f"wrote {tmp_path / 'out' / 'mean.npz'}: 3 embeddings (mean over "
                                          "positions), d_model 32, layer -1, checkpoint step 60")
  rows, err = _embed(capsys, workdir, inp, tmp_path / "rows.npz", "--pool", "none")
  assert rows["embeddings"].shape == (30 + 150 + 64, 32) and rows["embeddings"].dtype == np.float32
  assert rows["offsets"].tolist() == [0, 30, 180, 244] and rows["offsets"].dtype == np.int64
  assert str(rows["pool"]) == "none" and "244 position embeddings of 3 sequences" in err
  o = rows["offsets"]
  np.testing.assert_allclose(mean["embeddings"], [rows["embeddings"][o[i]:o[i + 1]].mean(0) for i in range(3)],
                             rtol=1e-5, atol=1e-5)
  block1, _ = _embed(capsys, workdir, inp, tmp_path / "l1.npz", "--layer", "1")
  assert int(block1["layer"]) == 1 and block1["embeddings"].shape == (3, 32)
  assert not np.allclose(block1["embeddings"], mean["embeddings"])
  assert sorted(os.listdir(tmp_path)) == ["l1.npz", "out", "rows.npz", "t.csv"]  # no temporary files left
  assert os.listdir(tmp_path / "out") == ["mean.npz"]


def test_formats_give_the_same_embeddings(tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  want, _ = _embed(capsys, workdir, write(tmp_path / "t.csv", CSV), tmp_path / "want.npz")
  fasta = "".join(f">s{i} label={i % 2}\n{s[:50]}\n{s[50:]}\n" for i, s in enumerate(SEQS))
  tsv = CSV.replace(",", "\t").replace("sequence", "Seq")
  no_id = "sequence\n" + "".join(f"{s.lower().replace('T', 'U').replace('t', 'u')}\n" for s in SEQS)
  for name, data, extra, ids in (
      ("t.fa.gz", gzip.compress(fasta.encode()), [], ["s0", "s1", "s2"]),
      ("t.tsv", tsv.encode(), ["--sequence-column", "SEQ"], ["s0", "s1", "s2"]),
      ("bom.csv", b"\xef\xbb\xbf" + CSV.replace("\n", "\r\n").encode(), [], ["s0", "s1", "s2"]),
      ("rna_no_id.csv.gz", gzip.compress(no_id.encode()), [], ["1", "2", "3"])):
    (tmp_path / name).write_bytes(data)
    got, _ = _embed(capsys, workdir, tmp_path / name, tmp_path / f"{name}.NPZ", *extra)  # exactly this name
    assert got["ids"].tolist() == ids, name
    np.testing.assert_allclose(got["embeddings"], want["embeddings"], rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("name,text,extra,message", [
    ("nocol.csv", "id,seq\na,ACGT\n", [], r"nocol\.csv: header line: no column 'sequence' \(columns: 'id', 'seq'\)"),
    ("protein.csv", "id,sequence\na,ACGT\nb,ACGTQQLLEE\n", [], r"protein\.csv: row 2 \(line 3\): record b: "
                                                              r"position 4: letter 'Q' is not an IUPAC nucleotide"),
    ("empty.csv", "", [], r"empty\.csv: file is empty"),
    ("ragged.csv", "sequence,label\nACGT,1\nACGT,1,2\n", [], r"ragged\.csv: row 2 \(line 3\): 3 fields where the "
                                                             r"header has 2"),
    ("ok.csv", "sequence\nACGT\n", ["--layer", "5"], r"--layer 5: this model has blocks 1\.\.2"),
    ("ok.csv", "sequence\nACGT\n", ["--output-name", "out.npy"], r"--output .*out\.npy: embed writes a NumPy \.npz"),
])
def test_bad_inputs_are_one_line_and_write_nothing(tiny_run, tmp_path, capsys, name, text, extra, message):
  workdir, _ = tiny_run
  inp = write(tmp_path / name, text)
  out = str(tmp_path / "out.npz")
  if extra[:1] == ["--output-name"]:
    out, extra = str(tmp_path / extra[1]), []
  code = cli.main(["embed", "--workdir", workdir, "--input", inp, "--output", out, *extra])
  err = capsys.readouterr().err
  assert code == 2 and err.startswith("dnajax: error: ") and len(err.strip().splitlines()) == 1, err
  assert re.search(message, err), err
  assert os.listdir(tmp_path) == [name]  # nothing written, no temporary file
