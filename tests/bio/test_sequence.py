from Bio.Seq import Seq

from dnajax.bio import sequence


def test_restriction_sites_are_found_anywhere_on_either_strand():
  # Bio.Restriction's search drops a site whose cut falls outside a linear sequence (BsaI cuts 1/5 bases 3' of
  # GGTCTC); DNA Chisel, which makes the designs, avoids the site itself, and so does the re-check.
  for seq in ("A" * 20 + "GGTCTC", "GGTCTC" + "A" * 20, "GAGACC" + "A" * 20, "A" * 20 + "GAGACC", "GGTCTCA"):
    assert sequence.restriction_sites(seq, ("BsaI", "EcoRI")) == ["BsaI"], seq
    assert sequence.restriction_sites(str(Seq(seq).reverse_complement()), ("BsaI",)) == ["BsaI"]
  assert sequence.restriction_sites("AGAATTCA", ("EcoRI", "EcoRI")) == ["EcoRI"]
  assert sequence.restriction_sites("GCCAAAAAGGC", ("BglI",)) == ["BglI"]  # GCCNNNNNGGC: IUPAC codes expanded
  assert sequence.restriction_sites("A" * 30) == []


def test_gc_window_longer_than_the_sequence_is_the_sequence():
  assert sequence.gc_windows("ATGTAG", 50) == (1 / 3, 1 / 3) == sequence.gc_windows("ATGTAG", 6)
  assert sequence.gc_windows("GGAA", 2) == (0.0, 1.0)
  assert sequence.iupac_regex("GTRAGT") == "GT[AG]AGT"
