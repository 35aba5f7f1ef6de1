"""`dnajax bench`: training throughput, MFU, compile time, memory and input-pipeline rate for a config.

A benchmark program, not a test: it prints a table and writes JSON. The measurement runs in its own subprocess
(`python -m dnajax.apps.bench CONFIG OVERRIDES STEPS WINDOWS`), so its peak RSS is its own. It trains on dnajax's
NumPy window sampler over an i.i.d. corpus (the train step masks the windows). The comparison with a PyTorch
reference of the same model runs from a source checkout: `python -m benchmarks.compare_torch` (it reuses this
module's measurement).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp

from dnajax import config as config_lib
from dnajax import runtime
from dnajax.data import corpus as corpus_lib
from dnajax.data import preparation, sources, writers
from dnajax.data import sampler as sampler_lib
from dnajax.errors import UserError
from dnajax.evaluation import render
from dnajax.model import attention, encoder
from dnajax.training import aot

CONFIG_OVERRIDES = True

# Dense bf16 peak FLOP/s (no sparsity) per chip, from the vendors' data sheets.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "TPU v4": 275e12, "TPU v5 lite": 197e12,
              "TPU v5e": 197e12, "TPU v5p": 459e12, "TPU v6 lite": 918e12, "TPU v6e": 918e12}


def chip_peak(device_kind: str) -> float | None:
  """The data-sheet dense bf16 FLOP/s of an accelerator kind, or None (CPU and unknown chips)."""
  for name, flops in PEAK_FLOPS.items():
    if name.lower() in device_kind.lower():
      return flops
  return None


def peak_rss_gib() -> float:
  """Peak resident memory of this process, GiB."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def make_corpus(seq_len: int, directory: str):
  """A throwaway i.i.d. corpus large enough for windows of `seq_len` (both frameworks train on it)."""
  records = sources.synthetic_records("iid", max(400_000, 64 * seq_len), 20_000, seed=0)
  return preparation.prepare(records, os.path.join(directory, "corpus"), corpus_lib.SplitSettings(val_fraction=0.0))


def input_pipeline_rate(sampler, global_batch: int, seq_len: int, steps: int = 20, seconds: float = 1.0) -> float:
  """Tokens/s the host's NumPy window sampler delivers on one core (this thread), over at least `steps` batches and
  `seconds`; the masking runs in the train step, so the step's own rate includes it."""
  t0, step = time.perf_counter(), 0
  while step < steps or time.perf_counter() - t0 < seconds:
    sampler.rows(step, range(global_batch))
    step += 1
  return step * global_batch * seq_len / (time.perf_counter() - t0)


def summarise_windows(window_seconds: list[float], steps_per_window: int, tokens_per_step: int) -> dict:
  """Median, min and max tokens/s over timed windows, and steps/s."""
  rates = [steps_per_window * tokens_per_step / t for t in window_seconds]
  return {"tokens_per_second": statistics.median(rates), "tokens_per_second_min": min(rates),
          "tokens_per_second_max": max(rates), "steps_per_second": statistics.median(rates) / tokens_per_step}


# ----------------------------------------------------------------------------------------------- JAX worker
def cpu_matmul_peak(n: int = 2048, reps: int = 10) -> float:
  """Measured FLOP/s of a large float32 matmul: the CPU 'peak' MFU is reported against (labelled as such)."""
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  t0 = time.perf_counter()
  for _ in range(reps):
    out = f(a)
  out.block_until_ready()
  return reps * 2 * n**3 / (time.perf_counter() - t0)


