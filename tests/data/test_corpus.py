import numpy as np
import pytest

from dnajax.data import corpus, features, preparation, readers, tokens, windows
from dnajax.data import sampler as sampler_lib
from dnajax.errors import UserError


def _records(n, length, seed=0):
  rng = np.random.default_rng(seed)
  return [readers.Record(f"r{i}", rng.integers(tokens.A, tokens.T + 1, length).astype(np.uint8),
                    np.zeros(length, bool), "mem") for i in range(n)]


@pytest.mark.parametrize("n_records,mode", [(10, "records"), (2, "blocks")])
def test_split_has_no_overlap(tmp_path, n_records, mode):
  c = preparation.prepare(_records(n_records, 1000), str(tmp_path / "c"), corpus.SplitSettings(val_fraction=0.2))
  assert c.index["split_mode"] == mode
  spans = {"train": set(), "val": set()}
  for s in c.segments:
    for p in range(s["start"], s["start"] + s["length"]):
      spans[s["split"]].add((s["record"], p))
  assert spans["train"] and spans["val"] and not spans["train"] & spans["val"]
  if mode == "records":
    val_records = {s["record"] for s in c.split("val")}
    assert not val_records & {s["record"] for s in c.split("train")}
  # Windows come from one segment only, so no training window reaches a validation base.
  sampler = sampler_lib.WindowSampler(c, 64, seed=0)
  train_bases = np.concatenate([c.tokens[s["offset"]:s["offset"] + s["length"]] for s in c.split("train")])
  batch = sampler.rows(0, range(32))
  for row in batch["ids"]:
    assert row.tobytes() in train_bases.tobytes()


def test_prepare_refuses_a_different_corpus(tmp_path):
  out = str(tmp_path / "c")
  preparation.prepare(_records(6, 500), out, corpus.SplitSettings())
  preparation.prepare(_records(6, 500), out, corpus.SplitSettings())  # same: reused
  with pytest.raises(UserError, match="different corpus"):
    preparation.prepare(_records(6, 500, seed=1), out, corpus.SplitSettings())
  preparation.prepare(_records(6, 500, seed=1), out, corpus.SplitSettings(), force=True)


def test_rows_depend_on_seed_step_row_only(tmp_path):
  c = preparation.prepare(_records(6, 3000), str(tmp_path / "c"), corpus.SplitSettings())
  s = sampler_lib.WindowSampler(c, 128, seed=3, reverse_complement=True)
  whole = s.rows(5, range(8))["ids"]
  halves = [s.rows(5, range(0, 4))["ids"], s.rows(5, range(4, 8))["ids"]]  # two "processes"
  assert np.array_equal(whole, np.concatenate(halves)) and np.array_equal(whole[3:5], s.rows(5, [3, 4])["ids"])
  assert not np.array_equal(whole, s.rows(6, range(8))["ids"])
  # Each row is a window of the corpus, read forwards or (reverse complement) backwards.
  text = c.tokens[:].tobytes()
  forward = [row.tobytes() in text for row in whole]
  backward = [tokens.reverse_complement(row).tobytes() in text for row in whole]
  assert all(f or b for f, b in zip(forward, backward)) and any(forward) and any(backward)


def test_windows_with_too_many_n_are_drawn_again(tmp_path):
  clean = _records(4, 1000)
  n_rich = [readers.Record(f"n{i}", np.tile(np.array([tokens.N, tokens.N, tokens.A], np.uint8), 300),
                           np.zeros(900, bool), "mem") for i in range(2)]  # 2/3 N: refused at max_n_fraction 0.5
  c = preparation.prepare(clean + n_rich, str(tmp_path / "c"), corpus.SplitSettings(val_fraction=0.0))
  n_frac = (sampler_lib.WindowSampler(c, 64, seed=0).rows(0, range(64))["ids"] == tokens.N).mean(1)
  assert (n_frac <= 0.5).all()  # a third of the starts are N-rich: all ten tries land there for 1 row in 10^5
  anything = sampler_lib.WindowSampler(c, 64, seed=0, max_n_fraction=1.0).rows(0, range(64))["ids"]
  assert ((anything == tokens.N).mean(1) > 0.5).mean() > 0.15


def test_short_segments_are_padded(tmp_path):
  c = preparation.prepare(_records(5, 100), str(tmp_path / "c"), corpus.SplitSettings(min_len=50))
  rows = sampler_lib.WindowSampler(c, 256, seed=0, reverse_complement=True).rows(0, range(8))["ids"]
  assert (rows[:, 100:] == tokens.PAD).all() and (rows[:, :100] >= tokens.A).all()


def test_tile_covers_everything():
  seq = np.arange(1000) % 4 + tokens.A
  w = windows.tile([seq.astype(np.uint8)], [np.zeros(1000, bool)], 256, 128)
  covered = np.zeros(1000, bool)
  for start, row in zip(w.start, w.ids):
    n = min(256, 1000 - start)
    assert np.array_equal(row[:n], seq[start:start + n])
    covered[start:start + n] = True
  assert covered.all()


def test_codon_aligned_windows_start_on_codon_boundaries(tmp_path):
  recs = [readers.Record(f"cds{i}", np.tile(tokens.encode("ACG"), 100 + 7 * i), np.zeros(300 + 21 * i, bool), "mem")
          for i in range(6)]
  aligned = preparation.prepare(recs, str(tmp_path / "a"), corpus.SplitSettings(val_fraction=0.2),
                           extra={"codon_aligned": True})
  starts = {int(w[0]) for w in sampler_lib.WindowSampler(aligned, 30, seed=0).rows(0, range(64))["ids"]}
  assert starts == {tokens.A}
  plain = preparation.prepare(recs, str(tmp_path / "p"), corpus.SplitSettings(val_fraction=0.2))
  starts = {int(w[0]) for w in sampler_lib.WindowSampler(plain, 30, seed=0).rows(0, range(64))["ids"]}
  assert starts == {tokens.A, tokens.C, tokens.G}


def test_coding_sequences_from_genbank_and_fasta(tmp_path):
  gb = tmp_path / "x.gb"
  seq = "ATGAAATAA" + "CC" + "TTATTTCAT" + "GGGG" + "ATGCCCTGA"
  gb.write_text(f"""LOCUS       X1                        {len(seq)} bp    DNA     linear   UNK 01-JAN-2000
FEATURES             Location/Qualifiers
     CDS             1..9
                     /locus_tag="a"
     CDS             complement(12..20)
                     /locus_tag="b"
     CDS             25..33
                     /locus_tag="c"
                     /pseudo
     CDS             1..8
                     /locus_tag="d"
ORIGIN
        1 {seq.lower()}
//
""")
  recs, counts = readers.read_coding_sequences([str(gb)])
  assert [tokens.decode(r.ids) for r in recs] == ["ATGAAATAA", "ATGAAATAA"]
  assert [r.name for r in recs] == ["X1:a", "X1:b"]
  assert counts == {**features.new_counts(), "kept": 2, "skipped_pseudo": 1, "skipped_not_multiple_of_3": 1}
  fa = tmp_path / "x.fa"
  fa.write_text(">g1\nATGCCCTGA\n>g2\nATGCC\n")
  recs, counts = readers.read_coding_sequences([str(fa)])
  assert [r.name for r in recs] == ["g1"] and counts["skipped_not_multiple_of_3"] == 1
