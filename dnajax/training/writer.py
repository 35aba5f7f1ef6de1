"""The run's metrics: `metrics.jsonl` (one strict-JSON object per logging window or validation) and TensorBoard
scalars (tensorboardX), written by process 0 only; `read_metrics` is the one reader of metrics.jsonl (`report`,
`sweep`).

Keys are namespaced tags, the same in both: `train/...` (the training objective and its masked accuracy on 80/10/10
inputs, gradient norm, learning rate, window length), `perf/...` (tokens/s, host RSS, device memory) and `val/...`
(the validation result, flattened: `val/loss`, `val/masked_accuracy`, `val/baselines/kmer_of_training_data/loss`,
...). Each line also carries `step` and `split` ("train" or "val").
"""

from __future__ import annotations

import json
import numbers
import os

import jax

from dnajax import runtime
from dnajax.data import rundir
from dnajax.errors import UserError
from dnajax.evaluation import render


class MetricsWriter:
  """Appends records to WORKDIR/metrics.jsonl and, when `tensorboard`, scalars to WORKDIR/tensorboard."""

  def __init__(self, workdir: str, tensorboard: bool):
    self.main = runtime.is_main()
    self.path = rundir.metrics_file(workdir)
    self.writer = None
    if self.main and tensorboard:
      from tensorboardX import SummaryWriter
      self.writer = SummaryWriter(rundir.tensorboard_dir(workdir))

  def write(self, step: int, split: str, values: dict) -> None:
    """One record: `values` maps tags to numbers (or strings, kept in the JSON only)."""
    if not self.main:
      return
    record = {"step": step, "split": split, **values}
    with open(self.path, "a") as f:
      f.write(render.to_json(record, indent=None) + "\n")
    if self.writer:
      for tag, v in values.items():
        if isinstance(v, numbers.Real) and not isinstance(v, bool) and render.number(v) != "-":
          self.writer.add_scalar(tag, v, step)
      self.writer.flush()

  def close(self) -> None:
    """Flush and close the TensorBoard writer."""
    if self.writer:
      self.writer.close()


def _upgrade(rec: dict) -> dict:
  """A record of a run trained before the namespaced tags (keys without `train/`, `val/`) in today's form."""
  split = rec.get("split")
  if any("/" in k for k in rec) or split not in ("train", "val"):
    return rec
  out = {"step": rec["step"], "split": split}
  for k, v in rec.items():
    if k in ("step", "split"):
      continue
    if split == "train":
      k = {"loss": "mlm_cross_entropy", "perplexity": "mlm_perplexity"}.get(k, k)
    if k == "baselines":
      v = {"uniform": v.get("uniform", 0.25), "kmer_of_training_data": v.get("kmer"),
           "majority_base_of_training_data": {"base": "?", "masked_accuracy": v.get("majority_base")}}
      v = {name: x for name, x in v.items() if x is not None}
    out.update(render.flatten({k: v}, split) if isinstance(v, dict) else {f"{split}/{k}": v})
  return out


def read_metrics(workdir: str) -> dict[str, list[dict]]:
  """{"train": [...], "val": [...]} records sorted by step; a step logged twice (a resumed run) keeps its last
  record. Raises UserError when the workdir has no readable metrics."""
  path = rundir.metrics_file(workdir)
  if not os.path.isfile(path):
    raise UserError(f"{workdir}: no {rundir.METRICS}; pass the --workdir of a training run")
  by_key: dict[tuple[str, int], dict] = {}
  with open(path) as f:
    for n, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        rec = _upgrade(json.loads(line))
        by_key[(rec["split"], int(rec["step"]))] = rec
      except (ValueError, KeyError, TypeError, AttributeError):
        if n == 1 or line.endswith("\n"):  # a torn last line is what a killed run leaves: skip it quietly
          raise UserError(f"{path}: line {n} is not a metrics record; is this a dnajax workdir?") from None
  out = {"train": [], "val": []}
  for (split, _), rec in sorted(by_key.items(), key=lambda kv: kv[0][1]):
    out.setdefault(split, []).append(rec)
  if not out["train"] and not out["val"]:
    raise UserError(f"{path}: no training records yet; run dnajax train first")
  return out


def device_memory_gib() -> float | None:
  """Bytes in use on the first local device in GiB, where the backend reports it (not on CPU)."""
  try:
    stats = jax.local_devices()[0].memory_stats()
  except Exception:
    return None
  return stats.get("bytes_in_use") / 2**30 if stats and "bytes_in_use" in stats else None