def run_jax(cfg, steps: int, windows: int) -> dict:
  """The measurement itself (in the worker process): median tokens/s of `windows` windows of `steps` steps."""
  plan = aot.plan_step(cfg)  # as `dnajax train` plans it: train.grad_accum=auto resolved against device memory
  plan.require()
  program, cfg = plan.program, plan.cfg
  B, L = cfg.train.global_batch, cfg.data.seq_len
  with tempfile.TemporaryDirectory() as tmp:
    sampler = sampler_lib.WindowSampler(make_corpus(L, tmp), L, seed=0, soft=program.soft_batches)
    batches = [program.to_global(sampler.rows(s, range(B))) for s in range(4)]
    pipeline = input_pipeline_rate(sampler, B, L)
  state = program.init()
  compiled, compile_s = plan.step.compiled, plan.step.compile_seconds  # compiled for seq_len (no curriculum here)
  for i in range(2):  # warm-up
    state, m = compiled(state, batches[i % 4])
  jax.block_until_ready(m)
  times = []
  for _ in range(windows):
    t0 = time.perf_counter()
    for i in range(steps):
      state, m = compiled(state, batches[i % 4])
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t0)
  n_params = encoder.count_params(state["params"])
  out = summarise_windows(times, steps, B * L)
  flops_per_step = aot.model_flops_per_step(program.mcfg, n_params, B, L)
  dev = jax.devices()[0]
  n_dev = jax.device_count()
  achieved = flops_per_step * out["steps_per_second"]
  peak = chip_peak(dev.device_kind)
  peak_label = f"{dev.device_kind} data-sheet bf16 dense peak x {n_dev}"
  if dev.platform == "cpu":
    peak, peak_label = cpu_matmul_peak(), "measured float32 2048x2048 matmul on this CPU"
  elif peak is not None:
    peak *= n_dev
  stats = dev.memory_stats() or {}
  out.update(framework="jax", device_kind=dev.device_kind, device_count=n_dev, parameters=n_params,
             attention_kernel=attention.resolve(cfg.model.attention, L, cfg.model.dtype),
             cpu_host_setup=runtime.HOST_TUNED,
             grad_accum=cfg.train.grad_accum,
             compile_seconds=compile_s, flops_per_token=flops_per_step / (B * L), achieved_flops=achieved,
             peak_flops=peak, peak_flops_source=peak_label, mfu=(achieved / peak) if peak else None,
             peak_host_rss_gib=peak_rss_gib(), input_pipeline_tokens_per_second=pipeline,
             input_pipeline_ratio=pipeline / out["tokens_per_second"])
  if "peak_bytes_in_use" in stats:
    out["device_peak_memory_gib"] = stats["peak_bytes_in_use"] / 2**30
  return out


# ------------------------------------------------------------------------------------------------- Driver
def worker(module: str, config_spec: str, overrides: list, steps: int, windows: int) -> dict:
  """Run `python -m MODULE CONFIG OVERRIDES STEPS WINDOWS` and return the JSON it prints last; UserError (naming
  the worker's last line) when it fails."""
  cmd = [sys.executable, "-m", module, config_spec, json.dumps(overrides), str(steps), str(windows)]
  r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ))
  if r.returncode != 0:
    last = (r.stderr.strip().splitlines() or ["no output"])[-1]
    prefix = f"{UserError.__module__}.{UserError.__name__}: "
    if last.startswith(prefix):  # bad input found by the worker (e.g. a config check): the message itself
      raise UserError(last[len(prefix):])
    raise UserError(f"bench: the worker {module} failed ({last})")
  return json.loads(r.stdout.strip().splitlines()[-1])


def bench(config_spec: str, overrides: list, steps: int = 10, windows: int = 5, output: str | None = None) -> dict:
  """{config, overrides, command, machine, processor, cpu_model, isa_extensions, cpu_count, model, seq_len,
  global_batch, steps_per_window, windows, jax: the measurement, input_pipeline_ratio}; written to `output` as JSON
  when given."""
  if steps < 1 or windows < 1:
    raise UserError("--steps and --windows must be at least 1")
  if output:
    writers.check_outputs([("--output", output)])  # before the measurement, not after it
  cfg = config_lib.load(config_spec, overrides)  # validate before spawning workers
  result = {"config": config_spec, "overrides": [f"--config.{k}={v}" for k, v in overrides],
            "command": " ".join(["dnajax"] + sys.argv[1:]), "machine": platform.platform(),
            "processor": platform.processor() or platform.machine(), **runtime.cpu_description(),
            "cpu_count": os.cpu_count(),
            "model": {k: cfg.model[k] for k in ("d_model", "num_heads", "num_layers", "d_ff", "attention", "dtype")},
            "seq_len": cfg.data.seq_len, "global_batch": cfg.train.global_batch, "steps_per_window": steps,
            "windows": windows}
  result["jax"] = worker("dnajax.apps.bench", config_spec, overrides, steps, windows)
  result["input_pipeline_ratio"] = result["jax"]["input_pipeline_ratio"]
  if output:
    writers.atomic_write_text(output, render.to_json(result) + "\n")
  return result


