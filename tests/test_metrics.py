import numpy as np
from Bio.Seq import Seq
from Bio.SeqFeature import CompoundLocation, FeatureLocation, SeqFeature
from Bio.SeqRecord import SeqRecord

from dnajax import io, metrics, tokens


def test_codon_positions_both_strands_and_joins(tmp_path):
  seq = "ATGAAATAA" + "CC" + "TTATTTCAT" + "GG" + "ATGCC" + "A" * 5 + "CTGA"  # fwd CDS, spacer, rev CDS, joined CDS
  rec = SeqRecord(Seq(seq), id="x", annotations={"molecule_type": "DNA"})
  rec.features = [SeqFeature(FeatureLocation(0, 9, strand=1), type="CDS"),
                  SeqFeature(FeatureLocation(11, 20, strand=-1), type="CDS"),
                  SeqFeature(CompoundLocation([FeatureLocation(22, 27, 1), FeatureLocation(32, 36, 1)]), type="CDS"),
                  SeqFeature(FeatureLocation(9, 11, 1), type="gene")]
  from Bio import SeqIO
  path = tmp_path / "x.gb"
  SeqIO.write([rec], str(path), "genbank")
  (r,) = io.read_file(str(path))
  c = r.codon_position
  assert c[:9].tolist() == [1, 2, 3] * 3 and c[9:11].tolist() == [0, 0]
  assert c[11:20].tolist() == [3, 2, 1] * 3  # minus strand: the CDS starts at its right end
  assert c[22:27].tolist() == [1, 2, 3, 1, 2] and c[27:32].tolist() == [0] * 5 and c[32:36].tolist() == [3, 1, 2, 3]
  # The reading order recovers the protein: positions 1-2-3 of the minus-strand CDS read ATG AAA TAA.
  assert str(Seq(seq[11:20]).reverse_complement()) == "ATGAAATAA"
  fasta = tmp_path / "x.fa"
  fasta.write_text(">x\n" + seq + "\n")
  assert io.read_file(str(fasta))[0].codon_position is None


def _probs(ids, rng):
  p = rng.random(ids.shape + (4,)).astype(np.float32)
  return p / p.sum(-1, keepdims=True)


def test_reverse_strand_mapping_round_trip():
  rng = np.random.default_rng(0)
  ids = rng.integers(tokens.A, tokens.T + 1, (3, 10)).astype(np.uint8)
  ids[2, 7:] = tokens.PAD
  ids[0, 4] = tokens.MASK
  rc = metrics.reverse_complement_windows(ids)
  assert rc[0, 5] == tokens.MASK and (rc[2, 7:] == tokens.PAD).all()
  assert tokens.decode(rc[2, :7]) == str(Seq(tokens.decode(ids[2, :7])).reverse_complement())
  np.testing.assert_array_equal(metrics.reverse_complement_windows(rc), ids)
  # A "model" that is exactly strand-symmetric: predicting on the reverse strand and mapping back gives the same
  # distribution at every position, so agreement is 1 and the distance 0.
  p = _probs(ids, rng)
  p_rc = metrics.from_reverse_strand(p, ids)  # what the symmetric model predicts on rc (the same map both ways)
  back = metrics.from_reverse_strand(p_rc, rc)
  real = ids != tokens.PAD
  np.testing.assert_allclose(back[real], p[real])
  targets = np.where(real, ids, tokens.PAD)
  weights = real.astype(np.float32)
  s = metrics.strand_consistency(p, back, targets, weights)
  assert s["agreement"] == 1.0 and s["mean_tv_distance"] < 1e-6
  # An unrelated reverse-strand prediction agrees about a quarter of the time.
  big = rng.integers(tokens.A, tokens.T + 1, (200, 50)).astype(np.uint8)
  s = metrics.strand_consistency(_probs(big, rng), _probs(big, rng), big, np.ones(big.shape, np.float32))
  assert 0.2 < s["agreement"] < 0.3


def test_position_report_and_strata():
  rng = np.random.default_rng(1)
  ids = rng.integers(tokens.A, tokens.T + 1, (4, 20)).astype(np.uint8)
  ids[0] = tokens.G  # one GC-rich window
  p = np.full(ids.shape + (4,), 0.1, np.float32)
  p[..., 1] = 0.7  # always predicts C (index 1)
  weights = np.ones(ids.shape, np.float32)
  weights[:, ::2] = 0
  nll, correct = metrics.position_scores(p, ids)
  codon = np.tile(np.array([0, 1, 2, 3], np.int8), 5)[None].repeat(4, 0)
  strata = {**metrics.gc_strata(ids), **metrics.codon_strata(codon)}
  r = metrics.position_report(nll, correct, ids, weights, strata)
  masked = weights > 0
  assert r["num_masked"] == 40
  assert np.isclose(r["masked_accuracy"], (ids[masked] == tokens.C).mean())
  assert r["per_base_accuracy"]["C"] == 1.0 and r["per_base_accuracy"]["A"] == 0.0
  assert np.isclose(r["loss"], np.where(ids[masked] == tokens.C, -np.log(0.7), -np.log(0.1)).mean())
  assert r["strata"]["gc_0.65-1.00"]["num_masked"] >= 10  # the all-G window
  assert sum(v["num_masked"] for k, v in r["strata"].items() if k.startswith("gc_")) == 40
  # Odd columns are masked: codon labels 1 and 3 only; positions 2 and non-coding (0) are never masked.
  assert set(r["strata"]) >= {"coding", "codon_position_1", "codon_position_3"}
  assert "codon_position_2" not in r["strata"] and "non_coding" not in r["strata"]
