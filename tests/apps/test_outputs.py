"""Output paths through the CLI, for every verb that writes files: an existing directory, a file written beside
--output that would be a directory, two outputs that are one file, an output that is an input, a directory that
cannot be created - each refused with one line and exit code 2, before any work, with nothing written."""

import json
import os

import pytest
from conftest import write

from dnajax import cli
from dnajax.data import corpus


def _tree(root) -> dict[str, bytes | None]:
  """Every path under `root` -> its bytes (None for a directory)."""
  out = {}
  for d, dirs, files in os.walk(root):
    out.update({os.path.relpath(os.path.join(d, n), root): None for n in dirs})
    for n in files:
      with open(os.path.join(d, n), "rb") as f:
        out[os.path.relpath(os.path.join(d, n), root)] = f.read()
  return out


def _refused(capsys, argv, root, *needles):
  """Runs the CLI; asserts exit 2, one line `dnajax: error: ...` holding every needle, and `root` unchanged."""
  before = _tree(root)
  code = cli.main(argv)
  err = capsys.readouterr().err
  assert code == 2, err
  assert err.startswith("dnajax: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
  for needle in needles:
    assert needle in err, err
  assert _tree(root) == before


@pytest.fixture()
def files(tmp_path):
  """The inputs of every verb in `tmp_path/in` and a directory, a regular file and an output folder."""
  d = tmp_path / "in"
  d.mkdir()
  write(d / "masked.fa", ">r1\nACGTACGT?ACGTACGTAC\n")
  write(d / "proteins.fa", ">p1\nMKTAYIAKQR\n")
  write(d / "table.csv", "sequence\nACGTACGTAC\n")
  (tmp_path / "somedir").mkdir()
  write(tmp_path / "afile", "not a directory\n")
  return tmp_path


def _verbs(workdir, t):
  """verb -> argv without --output (each verb's own inputs)."""
  return {"predict": ["predict", "--workdir", workdir, "--input", str(t / "in" / "masked.fa")],
          "design": ["design", "--workdir", workdir, "--protein-fasta", str(t / "in" / "proteins.fa")],
          "generate": ["generate", "--workdir", workdir, "--length", "12", "--no-score"],
          "embed": ["embed", "--workdir", workdir, "--input", str(t / "in" / "table.csv")],
          "report": ["report", "--workdir", workdir]}


@pytest.mark.parametrize("verb", ["predict", "design", "generate", "embed", "report"])
def test_an_existing_directory_as_output(tiny_run, files, capsys, verb):
  argv = _verbs(tiny_run[0], files)[verb]
  _refused(capsys, argv + ["--output", str(files / "somedir")], files, f"--output {files / 'somedir'}: is a directory")


@pytest.mark.parametrize("verb, name", [("predict", "x.tsv"), ("design", "x.fasta"), ("generate", "x.fasta"),
                                        ("embed", "x.npz"), ("report", "x.md")])
def test_an_output_directory_that_cannot_be_created(tiny_run, files, capsys, verb, name):
  argv = _verbs(tiny_run[0], files)[verb]
  out = str(files / "afile" / "sub" / name)
  _refused(capsys, argv + ["--output", out], files, f"--output {out}: cannot create the directory",
           "is not a directory")


@pytest.mark.parametrize("verb, output, extra, beside", [
    ("predict", "blk.tsv", [], "blk.fasta"),
    ("design", "d.fasta", ["--report", "d.tsv"], "d.protein.fasta"),
    ("report", "r.md", [], "r_loss.png"),
])
def test_a_file_written_beside_output_that_is_a_directory(tiny_run, files, capsys, verb, output, extra, beside):
  """Nothing is written: not --output, not the other files (the check comes before the model is loaded)."""
  (files / beside).mkdir()
  argv = _verbs(tiny_run[0], files)[verb] + ["--output", str(files / output)]
  argv += [str(files / x) if x.endswith(".tsv") else x for x in extra]
  _refused(capsys, argv, files, f"{files / beside}: is a directory")


@pytest.mark.parametrize("verb, args, needle", [
    ("predict", ["--output", "same.fasta"],
     "--output and the filled FASTA (--output with its extension replaced by .fasta) are the same file"),
    ("design", ["--output", "x.out", "--report", "x.out"], "--output and --report are the same file"),
    ("design", ["--output", "x.fasta", "--report", "x.protein.fasta"],
     "the proteins FASTA beside --output and --report are the same file"),
    ("generate", ["--output", "x.out", "--report", "x.out"], "--output and --report are the same file"),
])
def test_two_outputs_that_are_one_file(tiny_run, files, capsys, verb, args, needle):
  argv = _verbs(tiny_run[0], files)[verb] + [str(files / a) if not a.startswith("--") else a for a in args]
  _refused(capsys, argv, files, needle)


@pytest.mark.parametrize("verb, output_of, needle", [
    ("predict", lambda t, w: t / "in" / "masked.fa", "is the input file (--input)"),
    ("design", lambda t, w: t / "in" / "proteins.fa", "is the input file (--protein-fasta)"),
    ("report", lambda t, w: os.path.join(w, "metrics.jsonl"), "is the input file (the run's metrics.jsonl)"),
])
def test_an_output_that_is_the_input(tiny_run, files, capsys, verb, output_of, needle):
  workdir = tiny_run[0]
  out = str(output_of(files, workdir))
  metrics = open(os.path.join(workdir, "metrics.jsonl"), "rb").read()
  _refused(capsys, _verbs(workdir, files)[verb] + ["--output", out], files, needle)
  assert open(os.path.join(workdir, "metrics.jsonl"), "rb").read() == metrics


def test_refused_before_the_model_is_loaded(files, capsys):
  """A workdir that does not exist is never reached: the output is refused first."""
  _refused(capsys, ["predict", "--workdir", str(files / "no_run"), "--input", str(files / "in" / "masked.fa"),
                    "--output", str(files / "somedir")], files, "is a directory")
  _refused(capsys, ["generate", "--workdir", str(files / "no_run"), "--length", "9", "--output", str(files / "g"),
                    "--report", str(files / "g")], files, "are the same file")


def test_fetch_output_is_one_line(files, capsys, monkeypatch):
  cache = files / "cache"
  (cache / "entrez").mkdir(parents=True)
  write(cache / "entrez" / "NC_CACHED.1.fasta", ">NC_CACHED.1\nACGTACGTACGT\n")  # a cache hit: no request
  monkeypatch.setenv("DNAJAX_CACHE", str(cache))
  _refused(capsys, ["fetch", "NC_CACHED.1", "--output", str(files / "somedir")], files, "is a directory")
  _refused(capsys, ["fetch", "NC_CACHED.1", "--output", str(files / "afile" / "x.fa")], files,
           "cannot create the directory")
  assert cli.main(["fetch", "NC_CACHED.1", "--output", str(files / "ok.fa")]) == 0
  assert (files / "ok.fa").read_text() == ">NC_CACHED.1\nACGTACGTACGT\n"


def test_bench_output_is_one_line(files, capsys, monkeypatch):
  from dnajax.apps import bench

  monkeypatch.setattr(bench, "worker", lambda *a: {"input_pipeline_ratio": 1.0})  # no measurement: only the write
  _refused(capsys, ["bench", "--config", "tiny", "--output", str(files / "somedir")], files, "is a directory")


@pytest.mark.filterwarnings("ignore:Attempting to parse malformed locus line")
def test_design_bench_without_held_out_genes_of_the_genbank_file(tmp_path, capsys):
  """A run whose corpus came from other data: one line naming the GenBank file and what to train; no --output."""
  from benchmarks import design_bench

  workdir = tmp_path / "run"
  (workdir / "corpus").mkdir(parents=True)
  segments = [{"name": "OTHER.1:b0001", "split": "val"}, {"name": "OTHER.1:b0002", "split": "train"}]
  write(workdir / "corpus" / "index.json", json.dumps({"segments": segments, "format_version": corpus.FORMAT_VERSION,
                                                      "total_bases": 1}))
  for name in ("tokens.u8", "softmask.u8"):
    write(workdir / "corpus" / name, "\0")
  seq = "ATG" + "GCT" * 120 + "TAA"
  body = "".join(f"{i + 1:>9} {seq[i:i + 60].lower()}\n" for i in range(0, len(seq), 60))
  genbank = write(tmp_path / "x.gb", f"LOCUS       {'TEST':<16}{len(seq):>11} bp    DNA     linear   BCT 01-JAN-2024\n"
                  "ACCESSION   TEST\nVERSION     TEST.1\nFEATURES             Location/Qualifiers\n"
                  f"     CDS             1..{len(seq)}\n                     /locus_tag=\"t1\"\nORIGIN\n{body}//\n")
  out = tmp_path / "bench.json"
  code = design_bench.main(["--workdir", str(workdir), "--genbank", genbank, "--proteins", "1", "--output", str(out)])
  err = capsys.readouterr().err
  assert code == 2 and err.count("\n") == 1 and err.startswith("design_bench: error: --genbank "), err
  assert "none of its genes are in the corpus of --workdir" in err and "dnajax train --config configs/cds.py" in err
  assert not out.exists()


@pytest.mark.parametrize("module", ["design_bench", "fuzz_inputs"])
def test_benchmark_help_is_whole_sentences(module, capsys, monkeypatch):
  import importlib

  monkeypatch.setenv("COLUMNS", "1000")  # argparse wraps at the terminal width, and splits words at hyphens
  m = importlib.import_module(f"benchmarks.{module}")
  with pytest.raises(SystemExit):
    m.main(["--help"])
  description = " ".join(capsys.readouterr().out.split("\n\n")[1].split())  # after the usage block
  assert description == " ".join(m.__doc__.split("\n\n")[0].split()) and description.endswith("."), description
