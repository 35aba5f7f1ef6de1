"""Training: state creation (abstract, sharded), the pure jitted steps, and the loop.

`train_step(state, batch) -> (state, metrics)` and `eval_step(params, batch) -> sums` are module-level pure
functions, jitted once with explicit shardings over the mesh; the state is donated. Metrics stay on the device and
are read every `log_every` steps, one step late, so the loop never waits on the device in between. The state is a
dict {step, params, opt_state} of arrays: what orbax saves, and what any mesh can restore.
"""

from __future__ import annotations

import concurrent.futures
import functools
import json
import logging
import math
import os
import shutil
import signal
import threading
import time

import jax
import jax.numpy as jnp
from jax.experimental import multihost_utils
import numpy as np
import optax
import psutil
from flax import nnx
from tqdm import tqdm

from dnajax import baselines, checkpoint, config as config_lib, corpus as corpus_lib, data, metrics, optim, runtime, \
    sharding, synthetic, tokens
from dnajax.errors import UserError
from dnajax.model import Encoder, ModelConfig, count_params

log = logging.getLogger("dnajax")


# ----------------------------------------------------------------------------------------------- Model and state
def model_config(cfg) -> ModelConfig:
  try:
    return ModelConfig(**cfg.model.to_dict())
  except (ValueError, TypeError) as e:
    raise UserError(f"config: {e}; fix --config.model.*") from None


def curriculum(cfg) -> list[tuple[int, int]]:
  """`data.curriculum` -> [(first step after the stage, window length)], the last stage ending at train.steps.

  "128:0.8" with seq_len 512 and 1000 steps -> [(800, 128), (1000, 512)]."""
  text, steps, final = str(cfg.data.curriculum).strip(), int(cfg.train.steps), int(cfg.data.seq_len)
  stages, last = [], 0.0
  for part in filter(None, (p.strip() for p in text.split(","))):
    try:
      length, frac = part.split(":")
      length, frac = int(length), float(frac)
    except ValueError:
      raise UserError(f"config: data.curriculum={text!r}: write LENGTH:FRACTION[,LENGTH:FRACTION...], "
                      "e.g. 128:0.8") from None
    if not (last < frac < 1.0) or not 0 < length <= final:
      raise UserError(f"config: data.curriculum={text!r}: fractions must rise within (0, 1) and lengths lie in "
                      f"1..data.seq_len={final}")
    stages.append((round(frac * steps), length))
    last = frac
  return [(end, length) for end, length in stages if end > 0] + [(steps, final)]


def seq_len_at(stages: list[tuple[int, int]], step: int) -> int:
  return next((length for end, length in stages if step < end), stages[-1][1])


def model_graph(mcfg: ModelConfig):
  """(graphdef, logical PartitionSpecs of the params) without allocating parameters."""
  abstract = nnx.eval_shape(lambda: Encoder(mcfg, nnx.Rngs(0)))
  graphdef, params = nnx.split(abstract, nnx.Param)
  return graphdef, nnx.to_pure_dict(nnx.get_partition_spec(params))


def create_state(mcfg: ModelConfig, tx: optax.GradientTransformation, seed: int) -> dict:
  model = Encoder(mcfg, nnx.Rngs(seed))
  params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  return {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params)}


def state_shardings(mcfg, tx, mesh, rules, seed: int = 0):
  """(abstract state, its NamedShardings): parameters by their logical axes, optimizer moments like their
  parameters, everything else replicated."""
  _, specs = model_graph(mcfg)
  abstract = jax.eval_shape(functools.partial(create_state, mcfg, tx, seed))
  param_sh = sharding.tree_shardings(specs, abstract["params"], mesh, rules)
  repl = sharding.replicated(mesh)
  opt_sh = optax.tree_map_params(tx, lambda _, s: s, abstract["opt_state"], param_sh,
                                 transform_non_params=lambda _: repl)
  shardings = {"step": repl, "params": param_sh, "opt_state": opt_sh}
  abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
  return abstract, shardings


