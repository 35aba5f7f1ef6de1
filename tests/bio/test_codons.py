import pytest

from dnajax.bio import codons, sequence


def test_orfs_and_stops():
  seq = "CC" + "ATG" + "GCT" * 10 + "TAA" + "GG"  # one 12-codon ORF on the + strand, frame 2
  found = codons.orfs(seq, 11)
  assert (1, 2, 12) in found and max(n for _, _, n in found) == 12
  rc = "TTA" + "AGC" * 10 + "CAT"  # its reverse complement: the ORF is on the - strand
  assert (-1, 0, 12) in codons.orfs(rc, 11)
  assert codons.stops_per_100_codons("TAATAAGCT", 11)[0] == pytest.approx(200 / 3)
  assert (1, 0, 2) in codons.orfs("ATGTGAAAA", 11)  # ATG TGA: closed by the stop
  assert (1, 0, 3) in codons.orfs("ATGTGAAAA", 4)  # TGA is Trp in the mycoplasma code: open to the end


def test_sequence_statistics():
  assert sequence.gc_content("GGCA") == 0.75 and sequence.gc_content("") == 0.0
  assert sequence.gc_windows("GGGGAAAA", 4) == (0.0, 1.0) and sequence.gc_windows("GGA", 50) == (2 / 3, 2 / 3)
  assert sequence.longest_homopolymer("ACCCCGT") == 4 and sequence.longest_homopolymer("") == 0
  assert sequence.repeated_kmers("ACGTTT" + "ACGT", 4) == 1  # ACGT twice (it is its own reverse complement)
  assert sequence.restriction_sites("AAGGTCTC" + "A" * 12, ("BsaI", "EcoRI")) == ["BsaI"]


def test_codon_usage_and_cai():
  usage = codons.codon_usage("e_coli", 11)
  assert set(usage["*"]) == {"TAA", "TAG", "TGA"} and set(usage["M"]) == {"ATG"}
  best = "".join(max(usage[aa], key=usage[aa].get) for aa in "MKV*")
  assert codons.cai(best, usage) == pytest.approx(1.0)
  assert codons.varying_positions(usage["K"]) == [2] and codons.varying_positions(usage["L"]) == [0, 2]


def test_nucleotide_letters_given_as_a_protein():
  cds = "ATGAAACGCATTAGCACCACCATTACCACCACCATCACCATTACCACAGGTAACGGTGCGGGCTGA"
  assert codons.looks_like_nucleotides(cds) and codons.looks_like_nucleotides("AUGCCCGGUUAAG")
  assert codons.looks_like_nucleotides("ACGTACGTRYACGTACGTAC")  # a few IUPAC ambiguity codes
  assert not codons.looks_like_nucleotides("GATTACA")  # shorter than MIN_NUCLEOTIDE_LIKE_LENGTH: a peptide
  assert not codons.looks_like_nucleotides("MKTAYIAKQRQISFVKSHFSRQ")
  assert not codons.looks_like_nucleotides("ACGTACGTRYRYACGTAC")  # 78% plain nucleotide letters: a protein