def format_table(r: dict) -> str:
  """The measurement (and a PyTorch reference's, when `r` has one) as a text table; a missing value is `-`."""
  num = render.number
  rows = [("framework", "tokens/s (median)", "min..max", "steps/s", "compile s", "MFU", "peak RSS GiB")]
  for fw in ("jax", "torch"):
    if fw not in r:
      continue
    x = r[fw]
    mfu = f"{render.percent(x.get('mfu'))}%" if num(x.get("mfu")) != "-" else "-"
    rows.append((("dnajax (JAX)" if fw == "jax" else f"PyTorch {x['torch_version']}"),
                 num(x["tokens_per_second"], ",.0f"),
                 f"{num(x['tokens_per_second_min'], ',.0f')}..{num(x['tokens_per_second_max'], ',.0f')}",
                 num(x["steps_per_second"], ".2f"), num(x.get("compile_seconds"), ".1f"),
                 mfu, num(x["peak_host_rss_gib"], ".2f")))
  widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
  lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
  j = r["jax"]
  lines.append(f"config {r['config']} {' '.join(r['overrides'])}: {j['parameters']:,} parameters, seq {r['seq_len']}, "
               f"batch {r['global_batch']}, {j['device_count']} x {j['device_kind']}")
  achieved, peak = (None if v is None else v / 1e9 for v in (j["achieved_flops"], j["peak_flops"]))
  if "cpu_model" in r:
    lines.append(f"CPU {r['cpu_model']}, {r['cpu_count']} cores; instruction-set extensions: "
                 f"{' '.join(r['isa_extensions']) or 'none found'}; CPU host set-up "
                 f"{'on' if j.get('cpu_host_setup') else 'off'}; attention kernel {j.get('attention_kernel', '-')}")
  lines.append(f"model FLOPs/token {num(j['flops_per_token'], ',.0f')}; achieved {num(achieved, '.1f')} GFLOP/s; "
               f"peak {num(peak, '.1f')} GFLOP/s ({j['peak_flops_source']})")
  lines.append(f"input pipeline (one core): {num(j['input_pipeline_tokens_per_second'], ',.0f')} tokens/s = "
               f"{num(r['input_pipeline_ratio'], '.1f')}x the step's consumption")
  if "ratio_vs_torch" in r:
    lines.append(f"dnajax / PyTorch: tokens/s {num(r['ratio_vs_torch'], '.2f')}x, peak RSS "
                 f"{num(r['rss_ratio_vs_torch'], '.2f')}x")
  return "\n".join(lines)


def add_arguments(p) -> None:
  p.add_argument("--config", default="small", help="a shipped config name or a config file (default: small)")
  p.add_argument("--steps", type=int, default=10, help="steps per timed window")
  p.add_argument("--windows", type=int, default=5, help="timed windows (the median is reported)")
  p.add_argument("--output", help="write the results as JSON here")


def main(args, overrides) -> int:
  print(format_table(bench(args.config, overrides, args.steps, args.windows, args.output)))
  return 0


def worker_main(argv: list[str]) -> str:
  """The worker's output for `CONFIG OVERRIDES STEPS WINDOWS`: the measurement as one line of strict JSON (a
  non-finite number, e.g. a ratio over a zero time, is null)."""
  spec, ov, steps, windows = argv[:4]
  return render.to_json(run_jax(config_lib.load(spec, [tuple(x) for x in json.loads(ov)]), int(steps), int(windows)),
                        indent=None)


if __name__ == "__main__":  # worker entry point: python -m dnajax.apps.bench CONFIG OVERRIDES STEPS WINDOWS
  print(worker_main(sys.argv[1:5]))
