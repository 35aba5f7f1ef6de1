import numpy as np
from Bio.Seq import Seq
from Bio.SeqFeature import CompoundLocation, FeatureLocation, SeqFeature
from Bio.SeqRecord import SeqRecord

from dnajax.data import features, readers, tokens


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
  (r,) = readers.read_file(str(path))
  c = r.codon_position
  assert c[:9].tolist() == [1, 2, 3] * 3 and c[9:11].tolist() == [0, 0]
  assert c[11:20].tolist() == [3, 2, 1] * 3  # minus strand: the CDS starts at its right end
  assert c[22:27].tolist() == [1, 2, 3, 1, 2] and c[27:32].tolist() == [0] * 5 and c[32:36].tolist() == [3, 1, 2, 3]
  # The reading order recovers the protein: positions 1-2-3 of the minus-strand CDS read ATG AAA TAA.
  assert str(Seq(seq[11:20]).reverse_complement()) == "ATGAAATAA"
  fasta = tmp_path / "x.fa"
  fasta.write_text(">x\n" + seq + "\n")
  assert readers.read_file(str(fasta))[0].codon_position is None


def _genbank(name: str, seq: str, cds: list[str]) -> str:
  """A GenBank record with the given CDS feature blocks (location plus qualifier lines)."""
  feats = "".join(f"     CDS             {block}\n" for block in cds)
  body = "".join(f"{i + 1:>9} {seq[i:i + 60].lower()}\n" for i in range(0, len(seq), 60))
  return (f"LOCUS       {name:<16}{len(seq):>11} bp    DNA     linear   BCT 01-JAN-2024\n"
          f"ACCESSION   {name}\nVERSION     {name}.1\nFEATURES             Location/Qualifiers\n{feats}"
          f"ORIGIN\n{body}//\n")


def _records(tmp_path, text):
  from Bio import SeqIO

  path = tmp_path / "x.gb"
  path.write_text(text)
  return list(SeqIO.parse(str(path), "genbank"))


def test_every_kind_of_cds_location(tmp_path):
  """join, complement, fuzzy partial ends with /codon_start, a remote part, order(), a bad /codon_start, /pseudo."""
  rng = np.random.default_rng(0)
  seq = "".join(rng.choice(list("ACGT"), 240))
  seq = seq[:10] + "GATGAAACCC" + seq[20:]  # [10, 20): codon_start=2 puts ATG at 11
  cds = ['join(31..39,51..56)\n                     /locus_tag="j"',
         'complement(61..69)\n                     /locus_tag="c"',
         '<11..>24\n                     /locus_tag="p"\n                     /codon_start=2',
         'join(101..109,OTHER.1:8401..9400)\n                     /locus_tag="r"',
         'order(121..126,131..133)\n                     /locus_tag="o"',
         '141..149\n                     /locus_tag="b"\n                     /codon_start=4',
         '151..159\n                     /locus_tag="s"\n                     /pseudo',
         '161..170\n                     /locus_tag="n"']
  (rec,) = _records(tmp_path, _genbank("X1", seq, cds))
  counts = features.new_counts()
  pairs = {name.split(":")[1]: letters for name, letters in features.coding_sequences(rec, counts)}
  assert counts == {"kept": 3, "skipped_pseudo": 1, "skipped_remote_part": 1, "skipped_order": 1,
                    "skipped_out_of_range": 0, "skipped_bad_codon_start": 1, "skipped_not_multiple_of_3": 1,
                    "trimmed_partial_codon": 1}
  assert pairs["j"] == seq[30:39] + seq[50:56]
  assert pairs["c"] == str(Seq(seq[60:69]).reverse_complement())
  assert pairs["p"] == seq[11:23] and pairs["p"].startswith("ATGAAACCC")  # 11..24 from its 2nd base, 12 nt
  # Codon positions: the remote part's coordinates (8401..9400) are never placed in this record; the partial CDS
  # is labelled in its frame (base 10 is position 3 of a codon the record does not hold).
  c = features.codon_positions(rec, len(seq), features.new_counts())
  assert c[10:14].tolist() == [3, 1, 2, 3] and c[100:110].tolist() == [0] * 10 and c[120:134].sum() == 0
  assert c[30:39].tolist() == [1, 2, 3] * 3 and c[50:56].tolist() == [1, 2, 3] * 2
  assert c[60:69].tolist() == [3, 2, 1] * 3


