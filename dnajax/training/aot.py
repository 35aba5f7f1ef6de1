"""Ahead-of-time compilation of the training step: parameter count, FLOPs and compiled memory per device, before a
pod run is launched (`dnajax train --dry-run`), and the model-FLOPs count that MFU is measured against."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp

from dnajax.model import encoder
from dnajax.training.program import TrainProgram


def model_flops_per_step(mcfg: encoder.ModelConfig, n_params: int, batch: int, seq_len: int) -> float:
  """Training FLOPs: 6 per parameter per token, plus attention's two L x L matmuls (x3 for the backward)."""
  tokens_ = batch * seq_len
  attention = 3 * 2 * 2 * mcfg.num_layers * batch * seq_len * seq_len * mcfg.d_model
  return 6.0 * n_params * tokens_ + attention


def dry_run(cfg) -> dict:
  """Compile the train step for the configured mesh without training (ahead of time, from abstract shapes).

  Returns {devices, mesh, parameters, tokens_per_step, model_flops_per_step, xla_flops_per_device_step,
  compile_seconds, memory_per_device: {argument/output/alias/temp/generated_code sizes and a peak estimate, bytes}}.
  Raises UserError for a config that cannot run on the devices present."""
  program = TrainProgram(cfg)
  B, L = cfg.train.global_batch, cfg.data.seq_len
  batch = {k: jax.ShapeDtypeStruct((B, L), dt, sharding=program.batch_sh)
           for k, dt in (("inputs", jnp.uint8), ("targets", jnp.uint8), ("weights", jnp.float32))}
  t0 = time.time()
  compiled = program.train_step.lower(program.abstract_state, batch).compile()
  compile_s = time.time() - t0
  n_params = encoder.count_params(program.abstract_state["params"])
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
  """The dry run's result as lines of text."""
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
