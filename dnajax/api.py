"""The Python API for evaluation scripts: `dnajax.open(run)` gives a trained model on this machine's devices with
the operations the verbs use, on strings and NumPy arrays.

    import dnajax
    lm = dnajax.open("ecoli-cds")                       # a shipped model's name, or a run directory
    lm.masked_log_probs("ATGAAA?CGT", [6])              # float32[1, 4]: log p(A, C, G, T) at position 6
    lm.pseudo_log_likelihood("ATGAAACGTTAA")            # float, nats (as `dnajax score`)
    lm.embed(["ATGAAACGT", "ATGCCC"])                   # float32[2, D], mean over positions (as `dnajax embed`)
    lm.score_variants("ref.fa", [("chr1", 1234, "A", "G")])  # float64[1] log-likelihood ratios (as `dnajax vep`)
    ft = dnajax.open("runs/ft")                         # a fine-tuning directory
    ft.predict(["ACGT...", "TTGA..."])                  # class probabilities or values (as `dnajax predict`)

Every method calls the functions the verbs call (`evaluation.engine.Engine`, `evaluation.vep.score_variants`,
`evaluation.finetuned`), so a script and the command line give the same numbers. Letters: A, C, G, T (U as T),
lower case allowed; '?' is the mask token; IUPAC ambiguity codes are N. Bad input raises `dnajax.errors.UserError`
with the one line the command line would print.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dnajax.data import genome, rundir, tokens
from dnajax.data.variants import Variant
from dnajax.errors import UserError
from dnajax.evaluation import finetuned, vep
from dnajax.evaluation.engine import Engine


def _ids(sequence: str, what: str = "sequence") -> np.ndarray:
  """uint8 token ids of letters; UserError for a non-string, an empty sequence, or naming the first character that
  is not a nucleotide letter or '?'."""
  if not isinstance(sequence, str):
    raise UserError(f"{what}: a {type(sequence).__name__}, not a string of nucleotide letters")
  if not sequence:
    raise UserError(f"{what}: empty; there is nothing to read")
  ids = tokens.encode(sequence)
  bad = np.flatnonzero(ids == tokens.INVALID)
  if len(bad):
    raise UserError(f"{what}: {sequence[bad[0]]!r} at position {bad[0]} is not a nucleotide letter (A, C, G, T, "
                    "U, IUPAC codes, or '?' for a mask)")
  return ids


def _many(sequences) -> list[np.ndarray]:
  """Token ids of a list of sequences (numbered from 1 in errors, as records are); UserError for one string."""
  if isinstance(sequences, str):
    raise UserError("sequences: one string; pass a list of sequences, e.g. [\"ACGT...\"]")
  return [_ids(s, f"sequence {i + 1}") for i, s in enumerate(sequences)]


class LanguageModel:
  """A pretrained masked-nucleotide model (a pretraining run, an imported run or a shipped model).

  Attributes: engine (the `Engine` the verbs use), config (the run's ConfigDict), step (checkpoint step),
  window (the model's window length in bases), d_model (embedding width)."""

  def __init__(self, engine: Engine):
    self.engine, self.config, self.step = engine, engine.cfg, engine.step
    self.window, self.d_model = engine.seq_len, engine.model_config.d_model

  def log_probs(self, sequence: str) -> np.ndarray:
    """log p(A, C, G, T) at every position of `sequence` (any length; '?' marks masked positions), float32[len, 4]
    (as `dnajax predict`: overlapping windows, each position read from the window where it sits farthest from an
    edge). At an unmasked position the model sees the base it predicts."""
    return self.engine.sequence_log_probs([_ids(sequence)])[0]

  def masked_log_probs(self, sequence: str, positions: Sequence[int]) -> np.ndarray:
    """log p(A, C, G, T) at `positions` (0-based) with all of them masked together, float32[len(positions), 4].
    Raises UserError for a position outside the sequence."""
    ids = _ids(sequence).copy()
    pos = np.asarray(positions)
    if pos.ndim != 1 or (len(pos) and pos.dtype.kind not in "iu"):
      raise UserError("positions: pass a list of integer positions (0-based)")
    pos = pos.astype(np.int64)
    if len(pos) and (pos.min() < 0 or pos.max() >= len(ids)):
      raise UserError(f"positions: {int(pos.min() if pos.min() < 0 else pos.max())} is outside the sequence "
                      f"(0..{len(ids) - 1})")
    ids[pos] = tokens.MASK
    return self.engine.sequence_log_probs([ids])[0][pos]

  def pseudo_log_likelihood(self, sequence: str, unit: str = "base", per_position: bool = False):
    """The pseudo-log-likelihood of `sequence` in nats (Salazar et al. 2020): each base (`unit="base"`) or codon
    (`"codon"`) masked in turn, log p(true base) summed, as `dnajax score`. With `per_position`, the float64[len]
    terms instead (NaN at N). Raises UserError for an unknown unit or a sequence with no A/C/G/T base."""
    lp = self.engine.pseudo_log_likelihood(_ids(sequence), unit)
    if per_position:
      return lp
    if np.isnan(lp).all():
      raise UserError("sequence: no A/C/G/T base to score")
    return float(np.nansum(lp))

  def embed(self, sequences: Sequence[str], layer: int = -1, pool: str = "mean"):
    """Hidden states after `layer` (-1: the final normalised output, 0: the token embedding, k: block k), as
    `dnajax embed`: with pool="mean" float32[N, D], the mean over each sequence's positions; with pool="none" a list
    of float32[len, D]. Raises UserError for a layer the model does not have or an unknown pool."""
    ids = _many(sequences)
    if pool == "mean":
      return self.engine.mean_hidden_states(ids, layer)
    if pool == "none":
      return self.engine.sequence_hidden_states(ids, layer)
    raise UserError(f"pool {pool!r}: use mean or none")

  def score_variants(self, reference: str, variants: Sequence[tuple[str, int, str, str]], window: int | None = None,
                     strands: str = "both") -> np.ndarray:
    """Zero-shot log-likelihood ratios log p(alt) - log p(ref) (natural log; negative: the ALT is less likely) of
    (chrom, 1-based position, REF, ALT) variants against the FASTA `reference`, as `dnajax vep`: float64[N], NaN
    where a variant was not scored (outside the reference, or its REF differs from the reference there). Raises
    UserError as `dnajax vep` does (a missing reference, a bad window or strands)."""
    items = []
    for i, v in enumerate(variants):
      if not (isinstance(v, (tuple, list)) and len(v) == 4 and isinstance(v[1], (int, np.integer))
              and all(isinstance(x, str) and x and set(x.upper()) <= set("ACGTN") for x in v[2:])):
        raise UserError(f"variant {i + 1}: {v!r}; pass (chrom, 1-based position, REF, ALT) with REF and ALT made of "
                        "A, C, G, T (N)")
      items.append(Variant(str(v[0]), int(v[1]), ".", v[2].upper(), v[3].upper(), i, 0))
    scores, _ = vep.score_variants(self.engine, genome.Reference(reference, progress=False), items, window, strands,
                                   progress=False)
    return np.array([np.nan if s is None or s.score is None else s.score for s in scores], np.float64)


class FineTunedModel:
  """A fine-tuned classifier or regressor (`dnajax finetune --output FT`), the seed that scored best on the
  validation rows unless another is asked for. Attributes: predictor (what `dnajax predict` uses), classes (the
  class labels, or None for regression)."""

  def __init__(self, predictor):
    self.predictor = predictor
    self.classes = list(predictor.coding.classes) if predictor.coding.task == "classification" else None

  def predict(self, sequences: Sequence[str]) -> np.ndarray:
    """Class probabilities float64[N, C] (columns in `classes` order) or values float64[N] in the training labels'
    units, as `dnajax predict`."""
    ids = _many(sequences)
    limit = getattr(self.predictor, "positions", 0)
    for i, x in enumerate(ids):
      if limit and len(x) > limit:
        raise UserError(f"sequence {i + 1}: {len(x)} bases; this model reads each position on its own and takes "
                        f"sequences of at most {limit} bases, the training length")
    if not ids:
      return np.zeros((0, len(self.classes)) if self.classes else (0,), np.float64)
    return self.predictor.predict(ids)


def open(model: str, step: int | None = None, seed: int | None = None) -> LanguageModel | FineTunedModel:  # noqa: A001
  """The model at `model` - a pretraining run directory, an imported run, the name of a shipped model (`dnajax
  models`) or a fine-tuning directory - on this machine's devices (data parallel). `step`: a pretraining run's
  checkpoint (default: the latest); `seed`: a fine-tuning's seed (default: the best). Raises UserError for a path
  that is none of these, or a checkpoint that cannot be read."""
  if rundir.kind(model) == rundir.FINETUNING:
    if step is not None:
      raise UserError(f"{model}: a fine-tuning directory; pass seed=, not step=")
    return FineTunedModel(finetuned.load(model, seed))
  if seed is not None:
    raise UserError(f"{model}: a pretrained model; seed= applies to fine-tuning directories")
  return LanguageModel(Engine.from_workdir(model, step))