def test_remote_parts_and_codon_start_through_the_commands(tiny_run, tmp_path, capsys):
  """evaluate counts no remote coordinates as coding and reports the skipped kinds; data.cds trains on in-frame
  sequences and records what it skipped in the corpus index; nothing ends in a traceback."""
  import json

  from dnajax import cli

  rng = np.random.default_rng(1)
  body = "".join(rng.choice(list("ACGT"), 600))
  genes = ["C" + "ATG" + "".join(rng.choice(["GCT", "AAA", "CTG", "GAA"], 60)) + "TAAG" for _ in range(6)]
  text = _genbank("R1", body, ['join(11..100,NC_9.1:8401..9400)\n                     /locus_tag="r"',
                               '201..290\n                     /locus_tag="k"'])
  text += "".join(_genbank(f"P{i}", g, [f'<1..>{len(g)}\n                     /locus_tag="g{i}"\n'
                                         "                     /codon_start=2"]) for i, g in enumerate(genes))
  gb = tmp_path / "cds.gb"
  gb.write_text(text)
  assert cli.main(["evaluate", "--workdir", tiny_run[0], "--input", str(gb), "--json", "--mask-rate", "0.5",
                   "--no-reverse-complement"]) == 0
  r = json.loads(capsys.readouterr().out)
  assert r["cds_features"]["skipped_remote_part"] == 1 and r["cds_features"]["kept"] == 7
  coding = sum(len(g) - 1 for g in genes) + 90  # every partial gene from its second base; R1's local CDS only
  assert abs(r["strata"]["coding"]["num_masked"] - 0.5 * coding) < 0.1 * coding
  fasta = tmp_path / "plain.fa"  # no annotation possible: beside the GenBank file it is in neither stratum
  fasta.write_text(">plain\n" + body + "\n")
  assert cli.main(["evaluate", "--workdir", tiny_run[0], "--input", str(gb), str(fasta), "--json", "--mask-rate",
                   "0.5", "--no-reverse-complement"]) == 0
  both = json.loads(capsys.readouterr().out)
  st, src = both["strata"], both["sources"]
  assert st["coding"]["num_masked"] + st["non_coding"]["num_masked"] == src["cds.gb"]["num_masked"]
  w = tmp_path / "w"
  assert cli.main(["train", "--config", "tiny", "--workdir", str(w), "--data", str(gb), "--no-progress",
                   "--config.data.cds=True", "--config.data.seq_len=48", "--config.data.min_len=30",
                   "--config.train.steps=2", "--config.train.eval_every=2", "--config.ckpt.every=2"]) == 0
  index = json.loads((w / "corpus" / "index.json").read_text())
  assert index["coding_sequences"]["skipped_remote_part"] == 1 and index["coding_sequences"]["kept"] == 7
  assert index["coding_sequences"]["trimmed_partial_codon"] == 6
  tokens_ = (w / "corpus" / "tokens.u8").read_bytes()
  starts = [s["offset"] for s in index["segments"] if s["name"].startswith("P") and s["start"] == 0]
  assert starts and all(tokens_[o:o + 3] == bytes([2, 5, 4]) for o in starts)  # A T G: in frame


def test_shared_cases_remote_join_and_codon_start_2():
  """The issue's files: a join() with a part in NC_005815.1 is left out (not read as this record's bases), and six
  partial CDS with /codon_start=2 give in-frame sequences (ATG first) with the trailing partial codon trimmed."""
  import os

  import pytest
  from conftest import SHARED_DATA

  cases = os.path.join(os.path.dirname(SHARED_DATA), "cases")
  if not os.path.isfile(os.path.join(cases, "remote_cds.gb")):
    pytest.skip("../shared/cases not present")
  (rec,) = readers.read_file(os.path.join(cases, "remote_cds.gb"))
  assert rec.cds_counts["skipped_remote_part"] == 1 and rec.cds_counts["kept"] == 9
  # No CDS of this record covers 8401..9400: nothing there is coding (the remote part's coordinates are another
  # record's), and the feature is left out whole (its local part 2925..3119 is not labelled either).
  assert not rec.codon_position[8400:9400].any() and not rec.codon_position[2924:3119].any()
  recs, counts = readers.read_coding_sequences([os.path.join(cases, "codon_start2.gb")])
  assert counts["kept"] == counts["trimmed_partial_codon"] == 6
  assert all(tokens.decode(r.ids[:3]) == "ATG" and len(r.ids) % 3 == 0 for r in recs)
