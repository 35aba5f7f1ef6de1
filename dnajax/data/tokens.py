"""The token vocabulary and NumPy encode/decode.

Ids are fixed: checkpoints and prepared corpora depend on them. The vocabulary is padded to 8 entries so the
embedding and output matrices have a friendly size; id 7 is reserved and never produced.
"""

import numpy as np

PAD, MASK, A, C, G, T, N = 0, 1, 2, 3, 4, 5, 6
VOCAB_SIZE = 8
BASES = "ACGT"
BASE_IDS = np.array([A, C, G, T], dtype=np.uint8)
ID_TO_CHAR = np.array(list("_?ACGTN."))

# IUPAC nucleotide codes; ambiguity codes map to N. U is read as T.
_IUPAC_AMBIGUOUS = "RYSWKMBDHVN"
ENCODE_TABLE = np.full(256, 255, dtype=np.uint8)  # 255 = not a nucleotide letter
for _ch, _id in (("A", A), ("C", C), ("G", G), ("T", T), ("U", T)):
  ENCODE_TABLE[ord(_ch)] = ENCODE_TABLE[ord(_ch.lower())] = _id
for _ch in _IUPAC_AMBIGUOUS:
  ENCODE_TABLE[ord(_ch)] = ENCODE_TABLE[ord(_ch.lower())] = N
ENCODE_TABLE[ord("?")] = MASK
INVALID = 255

# Complement in token space (PAD, MASK, N map to themselves).
COMPLEMENT = np.arange(VOCAB_SIZE, dtype=np.uint8)
COMPLEMENT[[A, C, G, T]] = [T, G, C, A]


def encode(seq: str | bytes) -> np.ndarray:
  """Letters -> uint8 ids; unknown letters become INVALID (255), which callers must reject."""
  raw = seq.encode("ascii", errors="replace") if isinstance(seq, str) else seq
  return ENCODE_TABLE[np.frombuffer(raw, dtype=np.uint8)]


def decode(ids: np.ndarray) -> str:
  """Token ids -> letters ('_' PAD, '?' MASK, A/C/G/T/N)."""
  return "".join(ID_TO_CHAR[np.asarray(ids, dtype=np.int64)])


def reverse_complement(ids: np.ndarray) -> np.ndarray:
  """Reverse complement along the last axis."""
  return COMPLEMENT[ids][..., ::-1]
