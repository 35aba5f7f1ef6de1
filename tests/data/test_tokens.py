import numpy as np

from dnajax.data import tokens


def test_encode_decode_roundtrip_and_iupac():
  ids = tokens.encode("ACGTacgtUuRYN")
  assert tokens.decode(ids) == "ACGTACGTTTNNN"
  assert (tokens.encode("E") == tokens.INVALID).all()


def test_reverse_complement():
  ids = tokens.encode("AACGTN")
  assert tokens.decode(tokens.reverse_complement(ids)) == "NACGTT"
  assert np.array_equal(tokens.reverse_complement(tokens.reverse_complement(ids)), ids)
