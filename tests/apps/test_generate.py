import numpy as np
import pytest

from dnajax import cli
from dnajax.apps import generate
from dnajax.data import tokens


@pytest.mark.parametrize("masked,steps", [(10, 3), (7, 7), (100, 25), (5, 50), (1, 1)])
def test_cosine_schedule_fills_everything_at_least_one_per_step(masked, steps):
  counts = generate.unmask_counts(masked, steps)
  assert sum(counts) == masked and min(counts) >= 1 and len(counts) == min(steps, masked)
  if len(counts) > 2:
    assert counts[0] <= counts[-1]  # few while little is known


def test_unmasking_follows_confidence_and_keeps_the_prefix():
  # A fake model: position i predicts base i % 4 with a confidence rising along the sequence.
  length = 24
  conf = np.linspace(0.3, 0.99, length)

  def probs_fn(seqs):
    p = np.tile(((1 - conf) / 3)[:, None], (1, 4))
    p[np.arange(length), np.arange(length) % 4] = conf
    return [p] * len(seqs)

  start = np.full(length, tokens.MASK, np.uint8)
  start[:3] = tokens.encode("ATG")
  seqs, order = generate.iterative_unmask(probs_fn, [start, start], steps=7, temperature=0.0,
                                          rng=np.random.default_rng(0))
  for s, o in zip(seqs, order):
    assert tokens.decode(s[:3]) == "ATG" and (o[:3] == -1).all()
    assert tokens.decode(s[3:]) == "".join("ACGT"[i % 4] for i in range(3, length))  # argmax at temperature 0
    assert (np.diff(o[3:]) <= 0).all() and o[-1] == 0 and o[3] == 6  # most confident first, one step each end


def test_temperature_sampling_matches_the_tempered_distribution():
  rng = np.random.default_rng(0)
  p = np.tile([[0.1, 0.2, 0.3, 0.4]], (40000, 1))
  for t in (1.0, 0.5):
    choice, conf = generate.sample_bases(p, t, rng)
    q = p[0] ** (1 / t) / (p[0] ** (1 / t)).sum()
    np.testing.assert_allclose(np.bincount(choice, minlength=4) / len(p), q, atol=0.01)
    np.testing.assert_allclose(conf, q[choice])


def test_plausibility_report():
  seq = "CC" + "ATG" + "GCT" * 10 + "TAA" + "GG"  # one 12-codon ORF on the + strand, frame 2
  r = generate.plausibility(seq, 11, min_orf=12, shuffles=5)  # (the CTG at 6 opens an 11-codon one)
  assert r["longest_orf_codons"] == 12 and r["orfs_at_least_min"] == 1 and 0 <= r["longest_orf_shuffled_mean"]


def test_generate_command(tiny_run, tmp_path, capsys):
  workdir, _ = tiny_run
  out, report = tmp_path / "g.fasta", tmp_path / "g.tsv"
  argv = ["generate", "--workdir", workdir, "--length", "150", "--prefix", "ATGAAA", "--n", "3", "--steps", "12",
          "--seed", "3", "--output", str(out), "--report", str(report)]
  assert cli.main(argv) == 0
  recs = [r.splitlines() for r in out.read_text().split(">")[1:]]
  seqs = ["".join(r[1:]) for r in recs]
  assert len(seqs) == 3 and all(len(s) == 150 and s.startswith("ATGAAA") and set(s) <= set("ACGT") for s in seqs)
  assert len(set(seqs)) == 3  # sampled, not copies
  rows = [line.split("\t") for line in report.read_text().splitlines()]
  assert rows[0][:4] == ["name", "length", "prefix_length", "model_pll"] and len(rows) == 4
  for row in rows[1:]:
    r = dict(zip(rows[0], row))
    assert float(r["model_pll"]) < 0 and 0 < float(r["gc"]) < 1 and int(r["longest_orf_codons"]) >= 0
  first = out.read_text()
  assert cli.main(argv) == 0 and out.read_text() == first  # seeded
  assert cli.main(["generate", "--workdir", workdir, "--length", "60", "--temperature", "0", "--no-score"]) == 0
  cap = capsys.readouterr()
  assert cap.out.startswith(">generated1") and "model_pll" not in cap.err.splitlines()[-2]


@pytest.mark.parametrize("argv,needle", [
    (["--length", "0"], "--length"),
    (["--length", "10", "--prefix", "ATGXX"], "--prefix"),
    (["--length", "3", "--prefix", "ATGC"], "longer than --length"),
    (["--length", "10", "--n", "0"], "--n"),
    (["--length", "10", "--temperature", "-1"], "--temperature"),
    (["--length", "10", "--order-noise", "-1"], "--order-noise"),
    (["--length", "10", "--genetic-code", "99"], "--genetic-code"),
])
def test_generate_input_errors_are_one_line(tiny_run, capsys, argv, needle):
  workdir, _ = tiny_run
  assert cli.main(["generate", "--workdir", workdir, *argv]) == 2
  err = capsys.readouterr().err.strip()
  assert len(err.splitlines()) == 1 and needle in err


def test_generated_sequences_keep_the_prefix_letters(tiny_run, tmp_path):
  """An RNA or lowercase prefix is written back as given; the generated bases follow its case and alphabet."""
  out = tmp_path / "g.fa"
  assert cli.main(["generate", "--workdir", tiny_run[0], "--length", "40", "--prefix", "augc", "--steps", "4",
                   "--no-score", "--output", str(out)]) == 0
  seq = "".join(out.read_text().splitlines()[1:])
  assert seq.startswith("augc") and len(seq) == 40 and set(seq) <= set("acgu")