# ---------------------------------------------------------------------------------------------------- Steps
def loss_and_sums(params, batch, key, *, graphdef, denom):
  logits_BxLxV = nnx.merge(graphdef, params)(batch["inputs"].astype(jnp.int32), key)
  targets_BxL = batch["targets"].astype(jnp.int32)
  w_BxL = batch["weights"].astype(jnp.float32)
  ce_BxL = optax.softmax_cross_entropy_with_integer_labels(logits_BxLxV, targets_BxL)
  loss_sum = (ce_BxL * w_BxL).sum()
  pred_BxL = jnp.argmax(logits_BxLxV[..., tokens.A:tokens.T + 1], -1) + tokens.A
  correct = ((pred_BxL == targets_BxL) * w_BxL).sum()
  return loss_sum / denom, (loss_sum, correct)


def train_step(state, batch, *, graphdef, tx, schedule, seed: int, dropout: float, grad_accum: int,
               skip_nonfinite: bool = False):
  step = state["step"]
  key = jax.random.fold_in(jax.random.key(seed), step) if dropout > 0 else None
  count = batch["weights"].astype(jnp.float32).sum()
  grad_fn = jax.grad(functools.partial(loss_and_sums, graphdef=graphdef, denom=jnp.maximum(count, 1.0)),
                     has_aux=True)
  if grad_accum == 1:
    grads, (loss_sum, correct) = grad_fn(state["params"], batch, key)
  else:
    micro = jax.tree.map(lambda x: x.reshape((grad_accum, -1) + x.shape[1:]), batch)

    def body(carry, inp):
      i, mb = inp
      k = None if key is None else jax.random.fold_in(key, i)
      g, (ls, c) = grad_fn(state["params"], mb, k)
      return jax.tree.map(jnp.add, carry, (g, ls, c)), None

    zeros = (jax.tree.map(jnp.zeros_like, state["params"]), jnp.zeros(()), jnp.zeros(()))
    (grads, loss_sum, correct), _ = jax.lax.scan(body, zeros, (jnp.arange(grad_accum), micro))
  updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
  params = optax.apply_updates(state["params"], updates)
  grad_norm = optax.tree.norm(grads)
  skipped = jnp.zeros((), jnp.bool_)
  if skip_nonfinite:  # keep the old params and moments; the step counter still advances (data stays in step)
    skipped = ~(jnp.isfinite(loss_sum) & jnp.isfinite(grad_norm))
    keep = lambda old, new: jnp.where(skipped, old, new)
    params = jax.tree.map(keep, state["params"], params)
    opt_state = jax.tree.map(keep, state["opt_state"], opt_state)
    loss_sum, correct, count = (jnp.where(skipped, 0.0, x) for x in (loss_sum, correct, count))
  out = {"step": step + 1, "params": params, "opt_state": opt_state}
  return out, {"loss_sum": loss_sum, "correct": correct, "count": count, "grad_norm": grad_norm,
               "lr": schedule(step), "skipped": skipped}


def eval_step(params, batch, *, graphdef):
  logits_BxLxV = nnx.merge(graphdef, params)(batch["inputs"].astype(jnp.int32))
  return metrics.eval_sums(logits_BxLxV, batch["targets"], batch["weights"], batch["strata"].astype(jnp.int32))


def predict_step(params, inputs_BxL, *, graphdef):
  """p(A, C, G, T) at every position, renormalised over the four bases, float32[B, L, 4]."""
  logits_BxLxV = nnx.merge(graphdef, params)(inputs_BxL.astype(jnp.int32))
  return jnp.exp(metrics.base_log_probs(logits_BxLxV))


