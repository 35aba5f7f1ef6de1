import json

import numpy as np
from conftest import write

from dnajax import cli
from dnajax.data import tokens, windows
from dnajax.evaluation import baselines


def _masked(ids_WxL, rate=0.15, seed=0):
  return windows.eval_masks(ids_WxL, rate, seed)


def test_counts_for_one_base_each_side():
  m = baselines.KmerModel.fit([tokens.encode("ACGAC")], max_k=1)
  a, c, g = 0, 1, 2
  assert m.counts[(0, 0)].sum() == 5 and m.counts[(1, 1)].sum() == 3  # interior positions 1, 2, 3
  assert m.counts[(1, 1)][a * 4 + g, c] == 1 and m.counts[(1, 1)][c * 4 + a, g] == 1
  assert m.counts[(1, 0)].sum() == 4 and m.counts[(1, 0)][a, c] == 2  # left neighbour A -> C, twice


def test_periodic_sequence_is_learned_and_iid_is_not():
  periodic = tokens.encode("ACGTTGCAAG" * 500)
  m = baselines.KmerModel.fit([periodic], max_k=3)
  w = periodic[:2000].reshape(-1, 100)
  r = baselines.kmer_result(m, *_masked(w))
  assert r["masked_accuracy"] > 0.9  # misses only where both neighbours are masked
  rng = np.random.default_rng(0)
  iid = rng.integers(tokens.A, tokens.T + 1, 60_000).astype(np.uint8)
  m = baselines.select_and_fit([iid[:50_000]], 0.15, 100)
  r = baselines.kmer_result(m, *_masked(iid[50_000:].reshape(-1, 100)))
  assert abs(r["masked_accuracy"] - 0.25) < 0.03 and r["loss"] > np.log(4) - 0.01
  assert m.max_k <= 2 or m.min_count > 1  # held-out training data penalises long sparse contexts on i.i.d. data


def test_backoff_to_base_frequencies_when_context_is_masked():
  m = baselines.KmerModel.fit([tokens.encode("A" * 90 + "C" * 10)], max_k=2)
  probs = m.predict(np.full(5, tokens.MASK, np.uint8))
  np.testing.assert_allclose(probs[2], (np.array([90, 10, 0, 0]) + 0.5) / 102)


def test_baseline_cli(tmp_path, capsys):
  rng = np.random.default_rng(1)
  seqs = ["".join(rng.choice(list("AACGT"), 3000)) for _ in range(6)]
  train = write(tmp_path / "train.fa", "".join(f">r{i}\n{s}\n" for i, s in enumerate(seqs)))
  test = write(tmp_path / "test.fa", f">t\n{seqs[0][:1000]}\n")
  assert cli.main(["baseline", "--data", train, "--input", test, "--json"]) == 0
  r = json.loads(capsys.readouterr().out)
  b = r["baselines"]  # the baselines part of the one result schema (evaluate, validation, baseline)
  assert b["kmer_of_training_data"]["masked_accuracy"] > 0.3 and b["majority_base_of_training_data"]["base"] == "A"


def test_baseline_refuses_inputs_with_nothing_to_measure(tmp_path, capsys):
  """All N (or nothing masked) is one line and exit 2, not accuracy 0.0 / loss 0.0 or a table of dashes."""
  rng = np.random.default_rng(2)
  train = write(tmp_path / "train.fa", "".join(f">r{i}\n{''.join(rng.choice(list('ACGT'), 2000))}\n" for i in range(3)))
  only_n = write(tmp_path / "only_n.fa", ">n\n" + "N" * 4000 + "\n")
  few = write(tmp_path / "few.fa", ">f\nACG\n")
  for inp, needle in ((only_n, "no A/C/G/T base (only N)"), (few, "no A/C/G/T base was masked")):
    for extra in ([], ["--json"]):
      assert cli.main(["baseline", "--data", train, "--input", inp, *extra]) == 2
      out, err = capsys.readouterr()
      assert out == "" and len(err.strip().splitlines()) == 1 and needle in err, err
