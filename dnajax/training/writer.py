"""The run's metrics: `metrics.jsonl` (one strict-JSON object per logging window or validation) and TensorBoard
scalars (tensorboardX), written by process 0 only.

Keys are namespaced tags, the same in both: `train/...` (the training objective and its masked accuracy on 80/10/10
inputs, gradient norm, learning rate, window length), `perf/...` (tokens/s, host RSS, device memory) and `val/...`
(the validation result, flattened: `val/loss`, `val/masked_accuracy`, `val/baselines/kmer_of_training_data/loss`,
...). Each line also carries `step` and `split` ("train" or "val").
"""

from __future__ import annotations

import numbers

import jax

from dnajax import runtime
from dnajax.data import rundir
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


def device_memory_gib() -> float | None:
  """Bytes in use on the first local device in GiB, where the backend reports it (not on CPU)."""
  try:
    stats = jax.local_devices()[0].memory_stats()
  except Exception:
    return None
  return stats.get("bytes_in_use") / 2**30 if stats and "bytes_in_use" in stats else None