# ---------------------------------------------------------------------------------------- Compiled functions
class Program:
  """The model, mesh and jitted functions for one config: everything train/evaluate/predict share."""

  def __init__(self, cfg, mesh=None):
    self.cfg = cfg
    self.mcfg = model_config(cfg)
    self.mesh = mesh if mesh is not None else sharding.make_mesh(cfg.mesh)
    self.rules = sharding.rules_from_config(cfg.mesh.rules)
    self._check_batch_sizes()
    self.curriculum = curriculum(cfg)
    if self.mcfg.pos_encoding == "learned" and cfg.data.seq_len > self.mcfg.max_len:
      raise UserError(f"config: data.seq_len={cfg.data.seq_len} exceeds model.max_len={self.mcfg.max_len}, the "
                      "longest learned position; raise model.max_len or use model.pos_encoding=rope")
    self.graphdef, _ = model_graph(self.mcfg)
    self.tx, self.schedule = optim.make_optimizer(cfg.opt, cfg.train.steps)
    self.abstract_state, self.state_sh = state_shardings(self.mcfg, self.tx, self.mesh, self.rules)
    self.batch_sh = sharding.batch_sharding(self.mesh, 2, self.rules)
    repl = sharding.replicated(self.mesh)

    def traced(fn, **static):
      return sharding.traced_with_rules(functools.partial(fn, **static), self.mesh, self.rules)

    self.init = jax.jit(functools.partial(create_state, self.mcfg, self.tx, cfg.train.seed),
                        out_shardings=self.state_sh)
    self.train_step = jax.jit(
        traced(train_step, graphdef=self.graphdef, tx=self.tx, schedule=self.schedule, seed=cfg.train.seed,
               dropout=self.mcfg.dropout, grad_accum=cfg.train.grad_accum,
               skip_nonfinite=bool(cfg.opt.skip_nonfinite)),
        in_shardings=(self.state_sh, self.batch_sh), out_shardings=(self.state_sh, repl), donate_argnums=0)
    self.eval_step = jax.jit(traced(eval_step, graphdef=self.graphdef),
                             in_shardings=(self.state_sh["params"], self.batch_sh), out_shardings=repl)
    self.predict_step = jax.jit(traced(predict_step, graphdef=self.graphdef),
                                in_shardings=(self.state_sh["params"], self.batch_sh),
                                out_shardings=sharding.batch_sharding(self.mesh, 3, self.rules))

  def _check_batch_sizes(self) -> None:
    """Batch sizes must split evenly over the batch mesh axes and the processes (checked before compiling)."""
    shards = sharding.axis_size(self.mesh, self.rules.get("batch"))
    cfg, n_proc = self.cfg, jax.process_count()
    if cfg.train.grad_accum < 1 or cfg.train.global_batch % cfg.train.grad_accum:
      raise UserError(f"train.global_batch={cfg.train.global_batch} is not divisible by "
                      f"train.grad_accum={cfg.train.grad_accum}")
    for name, size in (("train.global_batch / train.grad_accum", cfg.train.global_batch // cfg.train.grad_accum),
                       ("eval.batch", cfg.eval.batch)):
      if size % shards or size % n_proc:
        raise UserError(f"{name}={size} is not divisible by the {shards} batch shards "
                        f"(mesh axes {self.rules.get('batch')}) and {n_proc} processes; change the batch or the mesh")

  def to_global(self, local: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    return sharding.to_global(self.mesh, local, self.rules)

  def restore(self, ckpt: checkpoint.Checkpointer, step: int):
    return ckpt.restore(step, self.abstract_state)

  def _batches(self, arrays: dict[str, np.ndarray], fills: dict[str, int], batch_size: int, progress: bool,
               desc: str):
    """This process's rows of each global batch, as global arrays; the last batch is padded, never dropped."""
    W, L = next(iter(arrays.values())).shape
    n_batches = max(1, -(-W // batch_size))
    pad = n_batches * batch_size - W
    arrays = {k: np.concatenate([v, np.full((pad, L), fills[k], dtype=v.dtype)]) if pad else v
              for k, v in arrays.items()}
    rows = sharding.process_rows(batch_size)
    for b in tqdm(range(n_batches), desc=desc, unit="batch", leave=False,
                  disable=not (progress and runtime.is_main() and n_batches > 1)):
      yield self.to_global({k: v[b * batch_size + rows.start:b * batch_size + rows.stop] for k, v in arrays.items()})

  def evaluate(self, params, inputs, targets, weights, strata, batch_size: int,
               progress: bool = False) -> dict[str, np.ndarray]:
    """Sums over all windows (padding rows have weight 0)."""
    arrays = {"inputs": inputs, "targets": targets, "weights": weights.astype(np.float32),
              "strata": strata.astype(np.int32)}
    total = None
    for batch in self._batches(arrays, {"inputs": tokens.PAD, "targets": tokens.PAD, "weights": 0, "strata": 0},
                               batch_size, progress, "evaluate"):
      sums = self.eval_step(params, batch)
      total = sums if total is None else jax.tree.map(jnp.add, total, sums)
    return jax.device_get(total)

  def fit_batch(self, n: int, batch_size: int, floor: int = 8) -> int:
    """Rows per prediction batch for `n` windows: `batch_size` halved while the half still holds them, stays
    divisible by the batch axes' devices and the processes, and is at least `floor` (so a few shapes compile)."""
    unit = math.lcm(self.mesh.shape.get("data", 1) * self.mesh.shape.get("fsdp", 1), jax.process_count())
    b = batch_size
    while b % 2 == 0 and n <= b // 2 and b // 2 >= floor and (b // 2) % unit == 0:
      b //= 2
    return b

  def predict_windows(self, params, inputs, batch_size: int, progress: bool = False) -> np.ndarray:
    """p(A, C, G, T) at every position of every window, float32[W, L, 4], gathered on every process."""
    out = []
    batch_size = self.fit_batch(len(inputs), batch_size)
    for batch in self._batches({"x": inputs}, {"x": tokens.PAD}, batch_size, progress, "predict"):
      probs = self.predict_step(params, batch["x"])
      out.append(np.asarray(jax.device_get(multihost_utils.process_allgather(probs, tiled=True))))
    return np.concatenate(out)[:len(inputs)]


# -------------------------------------------------------------------------------------------- Dry run (AOT)
def model_flops_per_step(mcfg: ModelConfig, n_params: int, batch: int, seq_len: int) -> float:
  """Training FLOPs: 6 per parameter per token, plus attention's two L x L matmuls (x3 for the backward)."""
  tokens_ = batch * seq_len
  attention = 3 * 2 * 2 * mcfg.num_layers * batch * seq_len * seq_len * mcfg.d_model
  return 6.0 * n_params * tokens_ + attention


def dry_run(cfg) -> dict:
  """Compile the train step for the configured mesh without training; report size, FLOPs and memory."""
  program = Program(cfg)
  B, L = cfg.train.global_batch, cfg.data.seq_len
  batch = {k: jax.ShapeDtypeStruct((B, L), dt, sharding=program.batch_sh)
           for k, dt in (("inputs", jnp.uint8), ("targets", jnp.uint8), ("weights", jnp.float32))}
  t0 = time.time()
  compiled = program.train_step.lower(program.abstract_state, batch).compile()
  compile_s = time.time() - t0
  n_params = count_params(program.abstract_state["params"])
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  out = {"devices": int(program.mesh.devices.size), "mesh": {k: int(v) for k, v in program.mesh.shape.items()},
         "parameters": n_params, "tokens_per_step": B * L,
         "model_flops_per_step": model_flops_per_step(program.mcfg, n_params, B, L),
         "xla_flops_per_device_step": float(cost.get("flops", float("nan"))) if cost else None,
         "compile_seconds": compile_s}
  mem = compiled.memory_analysis()
  if mem is not None:
    fields = ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes", "temp_size_in_bytes",
              "generated_code_size_in_bytes")
    m = {f: int(getattr(mem, f, 0) or 0) for f in fields}
    m["peak_estimate_bytes"] = (m["argument_size_in_bytes"] + m["output_size_in_bytes"] - m["alias_size_in_bytes"]
                                + m["temp_size_in_bytes"])
    out["memory_per_device"] = m
  return out


def describe_dry_run(r: dict) -> str:
  lines = [f"mesh {r['mesh']} on {r['devices']} devices; {r['parameters']:,} parameters; "
           f"{r['tokens_per_step']:,} tokens per step; compiled in {r['compile_seconds']:.1f} s",
           f"FLOPs per step: model {r['model_flops_per_step']:.3e} (6*N*tokens + attention)"
           + (f", XLA per device {r['xla_flops_per_device_step']:.3e}" if r.get("xla_flops_per_device_step") else "")]
  m = r.get("memory_per_device")
  if m:
    gib = lambda b: f"{b / 2**30:.3f} GiB"
    lines.append(f"memory per device: arguments {gib(m['argument_size_in_bytes'])}, outputs "
                 f"{gib(m['output_size_in_bytes'])} (aliased {gib(m['alias_size_in_bytes'])}), temporaries "
                 f"{gib(m['temp_size_in_bytes'])}; peak estimate {gib(m['peak_estimate_bytes'])}")
  return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ Validation
class Validation:
  """Fixed validation windows and masks, with the baselines and (for synthetic data) the Bayes limit."""

  def __init__(self, cfg, corpus: corpus_lib.Corpus):
    w = corpus_lib.split_windows(corpus, "val", cfg.data.seq_len, cfg.eval.max_windows)
    if not len(w.ids):
      raise UserError(f"{corpus.path}: the validation split is empty; raise data.val_fraction or add records")
    self.inputs, self.targets, self.weights = corpus_lib.eval_masks(w.ids, cfg.eval.mask_rate, cfg.eval.seed)
    self.strata = w.soft.astype(np.int32)
    self.soft_masked = bool(w.soft.any())
    kmer = baselines.select_and_fit(baselines.train_sequences(corpus), cfg.eval.mask_rate, cfg.data.seq_len,
                                    cfg.eval.seed)
    self.baselines = {"uniform": 0.25,
                      "majority_base": metrics.majority_base_accuracy(corpus.base_counts("train"), self.targets,
                                                                      self.weights)["masked_accuracy"],
                      "kmer": baselines.kmer_report(kmer, self.inputs, self.targets, self.weights)}
    self.bayes = None
    if corpus.synthetic:
      s = synthetic.bayes_sums(synthetic.get_hmm(corpus.synthetic), self.inputs, self.targets, self.weights)
      self.bayes = {"masked_accuracy": s["correct"] / s["count"], "loss": s["nll"] / s["count"]}

  def run(self, program: Program, params) -> dict:
    sums = program.evaluate(params, self.inputs, self.targets, self.weights, self.strata, program.cfg.eval.batch)
    out = metrics.report(sums, self.soft_masked)
    out["baselines"] = dict(self.baselines)
    if self.bayes:
      out["bayes"] = dict(self.bayes)
      out["fraction_of_bayes"] = out["masked_accuracy"] / self.bayes["masked_accuracy"]
      out["excess_loss"] = out["loss"] - self.bayes["loss"]
    return out


def describe_eval(m: dict) -> str:
  s = f"masked_accuracy {m['masked_accuracy']:.4f}, loss {m['loss']:.4f} nats"
  if "bayes" in m:
    s += (f" | Bayes-optimal {m['bayes']['masked_accuracy']:.4f} ({100 * m['fraction_of_bayes']:.1f}% of it), "
          f"Bayes loss {m['bayes']['loss']:.4f}")
  k = m["baselines"]["kmer"]
  s += (f" | k-mer context model {k['masked_accuracy']:.4f} (loss {k['loss']:.4f}), "
        f"majority base {m['baselines']['majority_base']:.4f}, uniform 0.25")
  return s


# ---------------------------------------------------------------------------------------------------- Loop
class _Logger:
  def __init__(self, workdir: str, tensorboard: bool):
    self.main = runtime.is_main()
    self.path = os.path.join(workdir, "metrics.jsonl")
    self.writer = None
    if self.main and tensorboard:
      from tensorboardX import SummaryWriter
      self.writer = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def write(self, step: int, split: str, values: dict) -> None:
    if not self.main:
      return
    with open(self.path, "a") as f:
      f.write(json.dumps({"step": step, "split": split, **values}) + "\n")
    if self.writer:
      for k, v in values.items():
        if isinstance(v, (int, float)) and math.isfinite(v):
          self.writer.add_scalar(f"{split}/{k}", v, step)
        elif isinstance(v, dict):
          for k2, v2 in v.items():
            if isinstance(v2, (int, float)) and math.isfinite(v2):
              self.writer.add_scalar(f"{split}/{k}/{k2}", v2, step)
      self.writer.flush()

  def close(self):
    if self.writer:
      self.writer.close()


def _device_memory() -> float | None:
  try:
    stats = jax.local_devices()[0].memory_stats()
  except Exception:
    return None
  return stats.get("bytes_in_use") / 2**30 if stats and "bytes_in_use" in stats else None


class TrainingDiverged(UserError):
  """Non-finite loss, gradients or parameters: the run stops and nothing non-finite is ever checkpointed."""


@jax.jit
def _all_finite(tree) -> jax.Array:
  return jnp.all(jnp.array([jnp.isfinite(x).all() for x in jax.tree.leaves(tree)]))


def _last_good(ckpt: checkpoint.Checkpointer) -> str:
  step = ckpt.latest_step()
  return (f"last good checkpoint: step {step} in {ckpt.directory} (kept)" if step is not None
          else "no checkpoint was saved before it")


class _StopRequest:
  """SIGTERM/SIGINT -> finish the current step, checkpoint, exit 0. A second SIGINT interrupts at once."""

  SIGNALS = (signal.SIGTERM, signal.SIGINT)

  def __init__(self):
    self.signum, self._previous = None, {}

  @property
  def name(self) -> str:
    return signal.Signals(self.signum).name if self.signum else ""

  def _handle(self, signum, frame):
    if self.signum == signal.SIGINT and signum == signal.SIGINT:
      raise KeyboardInterrupt
    self.signum = signum

  def install(self) -> None:
    if threading.current_thread() is threading.main_thread():
      for s in self.SIGNALS:
        self._previous[s] = signal.signal(s, self._handle)

  def uninstall(self) -> None:
    for s, h in self._previous.items():
      signal.signal(s, h)
    self._previous = {}

  def requested_everywhere(self, at_sync_point: bool) -> bool:
    if jax.process_count() == 1:
      return self.signum is not None
    if not at_sync_point:
      return False
    flags = multihost_utils.process_allgather(np.array([self.signum or 0], np.int32))
    if self.signum is None and flags.any():
      self.signum = int(flags[flags > 0][0])
    return bool(flags.any())


def _existing_ancestor(path: str) -> str:
  path = os.path.abspath(path)
  while not os.path.exists(path):
    path = os.path.dirname(path)
  return path


def check_resources(cfg, program: Program, workdir: str) -> dict:
  """Before anything is written or compiled: the workdir is writable, the disk holds a checkpoint, and the model,
  optimizer state and activations of one step fit in the host memory available. One line each, exit 2."""
  n_params = count_params(program.abstract_state["params"])
  state_bytes = 3 * 4 * n_params  # float32 parameters and two Adam moments
  place = _existing_ancestor(workdir)
  if not os.path.isdir(place) or not os.access(place, os.W_OK | os.X_OK):
    raise UserError(f"{workdir}: cannot write here ({place} is not a writable directory); pass another --workdir")
  ckpt_dir = cfg.ckpt.dir or os.path.join(workdir, "checkpoints")
  if "://" not in ckpt_dir:
    free = shutil.disk_usage(_existing_ancestor(ckpt_dir)).free
    if free < 1.1 * state_bytes + 2**20:
      raise UserError(f"{ckpt_dir}: {free / 2**30:.2f} GiB free, but one checkpoint needs about "
                      f"{state_bytes / 2**30:.2f} GiB; free disk space or set --config.ckpt.dir")
  m = program.mcfg
  B = cfg.train.global_batch // cfg.train.grad_accum // max(1, jax.process_count())
  L = cfg.data.seq_len
  # Saved activations per layer: ~10 d_model-wide and ~3 d_ff-wide float32 tensors per position (no remat).
  act_bytes = 4 * B * L * m.num_layers * (10 * m.d_model + 3 * m.d_ff)
  need = 2 * state_bytes * jax.local_device_count() + act_bytes  # state (+ gradients) on every local device
  if jax.default_backend() == "cpu":
    avail = psutil.virtual_memory().available
    if need > 0.9 * avail:
      raise UserError(f"config: one training step needs about {need / 2**30:.1f} GiB of host memory (model + "
                      f"optimizer + activations for {B} x {L} windows) but {avail / 2**30:.1f} GiB is available; "
                      "lower train.global_batch, raise train.grad_accum or set model.remat=full")
  return {"state_bytes": state_bytes, "step_memory_bytes": need}


def train_and_evaluate(cfg, workdir: str, show_progress: bool = True, stop_at: int | None = None) -> dict:
  """Train (resuming from the latest checkpoint in `workdir` if any); returns the final validation metrics.

  `stop_at` ends this run early at that step (validated and checkpointed) while the schedule still spans
  `train.steps`: rerunning continues exactly where it stopped.
  """
  t_start = time.time()
  program = Program(cfg)  # validates the config before anything is written
  check_resources(cfg, program, workdir)
  config_path = os.path.join(workdir, "config.json")
  if os.path.isfile(config_path):
    with open(config_path) as f:
      previous = config_lib.from_json(f.read())
    if previous.model.to_dict() != cfg.model.to_dict():
      raise UserError(f"{workdir}: holds a run with a different model config; use a new --workdir or the same "
                      "--config.model.* values")
  created = not os.path.exists(workdir)
  os.makedirs(workdir, exist_ok=True)
  log.info("%s", runtime.describe(program.mesh))

  # Input: process 0 prepares the corpus, the others open it once it is there.
  if runtime.is_main():
    try:
      corpus = data.build_corpus(cfg.data, workdir, cfg.train.seed)
    except UserError:
      if created:  # a bad input leaves nothing behind
        shutil.rmtree(workdir, ignore_errors=True)
      raise
    with open(config_path, "w") as f:
      f.write(config_lib.to_json(cfg))
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices("dnajax:corpus")
  if not runtime.is_main():
    corpus = data.build_corpus(cfg.data, workdir, cfg.train.seed)
  samplers = {length: corpus_lib.WindowSampler(corpus, length, cfg.data.mask_rate, cfg.train.seed,
                                               cfg.data.max_n_fraction, cfg.data.reverse_complement,
                                               mask_rate_max=cfg.data.mask_rate_max)
              for length in sorted({length for _, length in program.curriculum})}
  rows = sharding.process_rows(cfg.train.global_batch)
  validation = Validation(cfg, corpus)
  log.info("corpus %s: %d bases, %d train / %d val segments; validation: %d masked bases%s", corpus.path,
           corpus.index["total_bases"], len(corpus.split("train")), len(corpus.split("val")),
           int(validation.weights.sum()),
           f", Bayes-optimal accuracy {validation.bayes['masked_accuracy']:.4f}" if validation.bayes else "")

  # State: restore the latest checkpoint or initialise.
  ckpt = checkpoint.Checkpointer(workdir, keep=cfg.ckpt.keep, async_save=cfg.ckpt.async_save,
                                 directory=cfg.ckpt.dir)
  start = ckpt.latest_step()
  if start is not None:
    state, _ = program.restore(ckpt, start)
    log.info("resumed from checkpoint step %d", start)
  else:
    state, start = program.init(), 0
  log.info("model: %s parameters", f"{count_params(state['params']):,}")
  logger = _Logger(workdir, cfg.log.tensorboard)
  total = cfg.train.steps

  def tokens_per_step(step):
    return cfg.train.global_batch * seq_len_at(program.curriculum, step)
  if stop_at is not None:
    total = max(min(total, stop_at), start)
  final = None

  def meta(step):
    return {"step": step, "config": cfg.to_dict(), "data_position": {"next_step": step}}

  def next_device_batch(step):  # runs in a worker thread: host rows and the transfer overlap the running step
    return program.to_global(samplers[seq_len_at(program.curriculum, step)].rows(step, rows))

  timer = {"t0": time.time(), "steps_done": start}

  def log_window(window):  # window: [(step number after the update, metrics)]; this reads them (a host sync)
    steps, vals = [s for s, _ in window], jax.device_get([v for _, v in window])
    first, end_step = steps[0], steps[-1]
    skipped = sum(int(v["skipped"]) for v in vals)
    bad = [s for s, v in zip(steps, vals) if not (math.isfinite(float(v["loss_sum"]))
                                                 and math.isfinite(float(v["grad_norm"])))]
    if (bad and not cfg.opt.skip_nonfinite) or skipped == len(vals):
      raise TrainingDiverged(
          f"training diverged: non-finite loss or gradients at step {bad[0] if bad else first} (window {first}-"
          f"{end_step}); {_last_good(ckpt)}; lower opt.learning_rate, raise opt.warmup_steps or set "
          "opt.skip_nonfinite=True")
    loss_sum = sum(float(v["loss_sum"]) for v in vals)
    count = max(sum(float(v["count"]) for v in vals), 1.0)
    now = time.time()
    done_tokens = sum(tokens_per_step(s) for s in range(timer["steps_done"], end_step))
    tps = done_tokens / max(now - timer["t0"], 1e-9)
    timer.update(t0=now, steps_done=end_step)
    rec = {"loss": loss_sum / count, "masked_accuracy": sum(float(v["correct"]) for v in vals) / count,
           "grad_norm": float(vals[-1]["grad_norm"]), "learning_rate": float(vals[-1]["lr"]),
           "tokens_per_second": tps, "seq_len": seq_len_at(program.curriculum, end_step - 1),
           "host_rss_gib": psutil.Process().memory_info().rss / 2**30}
    if skipped:
      rec["skipped_nonfinite_steps"] = skipped
      log.warning("steps %d-%d: skipped %d update(s) with non-finite loss or gradients", first, end_step, skipped)
    rec["perplexity"] = math.exp(min(rec["loss"], 50.0))
    mem = _device_memory()
    if mem is not None:
      rec["device_memory_gib"] = mem
    logger.write(end_step, "train", rec)
    bar.set_postfix(loss=f"{rec['loss']:.3f}", acc=f"{rec['masked_accuracy']:.3f}", tok_s=f"{tps:,.0f}")

  def save(step):
    """Checkpoint `step` only if every update up to it was finite (checked here: saves are rare host syncs)."""
    if not bool(jax.device_get(_all_finite(state["params"]))):
      raise TrainingDiverged(f"training diverged: non-finite parameters at step {step}, not saved; "
                             f"{_last_good(ckpt)}; lower opt.learning_rate or raise opt.warmup_steps")
    ckpt.save(step, state, meta(step), force=True)

  pool = concurrent.futures.ThreadPoolExecutor(1)
  stop = _StopRequest()
  interrupted = None
  try:
    stop.install()
    bar = tqdm(total=total, initial=start, disable=not (show_progress and runtime.is_main()), unit="step",
               dynamic_ncols=True)
    next_batch = pool.submit(next_device_batch, start) if start < total else None
    pending = []  # [(step, metrics)] not read yet
    le = cfg.train.log_every
    for step in range(start, total):
      batch = next_batch.result()
      if step + 1 < total:
        next_batch = pool.submit(next_device_batch, step + 1)
      state, m = program.train_step(state, batch)
      done = step + 1
      pending.append((done, m))
      # Windows end at multiples of log_every (the same grid after a resume); a window is read once the next step
      # has been dispatched, so the device never waits on the host.
      if len(pending) > 1 and pending[-2][0] % le == 0:
        log_window(pending[:-1])
        pending = pending[-1:]
      # A stop request (SIGTERM/SIGINT) ends the run after this step; with several processes they agree on the
      # step at window ends, where metrics are read anyway.
      stopping = stop.requested_everywhere(at_sync_point=done % le == 0)
      evaluating = done % cfg.train.eval_every == 0 or done == total
      saving = done % cfg.ckpt.every == 0 or done == total or stopping
      if pending and (evaluating or saving):
        log_window(pending)  # every update up to `done` is checked before it is evaluated or saved
        pending = []
      if evaluating:
        final = validation.run(program, state["params"])
        logger.write(done, "val", final)
        if runtime.is_main():
          tqdm.write(f"step {done}: validation {describe_eval(final)}")
      if saving:
        save(done)
      bar.update(1)
      if stopping:
        interrupted = {"signal": stop.name, "checkpoint_step": done}
        log.warning("%s: stopped after step %d and saved a checkpoint there; rerun the same command to resume",
                    stop.name, done)
        break
    bar.close()
    if interrupted:
      return {**interrupted, "interrupted": True, "wall_seconds": time.time() - t_start}
    if final is None:  # nothing left to train: report the restored state
      final = validation.run(program, state["params"])
  finally:
    stop.uninstall()
    pool.shutdown(wait=True)
    ckpt.close()
    logger.close()
  final["checkpoint_step"] = int(total if start < total else start)
  final["wall_seconds"] = time.time() - t_start
  return final
