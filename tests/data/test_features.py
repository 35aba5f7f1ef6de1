from Bio.Seq import Seq
from Bio.SeqFeature import CompoundLocation, FeatureLocation, SeqFeature
from Bio.SeqRecord import SeqRecord

from dnajax.data import readers


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
