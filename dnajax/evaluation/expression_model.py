"""A fine-tuned expression predictor as `dnajax design` uses it (`--expression-model FT`): the predicted expression of
coding sequences, and each design's codon distance to the nearest sequence the predictor was trained on.

A predictor learned from a few thousand variants is trustworthy only near them: optimising it drives designs into
codon combinations it never saw, where its output is an extrapolation (the "trust region" of model-guided design;
e.g. Biswas et al. 2021, Nat Methods 18:389, bound the number of mutations from the wild type for this reason). The
codon distance here counts the codons (3-nt positions) at which a design differs from a training sequence of the same
length, minimised over the training sequences; training sequences of another length are not comparable (no distance).
"""

from __future__ import annotations

import numpy as np

from dnajax.data import rundir, tokens
from dnajax.errors import UserError
from dnajax.evaluation import finetuned


class ExpressionModel:
  """A regression fine-tuning (`dnajax finetune --task regression`) applied to DNA strings.

  Attributes: workdir; predictor (`finetuned.load`); training (list of the training sequences, upper case, or None
  for a directory written before they were kept); positions (the longest sequence a position-wise model reads, 0 for
  no limit).

  Raises UserError (from `load`) for a directory that is not a fine-tuning or is a classification model."""

  def __init__(self, workdir: str, seed: int | None = None):
    info = rundir.read_info(workdir)
    if info.get("task") != "regression":
      raise UserError(f"--expression-model {workdir}: a {info.get('task', 'unknown')} model; give a fine-tuning made "
                      "with `dnajax finetune --task regression` on measured expression")
    self.workdir = workdir
    self.predictor = finetuned.load(workdir, seed)
    self.positions = int(self.predictor.positions or 0)
    self.training = rundir.read_training_sequences(workdir)
    self._codons: dict[int, np.ndarray] = {}  # codon count -> uint8[M, n] codon indices of the training sequences
    for s in self.training or []:
      if len(s) % 3 == 0 and set(s) <= set("ACGT"):
        self._codons.setdefault(len(s) // 3, []).append(_codon_indices(s))
    self._codons = {n: np.stack(rows) for n, rows in self._codons.items()}

  def check_length(self, what: str, n: int) -> None:
    """Raises UserError when a position-wise model cannot read a sequence of `n` nt (longer than its training)."""
    if self.positions and n > self.positions:
      raise UserError(f"{what}: {n} nt; the expression model {self.workdir} reads each position on its own and takes "
                      f"at most {self.positions} nt (its training length)")

  def predict(self, seqs: list[str], progress: bool = False) -> np.ndarray:
    """float64[N]: the predicted expression of DNA coding sequences (A/C/G/T), in the training labels' units."""
    if not seqs:
      return np.zeros(0)
    return np.asarray(self.predictor.predict([tokens.encode(s) for s in seqs], progress), np.float64)

  def has_training(self) -> bool:
    return self.training is not None

  def codon_distance(self, seq: str) -> int | None:
    """Codons at which `seq` differs from the nearest training sequence of its length; None when there is none (or
    the directory does not keep its training sequences)."""
    rows = self._codons.get(len(seq) // 3) if len(seq) % 3 == 0 else None
    if rows is None:
      return None
    return int((rows != _codon_indices(seq)[None]).sum(axis=1).min())

  def training_for(self, protein_cds_check) -> list[str]:
    """The training sequences for which `protein_cds_check(seq)` is true (e.g. that encode a given protein)."""
    return [s for s in self.training or [] if protein_cds_check(s)]


def _codon_indices(seq: str) -> np.ndarray:
  """uint8[len/3]: each codon of an A/C/G/T string as 0..63 (other letters as 64)."""
  ids = np.frombuffer(seq.encode(), np.uint8)
  lut = np.full(256, 64, np.int64)
  for i, b in enumerate(b"ACGT"):
    lut[b] = i
  x = lut[ids][: len(seq) // 3 * 3].reshape(-1, 3)
  bad = (x == 64).any(axis=1)
  out = (x[:, 0] * 16 + x[:, 1] * 4 + x[:, 2]).astype(np.uint8)
  out[bad] = 64
  return out
