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
  """Letters -> uint8 ids (one per character); unknown letters, non-ASCII characters included, become INVALID
  (255), which callers must reject."""
  if isinstance(seq, str) and not seq.isascii():  # never '?' (MASK) for a character ASCII cannot hold
    codes = np.frombuffer(seq.encode("utf-32-le"), dtype=np.uint32)
    return np.where(codes < 128, ENCODE_TABLE[np.minimum(codes, 255)], INVALID).astype(np.uint8)
  raw = seq.encode("ascii") if isinstance(seq, str) else seq
  return ENCODE_TABLE[np.frombuffer(raw, dtype=np.uint8)]


def decode(ids: np.ndarray) -> str:
  """Token ids -> letters ('_' PAD, '?' MASK, A/C/G/T/N)."""
  return "".join(ID_TO_CHAR[np.asarray(ids, dtype=np.int64)])


def reverse_complement(ids: np.ndarray) -> np.ndarray:
  """Reverse complement along the last axis."""
  return COMPLEMENT[ids][..., ::-1]


def fill_letters(letters: np.ndarray, positions: np.ndarray, bases: np.ndarray) -> bytes:
  """A record's letters (uint8[L] bytes as in its file) with token ids `bases` (A/C/G/T, int[K]) written at
  `positions` (int[K], 0-based) and every other letter unchanged. A filled base takes the case of the nearest letter
  to its left that was not filled (upper case when there is none), and T is written U in a record that uses U and
  no T (RNA). Returns the bytes; raises nothing (positions must lie inside `letters`)."""
  out = np.array(letters, dtype=np.uint8, copy=True)
  positions = np.asarray(positions, dtype=np.int64)
  if not len(positions):
    return out.tobytes()
  filled = np.zeros(len(out), bool)
  filled[positions] = True
  upper = out & 0xDF
  rna = bool(np.any(~filled & (upper == ord("U")))) and not np.any(~filled & (upper == ord("T")))
  chars = np.frombuffer(("ACGU" if rna else BASES).encode(), dtype=np.uint8)[np.asarray(bases, np.int64) - A]
  # The nearest unfilled position at or left of each position (-1: none), so runs of filled bases share a case.
  left = np.maximum.accumulate(np.where(filled, -1, np.arange(len(out))))
  src = left[np.maximum(positions - 1, 0)]
  src[positions == 0] = -1
  lower = (src >= 0) & (out[np.maximum(src, 0)] >= ord("a")) & (out[np.maximum(src, 0)] <= ord("z"))
  out[positions] = np.where(lower, chars | 0x20, chars)
  return out.tobytes()
