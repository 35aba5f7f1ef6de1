"""Ahead-of-time compilation of the training step, and the memory plan made from it before anything is written.

`plan_step(cfg)` compiles the step for the configured mesh from abstract shapes (nothing is allocated), reads the
compiled memory per device and compares it with what a device holds (`guards.device_memory_limit`). It resolves
`train.grad_accum=auto` to the smallest accumulation count whose step fits, and when a step does not fit it computes
the fix (the count, or `model.remat=full` and a count) by compiling candidates. The executable it compiled lands in
the jit's cache, so the first training step at that window length runs it without compiling again. `dnajax train
--dry-run` prints the same plan, with the parameter count and FLOPs, and trains nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import time

import jax

from dnajax import sharding
from dnajax.errors import UserError
from dnajax.model import encoder
from dnajax.training import guards
from dnajax.training.program import TrainProgram

log = logging.getLogger("dnajax")

# Of a device's memory limit, the share one training step is planned to use: the step's temporaries are one large
# buffer and the allocator fragments (on an H200, a step estimated at 82% of XLA's limit ran out of memory).
PLANNED_FRACTION = 0.75


def model_flops_per_step(mcfg: encoder.ModelConfig, n_params: int, batch: int, seq_len: int) -> float:
  """Training FLOPs: 6 per parameter per token, plus attention's two L x L matmuls (x3 for the backward)."""
  tokens_ = batch * seq_len
  attention = 3 * 2 * 2 * mcfg.num_layers * batch * seq_len * seq_len * mcfg.d_model
  return 6.0 * n_params * tokens_ + attention


def gib(n_bytes: float) -> str:
  """Bytes for messages: '84.7 GiB', or '7.6 MiB' below 1 GiB."""
  return f"{n_bytes / 2**30:.1f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"


def compile_step(program: TrainProgram, seq_len: int):
  """`program.step` compiled for `seq_len`-base windows from the abstract state and batch. The executable
  is the one the jit's cache holds: the loop's first call at this length runs it without compiling again."""
  return program.step.lower(program.abstract_state, program.abstract_batch(seq_len)).compile()


def step_memory(compiled) -> dict | None:
  """The compiled step's memory per device, bytes: {argument, output, alias, temp, generated_code}_size_in_bytes
  from `memory_analysis()` and peak_estimate_bytes = arguments + outputs - aliased (the donated state, counted
  once) + temporaries. None where the backend reports nothing."""
  mem = compiled.memory_analysis()
  if mem is None:
    return None
  fields = ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes", "temp_size_in_bytes",
            "generated_code_size_in_bytes")
  m = {f: int(getattr(mem, f, 0) or 0) for f in fields}
  m["peak_estimate_bytes"] = (m["argument_size_in_bytes"] + m["output_size_in_bytes"] - m["alias_size_in_bytes"]
                              + m["temp_size_in_bytes"])
  return m


