"""The inference engine: a trained encoder on this machine's devices, the one way apps use a model.

`Engine.from_workdir` reads a training run (config.json, the latest or a given checkpoint) and restores only its
parameters onto a mesh of the devices present now - data parallel by default, never the training run's mesh - so a
checkpoint trained on any mesh and device count is usable on a laptop (orbax reshards). Training validation builds
one from the parameters in memory, on the training mesh.

It serves, batched and padded (the last batch padded, never dropped) and gathered on every process:
  * `log_probs`: log p(A, C, G, T) at every position of fixed windows, float32[W, L, 4];
  * `sequence_log_probs`: the same for whole sequences of any length, through overlapping windows;
  * `pseudo_log_likelihood`: each base (or codon) masked in turn, log p(true base) per position;
  * `hidden_states`: the hidden states after any block (embeddings), float32[W, L, D];
  * `sequence_hidden_states` / `mean_hidden_states`: the same for whole sequences of any length, through
    overlapping windows, per position float32[len, D] or averaged over each sequence's positions float32[N, D].

Letters: W windows, B batch rows, L window length (the run's `data.seq_len`), D d_model.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.experimental import multihost_utils
from tqdm import tqdm

from dnajax import runtime, sharding
from dnajax.data import rundir, tokens, windows
from dnajax.errors import UserError
from dnajax.evaluation import metrics
from dnajax.model import encoder

SCORING_UNITS = {"base": 1, "codon": 3}
DATA_PARALLEL = {"data": -1, "fsdp": 1, "tensor": 1}
CHUNK_FLOATS = 1 << 26  # hidden-state floats held at once for whole sequences (256 MiB of float32), at least a batch
CHUNK_BATCHES = 16  # ... and at most this many batches per chunk (so a progress bar moves)


def _log_probs_step(params, inputs_BxL, *, graphdef):
  return metrics.base_log_probs(nnx.merge(graphdef, params)(inputs_BxL.astype(jnp.int32)))


def _hidden_step(params, inputs_BxL, *, graphdef, layer: int):
  return nnx.merge(graphdef, params).encode(inputs_BxL.astype(jnp.int32), layer).astype(jnp.float32)


class DeviceModel:
  """The core every model on the devices shares (the masked-LM `Engine` and the fine-tuned
  `finetuned.SequencePredictor` are its two front-ends): parameters placed on `mesh` with its logical-axis `rules`,
  functions jitted once over them (`jit`), a padded global batch run with each process passing its own rows and the
  output gathered on every process (`call`), and `bind` (the same compiled functions, other parameters).

  Attributes: params, mesh, rules, unit (rows of every batch are a multiple of it: the batch shards and processes)."""

  def __init__(self, params, mesh: jax.sharding.Mesh, rules):
    self.params, self.mesh, self.rules = params, mesh, rules
    self.unit = math.lcm(sharding.axis_size(mesh, rules.get("batch")), jax.process_count())

  def bind(self, params):
    """The same model (compiled functions shared) with other parameters of the same shapes and shardings."""
    out = copy.copy(self)
    out.params = params
    return out

  def jit(self, fn, in_shardings: tuple, out_ndim: int):
    """`fn(params, *inputs)` jitted with explicit shardings (logical-axis rules active while tracing); its output
    float[B, ...] of `out_ndim` dimensions sharded over the batch."""
    return jax.jit(sharding.traced_with_rules(fn, self.mesh, self.rules), in_shardings=in_shardings,
                   out_shardings=sharding.batch_sharding(self.mesh, out_ndim, self.rules))

  def call(self, fn, batch: Sequence[tuple[np.ndarray, jax.sharding.NamedSharding]]) -> np.ndarray:
    """`fn(params, *arrays)` on one padded global batch of (array [B, ...], its sharding) pairs, B a multiple of
    `unit`: this process passes its rows; the output float32 [B, ...] is gathered on every process."""
    rows = sharding.process_rows(len(batch[0][0]))
    args = [jax.make_array_from_process_local_data(sh, a[rows.start:rows.stop]) for a, sh in batch]
    return np.asarray(jax.device_get(multihost_utils.process_allgather(fn(self.params, *args), tiled=True)))


class Engine(DeviceModel):
  """A trained encoder with its parameters placed on `mesh` (a `DeviceModel`).

  Attributes: cfg (the run's config), model_config, mesh, params, step (checkpoint step or None), seq_len (window
  length L), batch_size (rows per forward pass, a multiple of the batch shards and processes).
  """

  def __init__(self, cfg, params, mesh: jax.sharding.Mesh, rules=None, step: int | None = None):
    super().__init__(params, mesh, rules if rules is not None else sharding.rules_from_config(cfg.mesh.rules))
    self.cfg, self.step = cfg, step
    self.model_config = encoder.config_from(cfg.model.to_dict())
    self.seq_len = int(cfg.data.seq_len)
    self.batch_size = -(-int(cfg.eval.batch) // self.unit) * self.unit
    self._graphdef, _ = encoder.model_graph(self.model_config)
    self._param_sh = jax.tree.map(lambda a: a.sharding,
                                  encoder.sharded_abstract_params(self.model_config, mesh, self.rules))
    self._in_sh = sharding.batch_sharding(mesh, 2, self.rules)
    self._log_probs = self._jit(functools.partial(_log_probs_step, graphdef=self._graphdef), 3)
    self._hidden = {}

  @classmethod
  def from_workdir(cls, workdir: str, step: int | None = None, mesh_sizes: dict | None = None) -> Engine:
    """The model of a training run: its config.json and the parameters of checkpoint `step` (default: the latest),
    on a mesh of the devices present (`mesh_sizes` {data, fsdp, tensor}; default all data parallel).

    Raises UserError for a directory that is not a training run, a missing step or an unreadable checkpoint."""
    cfg = rundir.pretraining(workdir)
    mcfg = encoder.config_from(cfg.model.to_dict())
    mesh = sharding.make_mesh(dict(mesh_sizes or DATA_PARALLEL))
    rules = sharding.rules_from_config(cfg.mesh.rules)
    ckpt = rundir.checkpointer(workdir, cfg)
    try:
      step = ckpt.resolve_step(step)
      params = ckpt.restore_params(step, encoder.sharded_abstract_params(mcfg, mesh, rules))
    finally:
      ckpt.close()
    return cls(cfg, params, mesh, rules, step)

  def _jit(self, fn, out_ndim: int):
    return self.jit(fn, (self._param_sh, self._in_sh), out_ndim)

  def fit_batch(self, n: int, floor: int = 8) -> int:
    """Rows per batch for `n` windows: `batch_size` halved while the half still holds them, stays a multiple of
    the batch shards and processes, and is at least `floor` (so only a few shapes compile)."""
    b = self.batch_size
    while b % 2 == 0 and n <= b // 2 and b // 2 >= floor and (b // 2) % self.unit == 0:
      b //= 2
    return b

  def _run(self, fn, inputs_WxL: np.ndarray, progress: bool, desc: str) -> np.ndarray:
    """`fn` over this process's rows of each padded global batch; outputs gathered, padding rows dropped."""
    W, L = inputs_WxL.shape
    b = self.fit_batch(W)
    n_batches = max(1, -(-W // b))
    padded = np.full((n_batches * b, L), tokens.PAD, np.uint8)
    padded[:W] = inputs_WxL
    out = [self.call(fn, [(padded[k * b:(k + 1) * b], self._in_sh)])
           for k in tqdm(range(n_batches), desc=desc, unit="batch", leave=False,
                         disable=not (progress and runtime.is_main() and n_batches > 1))]
    return np.concatenate(out)[:W]

  def log_probs(self, inputs_WxL: np.ndarray, progress: bool = False) -> np.ndarray:
    """log p(A, C, G, T) (renormalised over the four bases) at every position of every window, float32[W, L, 4].
    Inputs are token ids uint8[W, L] of the engine's window length or shorter (MASK where a base is hidden, PAD
    after the end)."""
    return self._run(self._log_probs, self._fit_length(inputs_WxL), progress, "predict")

  def hidden_states(self, inputs_WxL: np.ndarray, layer: int = -1, progress: bool = False) -> np.ndarray:
    """Hidden states float32[W, L, D] after `layer` blocks (0: token embedding, -1: final normalised output).

    Raises UserError for a layer the model does not have."""
    self.check_layer(layer)
    if layer not in self._hidden:
      self._hidden[layer] = self._jit(functools.partial(_hidden_step, graphdef=self._graphdef, layer=layer), 3)
    return self._run(self._hidden[layer], self._fit_length(inputs_WxL), progress, "embed")

  def _fit_length(self, inputs_WxL: np.ndarray) -> np.ndarray:
    W, L = inputs_WxL.shape
    if L > self.seq_len:
      raise ValueError(f"windows of {L} positions are longer than the model's {self.seq_len}")
    if L == self.seq_len:
      return inputs_WxL
    out = np.full((W, self.seq_len), tokens.PAD, np.uint8)
    out[:, :L] = inputs_WxL
    return out

  def sequence_log_probs(self, seqs: Sequence[np.ndarray], progress: bool = False) -> list[np.ndarray]:
    """log p(A, C, G, T) at every position of whole sequences (token ids, any length), float32[len, 4] each.

    Long sequences are covered by windows half a window apart; each position takes its prediction from the window
    in which it sits farthest from an edge (`windows.owned_columns`)."""
    L = self.seq_len
    w = windows.tile(seqs, [np.zeros(len(s), bool) for s in seqs], L, max(1, L // 2))
    logp = self.log_probs(w.ids, progress) if len(w.ids) else np.zeros((0, L, 4), np.float32)
    out = [np.zeros((len(s), 4), np.float32) for s in seqs]
    for j, owned in enumerate(windows.owned_columns(w, [len(s) for s in seqs], L)):
      cols = np.flatnonzero(owned)
      out[int(w.seq_index[j])][int(w.start[j]) + cols] = logp[j, cols]
    return out

  def check_layer(self, layer: int) -> None:
    """Raises UserError unless `layer` is one of this model's: -1 (final normalised output), 0 (token embedding)
    or a block 1..num_layers."""
    if not -1 <= layer <= self.model_config.num_layers:
      raise UserError(f"--layer {layer}: this model has blocks 1..{self.model_config.num_layers} (0: the token "
                      "embedding, -1: the final normalised output)")

  def sequence_hidden_states(self, seqs: Sequence[np.ndarray], layer: int = -1,
                             progress: bool = False) -> list[np.ndarray]:
    """Hidden states after `layer` (as `hidden_states`) at every position of whole sequences (token ids uint8, any
    length), float32[len, D] each, in input order.

    Long sequences are covered by windows half a window apart and each position takes its state from the window in
    which it sits farthest from an edge (as `sequence_log_probs`); padding never enters a sequence's states, so they
    do not depend on the other sequences or the batch size (beyond float rounding). Raises UserError for a layer the
    model does not have."""
    self.check_layer(layer)
    out = [np.zeros((len(s), self.model_config.d_model), np.float32) for s in seqs]
    for i, pos, states in self._window_states(seqs, layer, progress):
      out[i][pos] = states
    return out

  def mean_hidden_states(self, seqs: Sequence[np.ndarray], layer: int = -1, progress: bool = False) -> np.ndarray:
    """Mean over each sequence's positions of `sequence_hidden_states` (padding never included), float32[N, D];
    summed in float64 chunk by chunk, so a long input never holds all per-position states at once. An empty
    sequence (length 0) gives zeros. Raises UserError for a layer the model does not have."""
    self.check_layer(layer)
    sums = np.zeros((len(seqs), self.model_config.d_model), np.float64)
    for i, _, states in self._window_states(seqs, layer, progress):
      sums[i] += states.sum(axis=0, dtype=np.float64)
    return (sums / np.maximum([len(s) for s in seqs], 1)[:, None]).astype(np.float32)

  def _window_states(self, seqs: Sequence[np.ndarray], layer: int,
                     progress: bool) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(sequence index, positions int64[k], their states float32[k, D]) per overlapping window, each position once
    (from the window where it sits farthest from an edge); windows are run in chunks of at most `CHUNK_FLOATS`
    floats of output (whole batches, at most `CHUNK_BATCHES`)."""
    L, D = self.seq_len, self.model_config.d_model
    w = windows.tile(seqs, [np.zeros(len(s), bool) for s in seqs], L, max(1, L // 2))
    owned = windows.owned_columns(w, [len(s) for s in seqs], L)
    chunk = self.batch_size * max(1, min(CHUNK_BATCHES, CHUNK_FLOATS // (L * D * self.batch_size)))
    one = len(w.ids) <= chunk  # one chunk: the batches' own progress bar; several: one bar over all windows
    with tqdm(total=len(w.ids), desc="embed", unit="window", leave=False,
              disable=one or not (progress and runtime.is_main())) as bar:
      for a in range(0, len(w.ids), chunk):
        states = self.hidden_states(w.ids[a:a + chunk], layer, progress=one and progress)
        for j in range(a, min(a + chunk, len(w.ids))):
          cols = np.flatnonzero(owned[j])
          yield int(w.seq_index[j]), int(w.start[j]) + cols, states[j - a, cols]
        bar.update(len(states))

  def pseudo_log_likelihood(self, seq: np.ndarray, unit: str = "base", chunk_rows: int = 2048) -> np.ndarray:
    """log p(true base | the rest, its unit masked) at every position of one sequence (token ids), float64[len];
    NaN where not scored (N). Each base (`unit="base"`) or codon (its three bases together, `"codon"`) is masked in
    turn in a window of the model's length centred on it; the masked copies are batched. The pseudo-log-likelihood
    (Salazar et al. 2020, "Masked Language Model Scoring") is the sum over scored positions.

    Raises UserError for an unknown unit."""
    if unit not in SCORING_UNITS:
      raise UserError(f"--unit {unit!r}: use base or codon")
    out = np.full(len(seq), np.nan)
    rows = list(_scoring_rows(seq, self.seq_len, SCORING_UNITS[unit]))
    for c in range(0, len(rows), chunk_rows):
      part = rows[c:c + chunk_rows]
      inputs = np.full((len(part), self.seq_len), tokens.PAD, np.uint8)
      for r, (start, pos) in enumerate(part):
        window = seq[start:start + self.seq_len]
        inputs[r, :len(window)] = window
        inputs[r, pos - start] = tokens.MASK
      logp = self.log_probs(inputs)
      for r, (start, pos) in enumerate(part):
        out[pos] = logp[r, pos - start, seq[pos].astype(np.int64) - tokens.A]
    return out


def _scoring_rows(seq: np.ndarray, seq_len: int, width: int):
  """(window start, masked positions within the sequence) per scored unit; units holding no A/C/G/T are skipped."""
  n = len(seq)
  for a in range(0, n, width):
    pos = np.arange(a, min(a + width, n))
    pos = pos[(seq[pos] >= tokens.A) & (seq[pos] <= tokens.T)]
    if len(pos):
      start = int(np.clip(a + width // 2 - seq_len // 2, 0, max(0, n - seq_len)))
      yield start, pos
