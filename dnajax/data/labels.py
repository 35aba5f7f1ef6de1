"""Labels of a sequence table as model targets: class indices (classification) or standardised values (regression).

A `LabelCoding` is fitted on the training rows and saved with a fine-tuned model, so that validation, test and
`predict` map labels and outputs the same way: classes are the distinct training labels, as written (any strings),
ordered numerically when every one is a number and alphabetically otherwise; labels equal as numbers are one class
(`1` and `1.0`, a column that passed through a float type: said on stderr, the class named by its shortest spelling),
in every table. Regression targets are standardised with the training rows' mean and standard deviation, and
predictions are mapped back to the training file's units.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from dnajax.errors import UserError, warn

TASKS = ("classification", "regression")


def _number(text: str) -> float | None:
  try:
    x = float(text)
  except ValueError:
    return None
  return x if math.isfinite(x) else None


def _is_nan(label: str) -> bool:
  """True for a label that reads as NaN ('nan', 'NaN', ...: how pandas writes a missing value), which is no class."""
  return label.strip().lower().lstrip("+-") == "nan"


def _refuse_nan(table) -> None:
  """UserError naming the first row of `table` whose label reads as NaN (a missing label, as an empty cell is)."""
  for i, label in enumerate(table.labels):
    if _is_nan(label):
      raise UserError(f"{row_name(table, i)}: label {label!r} is missing (NaN is no class); fill in the label or drop "
                      "the row")


def _spellings(labels) -> dict[str, str]:
  """{label: the class it belongs to} for the distinct `labels`: labels equal as numbers share the class named by
  their shortest spelling (the first in sorted order on a tie); every other label is its own class."""
  by_number: dict[float, list[str]] = {}
  out = {}
  for label in sorted(set(labels)):
    x = _number(label)
    if x is None:
      out[label] = label
    else:
      by_number.setdefault(x, []).append(label)
  for same in by_number.values():
    name = min(same, key=len)
    out.update((label, name) for label in same)
  return out


def _say_merged(source: str, spelling: dict[str, str]) -> None:
  """One stderr line naming the labels of `source` read as the class of another spelling of their number (nothing
  when every label is its class as written)."""
  merged = {label: name for label, name in sorted(spelling.items()) if label != name}
  if merged:
    warn(f"{source}: labels equal as numbers are one class: "
         + ", ".join(f"{label!r} read as {name!r}" for label, name in merged.items())
         + " (the label column holds a number written two ways)")


def row_name(table, i: int) -> str:
  """Where row `i` (0-based) of a `tables.SequenceTable` is, for a message: 'FILE: record ID' (FASTA) or
  'FILE: row K (id ID)'."""
  if table.format == "fasta":
    return f"{table.source}: record {table.ids[i]}"
  return f"{table.source}: row {i + 1} (id {table.ids[i]})"


def check_positions(table, positions: int) -> None:
  """Raises UserError naming the first row of `table` (`tables.SequenceTable`) longer than the `positions` a
  position-wise head reads (no limit when `positions` is 0, a mean-pooled head)."""
  if not positions:
    return
  for i, s in enumerate(table.seqs):
    if len(s) > positions:
      raise UserError(f"{row_name(table, i)}: {len(s)} bases; this model reads each position on its own "
                      f"(finetune.pool=positions) and takes sequences of at most {positions} bases, the training "
                      "length; trim or drop the row, or fine-tune with --config.finetune.pool=mean")


@dataclasses.dataclass
class LabelCoding:
  """How labels become targets. task: 'classification' or 'regression'; classes: the class labels in output order
  (classification); mean, std: the training targets' mean and standard deviation (regression; std 1 when constant).
  """

  task: str
  classes: list[str] = dataclasses.field(default_factory=list)
  mean: float = 0.0
  std: float = 1.0

  @property
  def num_outputs(self) -> int:
    """Outputs of the model's head: one per class, or 1 (regression)."""
    return len(self.classes) if self.task == "classification" else 1

  @classmethod
  def fit(cls, task: str, table) -> LabelCoding:
    """The coding of the labelled training table `table` (`tables.SequenceTable`).

    Classes are the distinct labels, those equal as numbers taken as one (`targets` says so). Raises UserError for an
    unknown task, a classification label that reads as NaN (a missing label), fewer than two classes, regression
    targets that do not vary, or a regression label that is not a finite number (naming the row)."""
    if task not in TASKS:
      raise UserError(f"--task {task!r}: use classification or regression")
    if task == "classification":
      _refuse_nan(table)
      distinct = sorted(set(_spellings(table.labels).values()))
      numeric = [_number(c) for c in distinct]
      if all(x is not None for x in numeric):
        distinct = [c for _, c in sorted(zip(numeric, distinct))]
      if len(distinct) < 2:
        raise UserError(f"{table.source}: every training label is {distinct[0]!r}; a classifier needs at least two "
                        "classes (or pass --task regression)")
      return cls(task, distinct)
    y = cls(task).targets(table, standardise=False)
    if len(y) < 2 or float(y.std()) == 0:
      raise UserError(f"{table.source}: every training label is {float(y[0]):g}; a regressor needs targets that vary "
                      "(or pass --task classification)")
    return cls(task, mean=float(y.mean()), std=float(y.std()))

  def targets(self, table, standardise: bool = True) -> np.ndarray:
    """Class indices int32[N] or targets float32[N] (standardised unless `standardise` is False) of every row.

    A label equal as a number to a training class is that class (`1.0` is class `1`; said on stderr); `say_absent`
    names training classes with no row here. Raises UserError (naming file and row) for a class not seen in
    training, a label that reads as NaN (missing) or a label that is not a number."""
    out = []
    index = {c: k for k, c in enumerate(self.classes)}
    if self.task == "classification":
      _refuse_nan(table)
      by_number = {_number(c): c for c in self.classes if _number(c) is not None}
      spelling = {label: by_number[_number(label)] for label in set(table.labels) - index.keys()
                  if _number(label) in by_number}
      index.update((label, index[name]) for label, name in spelling.items())
    for i, label in enumerate(table.labels):
      if self.task == "classification":
        if label not in index:
          shown = ", ".join(map(repr, self.classes[:8])) + (", ..." if len(self.classes) > 8 else "")
          raise UserError(f"{row_name(table, i)}: label {label!r} is not one of the training classes ({shown}); "
                          "fix the label or drop the row")
        out.append(index[label])
      else:
        x = _number(label)
        if x is None:
          raise UserError(f"{row_name(table, i)}: label {label!r} is not a finite number; this is a regression "
                          "task, whose labels are numbers")
        out.append(x)
    if self.task == "classification":
      out = np.asarray(out, np.int32)  # every row checked: the warning below never precedes an error line
      _say_merged(table.source, spelling)
      return out
    y = np.asarray(out, np.float64)
    return ((y - self.mean) / self.std if standardise else y).astype(np.float32)

  def say_absent(self, source: str, targets: np.ndarray) -> None:
    """One stderr line when a class of the training rows has no row among `targets` (class indices, `targets`) of
    the table `source`: AUROC (one-vs-rest over every training class) has no value there, nor MCC when only one
    class has rows. Nothing for regression, an empty table, or a table with every class. Callers say it after their
    own refusals of the table (finetune refuses a validation table of one class on its own line)."""
    if self.task != "classification":
      return
    present = set(np.asarray(targets).tolist())
    absent = [c for k, c in enumerate(self.classes) if k not in present]
    if absent and present:
      warn(f"{source}: no row of training class{'es' if len(absent) > 1 else ''} {', '.join(map(repr, absent))} "
           f"({len(present)} of the {len(self.classes)} training classes have rows here); "
           + ("AUROC, one-vs-rest over every training class, has" if len(present) > 1 else
              "MCC and AUROC, which compare classes, have") + " no value over this table")

  def values(self, outputs_NxK: np.ndarray) -> np.ndarray:
    """Model outputs -> class probabilities float64[N, C] (softmax) or values float64[N] in the labels' units."""
    out = np.asarray(outputs_NxK, np.float64)
    if self.task == "regression":
      return out[:, 0] * self.std + self.mean
    out = np.exp(out - out.max(1, keepdims=True))
    return out / out.sum(1, keepdims=True)

  def to_dict(self) -> dict:
    """As saved in finetune.json."""
    return dataclasses.asdict(self)
