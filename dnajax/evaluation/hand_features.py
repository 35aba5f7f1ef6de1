"""Hand features of coding sequences next to a fine-tuned model's encoder (finetune.features): which training sets
get them, and their values.

The features are `expression.HEAD_FEATURE_NAMES` (CAI against the host, GC, GC3, 5' GC, rare-codon runs and the 5'
folding energy over several windows; `dnajax features` documents each). A fine-tuning reads them when every training
sequence is a complete coding sequence (`is_cds`) and finetune.features is auto, or always with features=expression:
boosted trees take them as extra input columns (`trees`), the gradient methods' head as a standardised vector next to
the pooled embedding (`heads.SequenceModel`).
"""

from __future__ import annotations

import numpy as np

from dnajax.bio import codons, expression
from dnajax.data import labels as labels_lib
from dnajax.data import tokens
from dnajax.errors import UserError

KINDS = ("auto", "none", "expression")
NAMES = expression.HEAD_FEATURE_NAMES
START_CODONS = ("ATG", "GTG", "TTG")  # the start codons of nearly all E. coli genes (and ATG of eukaryotes')


CDS_SHARE = 0.9  # finetune.features=auto: the share of training rows that must look like complete coding sequences


def is_cds(ids: np.ndarray, code: int = 11) -> bool:
  """Whether a sequence (token ids) looks like a complete coding sequence: A/C/G/T only, a whole number of codons, a
  start codon first and no stop codon before the last (genetic code `code`)."""
  from Bio.Seq import Seq

  if not has_codons(ids):
    return False
  dna = tokens.decode(ids)
  return dna[:3] in START_CODONS and "*" not in str(Seq(dna[:-3]).translate(table=code))


def has_codons(ids: np.ndarray) -> bool:
  """Whether a sequence (token ids) is a whole number of codons of A/C/G/T: what the features need to be computed."""
  try:
    expression.check_cds(tokens.decode(ids))
  except UserError:
    return False
  return True


def choose(kind: str, organism: str, train) -> str:
  """'expression' or 'none' from finetune.features `kind`. auto: expression when every training sequence of the table
  `train` is whole codons of A/C/G/T and at least CDS_SHARE (90%) of them look like complete coding sequences
  (`is_cds`; native gene sets hold a few genes with rare start codons such as E. coli's CTG-started b2496 or
  selenoprotein genes with an internal TGA). Raises UserError for expression with a sequence that is not a complete
  coding sequence (`is_cds`), or an unknown organism."""
  if kind == "none":
    return "none"
  code = codons.ORGANISMS[codons.check_organism(organism)][1]
  if kind == "expression":
    bad = next((i for i, s in enumerate(train.seqs) if not is_cds(s, code)), None)
    if bad is not None:
      raise UserError(f"--config.finetune.features=expression: {labels_lib.row_name(train, bad)} is not a coding "
                      f"sequence (A/C/G/T/U, a whole number of codons, a start codon {'/'.join(START_CODONS)} first, "
                      "no stop codon before the last); use features=none for other sequences")
    return "expression"
  if not all(has_codons(s) for s in train.seqs):
    return "none"
  share = np.mean([is_cds(s, code) for s in train.seqs]) if len(train.seqs) else 0.0
  return "expression" if share >= CDS_SHARE else "none"


def matrix(seqs, organism: str, names=None) -> np.ndarray:
  """float64[N, len(NAMES)]: the features of sequences (token ids), in order. Raises UserError naming (by `names`,
  else 'sequence K') the first that is not a coding sequence, or for an unknown organism."""
  out = np.zeros((len(seqs), len(NAMES)))
  for i, ids in enumerate(seqs):
    try:
      out[i] = expression.head_features(tokens.decode(ids), organism)
    except UserError as e:
      where = names[i] if names else f"sequence {i + 1}"
      raise UserError(f"{where}: {e}; this model reads coding-sequence features (finetune.features=expression): "
                      "give coding sequences") from None
  return out