def grad_accum_counts(program: TrainProgram) -> list[int]:
  """Every accumulation count the program's global batch allows: counts dividing it into micro-batches that split
  evenly over the batch shards and the processes, ascending."""
  B = program.cfg.train.global_batch
  shards = sharding.axis_size(program.mesh, program.rules.get("batch"))
  return [g for g in range(1, B + 1) if B % g == 0 and (B // g) % shards == 0 and (B // g) % jax.process_count() == 0]


def with_settings(cfg, grad_accum: int, remat: str | None = None):
  """A copy of `cfg` with train.grad_accum (and model.remat) set."""
  out = cfg.copy_and_resolve_references()
  with out.train.ignore_type():
    out.train.grad_accum = int(grad_accum)
  if remat is not None:
    out.model.remat = remat
  return out


@dataclasses.dataclass
class Candidate:
  """One compiled step: its program (config with an integer train.grad_accum), the window length it was compiled
  for (the curriculum's longest), executable, memory (`step_memory`) and compile time in seconds."""

  program: TrainProgram
  seq_len: int
  compiled: object
  memory: dict | None
  compile_seconds: float

  @property
  def need(self) -> int | None:
    """Bytes per device the step needs (`step_memory`'s peak estimate), or None where unknown."""
    return None if self.memory is None else self.memory["peak_estimate_bytes"]


@dataclasses.dataclass
class StepPlan:
  """The step chosen for a config and how it compares with the device's memory.

  cfg: the config with train.grad_accum an integer (auto resolved); step: the compiled step; limit_bytes: the bytes
  a device holds (None: unknown) and limit_source, where that number comes from; auto: grad_accum was auto; fix:
  when the step does not fit, the compiled alternative that does (None: none does).
  """

  cfg: object
  step: Candidate
  limit_bytes: int | None
  limit_source: str
  auto: bool
  fix: Candidate | None = None
  tried: dict = dataclasses.field(default_factory=dict)  # (remat, grad_accum) -> bytes needed, for the messages

  @property
  def program(self) -> TrainProgram:
    """The training program of the chosen step."""
    return self.step.program

  @property
  def seq_len(self) -> int:
    """The window length the step was compiled for."""
    return self.step.seq_len

  @property
  def usable_bytes(self) -> int | None:
    """The bytes per device one step may use (PLANNED_FRACTION of the limit), or None where the limit is unknown."""
    return None if self.limit_bytes is None else int(PLANNED_FRACTION * self.limit_bytes)

  @property
  def fits(self) -> bool:
    """Whether the step's memory per device is within `usable_bytes` (True where either is unknown)."""
    return self.step.need is None or self.usable_bytes is None or self.step.need <= self.usable_bytes

  def verdict(self) -> str:
    """One line: the step's memory per device against the device's, and the fix when it does not fit."""
    t = self.cfg.train
    what = (f"the training step ({t.global_batch} x {self.seq_len} windows, train.grad_accum={t.grad_accum}"
            f"{', model.remat=' + self.cfg.model.remat if self.cfg.model.remat != 'none' else ''})")
    if self.step.need is None or self.limit_bytes is None:
      return (f"{what}: memory per device {'unknown' if self.step.need is None else gib(self.step.need)}; "
              f"not checked: {self.limit_source}")
    against = (f"the limit is {gib(self.limit_bytes)} per device ({self.limit_source}), of which "
               f"{PLANNED_FRACTION:.0%} ({gib(self.usable_bytes)}) is planned for one step")
    if self.fits:
      return f"{what} needs {gib(self.step.need)} per device; {against}: fits"
    head = f"{what} needs {gib(self.step.need)} per device but {against}"
    if self.fix is not None:
      fc = self.fix.program.cfg
      remat = f"--config.model.remat={fc.model.remat} " if fc.model.remat != self.cfg.model.remat else ""
      return (f"{head}; set {remat}--config.train.grad_accum={fc.train.grad_accum} ({gib(self.fix.need)} per "
              f"device){'' if remat or self.auto else ' or --config.train.grad_accum=auto'}")
    largest = max(self.tried, key=lambda k: (k[0] == "full", k[1]))
    return (f"{head}; no train.grad_accum fits, not even {largest[1]} with model.remat={largest[0]} "
            f"({gib(self.tried[largest])}); use more devices (mesh.fsdp), a smaller train.global_batch or "
            "data.seq_len, or a smaller model")

  def require(self) -> None:
    """Raise UserError (one line, `verdict`) when the step does not fit the device."""
    if not self.fits:
      raise UserError(f"config: {self.verdict()}")


def _candidate(program: TrainProgram) -> Candidate:
  seq_len = max(length for _, length in program.curriculum)  # the longest window: the most memory
  t0 = time.time()
  compiled = compile_step(program, seq_len)
  return Candidate(program, seq_len, compiled, step_memory(compiled), time.time() - t0)


def _smallest_fitting(cfg, counts: list[int], remat: str, usable: int, tried: dict,
                      known: Candidate | None) -> Candidate | None:
  """The candidate of the smallest count in `counts` (ascending) whose step fits `usable` bytes, compiling as few
  as it can: the first guess scales the `known` step's temporaries by its count over the candidate's (memory falls
  with the count), then it walks down while smaller counts fit, or up until one does."""
  def build(g):
    c = _candidate(TrainProgram(with_settings(cfg, g, remat)))
    tried[(remat, g)] = c.need
    return c

  if not counts:
    return None
  i = len(counts) - 1
  if known is not None and known.need is not None:
    g0, m = known.program.cfg.train.grad_accum, known.memory
    fixed = m["peak_estimate_bytes"] - m["temp_size_in_bytes"]
    i = next((j for j, g in enumerate(counts) if fixed + m["temp_size_in_bytes"] * g0 / g <= usable), i)
  best = None
  c = build(counts[i])
  if c.need <= usable:
    best = c
    while i > 0:
      i -= 1
      c = build(counts[i])
      if c.need > usable:
        break
      best = c
    return best
  for g in counts[i + 1:]:
    c = build(g)
    if c.need <= usable:
      return c
  return None


def starting_config(cfg):
  """`cfg` as `plan_step` compiles it first: train.grad_accum=auto read as 1 (else `cfg` itself)."""
  return with_settings(cfg, 1) if cfg.train.grad_accum == "auto" else cfg


def plan_step(cfg, program: TrainProgram | None = None) -> StepPlan:
  """Compile the training step for `cfg` on the devices present and plan it against their memory.

  train.grad_accum=auto becomes the smallest count whose step fits (logged). A step that does not fit gets a fix
  (`StepPlan.fix`): the smallest count that fits, else model.remat=full with the smallest count that fits; the
  caller refuses it (`StepPlan.require`). Compiles once when the step fits, a few times when it does not.
  `program`: the TrainProgram of `starting_config(cfg)` where it is built already. Raises UserError for a config
  that cannot run on the devices present (see TrainProgram)."""
  auto = cfg.train.grad_accum == "auto"
  step = _candidate(program or TrainProgram(starting_config(cfg)))  # the program checks the config first
  program = step.program
  limit, source = guards.device_memory_limit(cfg)
  plan = StepPlan(program.cfg, step, limit, source, auto)
  plan.tried[(program.cfg.model.remat, program.cfg.train.grad_accum)] = step.need
  if not plan.fits:
    plan = _refit(plan)
  if auto and plan.fits:
    log.info("train.grad_accum=auto: %d micro-batch(es) per step; %s", plan.cfg.train.grad_accum, plan.verdict())
  return plan


def _refit(plan: StepPlan) -> StepPlan:
  """A plan whose step does not fit, with its fix found (`_smallest_fitting`); under grad_accum=auto a count that
  fits becomes the plan's step."""
  step, program = plan.step, plan.step.program
  usable, g0, remat = plan.usable_bytes, program.cfg.train.grad_accum, program.cfg.model.remat
  counts = grad_accum_counts(program)
  fix = _smallest_fitting(program.cfg, [g for g in counts if g > g0], remat, usable, plan.tried, step)
  if fix is None and remat != "full":
    fix = _smallest_fitting(program.cfg, [g for g in counts if g >= g0], "full", usable, plan.tried, None)
  plan.fix = fix
  if plan.auto and fix is not None and fix.program.cfg.model.remat == remat:
    return dataclasses.replace(plan, cfg=fix.program.cfg, step=fix, fix=None)
  return plan


def dry_run(cfg) -> dict:
  """Plan the train step for the configured mesh (`plan_step`) without training.

  Returns {devices, mesh, parameters, tokens_per_step, model_flops_per_step, xla_flops_per_device_step,
  compile_seconds, grad_accum (the count planned), memory_per_device: {argument/output/alias/temp/generated_code
  sizes and peak_estimate_bytes, bytes}, memory_limit_bytes (None: unknown), memory_limit_source,
  memory_usable_bytes, fits, memory: the plan's one-line verdict}. Raises UserError for a config that cannot run
  on the devices present."""
  plan = plan_step(cfg)
  program, B, L = plan.program, cfg.train.global_batch, plan.seq_len
  n_params = encoder.count_params(program.abstract_state["params"])
  cost = plan.step.compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return {"devices": int(program.mesh.devices.size), "mesh": {k: int(v) for k, v in program.mesh.shape.items()},
          "parameters": n_params, "tokens_per_step": B * L,
          "model_flops_per_step": model_flops_per_step(program.mcfg, n_params, B, L),
          "xla_flops_per_device_step": float(cost.get("flops", float("nan"))) if cost else None,
          "compile_seconds": plan.step.compile_seconds, "grad_accum": plan.cfg.train.grad_accum,
          "memory_per_device": plan.step.memory, "memory_limit_bytes": plan.limit_bytes,
          "memory_limit_source": plan.limit_source, "memory_usable_bytes": plan.usable_bytes, "fits": plan.fits,
          "memory": plan.verdict()}


def describe_dry_run(r: dict) -> str:
  """The dry run's result as lines of text."""
  lines = [f"mesh {r['mesh']} on {r['devices']} devices; {r['parameters']:,} parameters; "
           f"{r['tokens_per_step']:,} tokens per step; compiled in {r['compile_seconds']:.1f} s",
           f"FLOPs per step: model {r['model_flops_per_step']:.3e} (6*N*tokens + attention)"
           + (f", XLA per device {r['xla_flops_per_device_step']:.3e}" if r.get("xla_flops_per_device_step") else "")]
  m = r.get("memory_per_device")
  if m:
    lines.append(f"memory per device: arguments {gib(m['argument_size_in_bytes'])}, outputs "
                 f"{gib(m['output_size_in_bytes'])} (aliased {gib(m['alias_size_in_bytes'])}), temporaries "
                 f"{gib(m['temp_size_in_bytes'])}; peak estimate {gib(m['peak_estimate_bytes'])}")
  lines.append(r["memory"])
  return "\n".join(lines)
