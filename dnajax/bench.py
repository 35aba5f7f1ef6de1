"""`dnajax bench`: training throughput, MFU, compile time, memory and input-pipeline rate for a config, optionally
beside a PyTorch reference of the same model run in the same invocation.

A benchmark program, not a test: it prints a table and writes JSON. Each framework runs in its own subprocess
(`python -m dnajax.bench jax|torch ...`), so peak RSS is each one's own and the JAX process never imports torch.
Both train on the same batches: dnajax's NumPy window sampler and 80/10/10 masking over an i.i.d. corpus.
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

import numpy as np

from dnajax.errors import UserError

# Dense bf16 peak FLOP/s (no sparsity) per chip, from the vendors' data sheets.
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "TPU v4": 275e12, "TPU v5 lite": 197e12,
              "TPU v5e": 197e12, "TPU v5p": 459e12, "TPU v6 lite": 918e12, "TPU v6e": 918e12}


def chip_peak(device_kind: str) -> float | None:
  for name, flops in PEAK_FLOPS.items():
    if name.lower() in device_kind.lower():
      return flops
  return None


def peak_rss_gib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def make_corpus(seq_len: int, directory: str):
  from dnajax import corpus as corpus_lib, data
  records = data.synthetic_records("iid", max(400_000, 64 * seq_len), 20_000, seed=0)
  return corpus_lib.prepare(records, os.path.join(directory, "corpus"), corpus_lib.SplitSettings(val_fraction=0.0))


def input_pipeline_rate(sampler, global_batch: int, seq_len: int, steps: int = 20) -> float:
  """Tokens/s the NumPy loader + masking deliver on one core (this thread)."""
  t0 = time.perf_counter()
  for step in range(steps):
    sampler.rows(step, range(global_batch))
  return steps * global_batch * seq_len / (time.perf_counter() - t0)


def _summarise(window_seconds: list[float], steps_per_window: int, tokens_per_step: int) -> dict:
  rates = [steps_per_window * tokens_per_step / t for t in window_seconds]
  return {"tokens_per_second": statistics.median(rates), "tokens_per_second_min": min(rates),
          "tokens_per_second_max": max(rates), "steps_per_second": statistics.median(rates) / tokens_per_step}


# ----------------------------------------------------------------------------------------------- JAX worker
def cpu_matmul_peak(n: int = 2048, reps: int = 10) -> float:
  """Measured FLOP/s of a large float32 matmul: the CPU 'peak' MFU is reported against (labelled as such)."""
  import jax
  import jax.numpy as jnp
  a = jnp.ones((n, n), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  t0 = time.perf_counter()
  for _ in range(reps):
    out = f(a)
  out.block_until_ready()
  return reps * 2 * n**3 / (time.perf_counter() - t0)


def run_jax(cfg, steps: int, windows: int) -> dict:
  import jax
  from dnajax import corpus as corpus_lib, train
  from dnajax.model import count_params

  program = train.Program(cfg)
  B, L = cfg.train.global_batch, cfg.data.seq_len
  with tempfile.TemporaryDirectory() as tmp:
    sampler = corpus_lib.WindowSampler(make_corpus(L, tmp), L, cfg.data.mask_rate, seed=0)
    batches = [program.to_global(sampler.rows(s, range(B))) for s in range(4)]
    pipeline = input_pipeline_rate(sampler, B, L)
  state = program.init()
  t0 = time.perf_counter()
  compiled = program.train_step.lower(state, batches[0]).compile()
  compile_s = time.perf_counter() - t0
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
  n_params = count_params(state["params"])
  out = _summarise(times, steps, B * L)
  flops_per_step = train.model_flops_per_step(program.mcfg, n_params, B, L)
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
             compile_seconds=compile_s, flops_per_token=flops_per_step / (B * L), achieved_flops=achieved,
             peak_flops=peak, peak_flops_source=peak_label, mfu=(achieved / peak) if peak else None,
             peak_host_rss_gib=peak_rss_gib(), input_pipeline_tokens_per_second=pipeline,
             input_pipeline_ratio=pipeline / out["tokens_per_second"])
  if "peak_bytes_in_use" in stats:
    out["device_peak_memory_gib"] = stats["peak_bytes_in_use"] / 2**30
  return out


# --------------------------------------------------------------------------------------------- Torch worker
def run_torch(cfg, steps: int, windows: int) -> dict:
  """The same architecture in idiomatic PyTorch: nn.TransformerEncoder (pre-LN, GELU, batch_first), a learned
  position embedding (nn.TransformerEncoder has no RoPE; the cost difference is negligible), AdamW, the same
  batches and masked cross-entropy."""
  import torch
  from torch import nn
  from dnajax import corpus as corpus_lib, tokens

  torch.set_num_threads(os.cpu_count() or 1)
  torch.manual_seed(0)
  m = cfg.model
  B, L = cfg.train.global_batch, cfg.data.seq_len

  class Reference(nn.Module):
    def __init__(self):
      super().__init__()
      self.embed = nn.Embedding(tokens.VOCAB_SIZE, m.d_model)
      self.pos = nn.Parameter(torch.zeros(1, L, m.d_model))
      layer = nn.TransformerEncoderLayer(m.d_model, m.num_heads, m.d_ff, m.dropout, activation="gelu",
                                         batch_first=True, norm_first=True)
      self.encoder = nn.TransformerEncoder(layer, m.num_layers, norm=nn.LayerNorm(m.d_model),
                                           enable_nested_tensor=False)
      self.head = nn.Linear(m.d_model, tokens.VOCAB_SIZE)

    def forward(self, x):
      pad = x == tokens.PAD
      h = self.encoder(self.embed(x) + self.pos[:, :x.shape[1]], src_key_padding_mask=pad if pad.any() else None)
      return self.head(h)

  model = Reference()
  opt = torch.optim.AdamW(model.parameters(), lr=cfg.opt.learning_rate, weight_decay=cfg.opt.weight_decay)
  with tempfile.TemporaryDirectory() as tmp:
    sampler = corpus_lib.WindowSampler(make_corpus(L, tmp), L, cfg.data.mask_rate, seed=0)
    host = [sampler.rows(s, range(B)) for s in range(4)]
  batches = [(torch.from_numpy(b["inputs"].astype(np.int64)), torch.from_numpy(b["targets"].astype(np.int64)),
              torch.from_numpy(b["weights"])) for b in host]

  def step(i):
    x, y, w = batches[i % 4]
    logits = model(x)
    ce = nn.functional.cross_entropy(logits.reshape(-1, tokens.VOCAB_SIZE), y.reshape(-1), reduction="none")
    loss = (ce * w.reshape(-1)).sum() / w.sum().clamp(min=1)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss

  model.train()
  for i in range(2):
    step(i)
  times = []
  for _ in range(windows):
    t0 = time.perf_counter()
    for i in range(steps):
      loss = step(i)
    float(loss)
    times.append(time.perf_counter() - t0)
  out = _summarise(times, steps, B * L)
  out.update(framework="torch", torch_version=torch.__version__, threads=torch.get_num_threads(),
             parameters=sum(p.numel() for p in model.parameters()), peak_host_rss_gib=peak_rss_gib())
  return out


# ------------------------------------------------------------------------------------------------- Driver
def _worker(framework: str, config_spec: str, overrides: list, steps: int, windows: int) -> dict:
  env = dict(os.environ)
  cmd = [sys.executable, "-m", "dnajax.bench", framework, config_spec, json.dumps(overrides), str(steps),
         str(windows)]
  r = subprocess.run(cmd, capture_output=True, text=True, env=env)
  if r.returncode != 0:
    last = (r.stderr.strip().splitlines() or ["no output"])[-1]
    if framework == "torch" and "No module named 'torch'" in r.stderr:
      raise UserError("--compare-torch needs PyTorch: pip install 'dnajax[bench]' (torch 2.13 CPU)")
    raise UserError(f"bench: the {framework} worker failed ({last})")
  return json.loads(r.stdout.strip().splitlines()[-1])


def bench(config_spec: str, overrides: list, steps: int = 10, windows: int = 5, compare_torch: bool = False,
          output: str | None = None) -> dict:
  from dnajax import config as config_lib
  cfg = config_lib.load(config_spec, overrides)  # validate before spawning workers
  result = {"config": config_spec, "overrides": [f"--config.{k}={v}" for k, v in overrides],
            "command": " ".join(["dnajax"] + sys.argv[1:]), "machine": platform.platform(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "model": {k: cfg.model[k] for k in ("d_model", "num_heads", "num_layers", "d_ff", "attention", "dtype")},
            "seq_len": cfg.data.seq_len, "global_batch": cfg.train.global_batch, "steps_per_window": steps,
            "windows": windows}
  result["jax"] = _worker("jax", config_spec, overrides, steps, windows)
  result["input_pipeline_ratio"] = result["jax"]["input_pipeline_ratio"]
  if compare_torch:
    result["torch"] = _worker("torch", config_spec, overrides, steps, windows)
    result["ratio_vs_torch"] = result["jax"]["tokens_per_second"] / result["torch"]["tokens_per_second"]
    result["rss_ratio_vs_torch"] = result["jax"]["peak_host_rss_gib"] / result["torch"]["peak_host_rss_gib"]
  if output:
    with open(output, "w") as f:
      json.dump(result, f, indent=1)
  return result


def format_table(r: dict) -> str:
  rows = [("framework", "tokens/s (median)", "min..max", "steps/s", "compile s", "MFU", "peak RSS GiB")]
  for fw in ("jax", "torch"):
    if fw not in r:
      continue
    x = r[fw]
    mfu = f"{100 * x['mfu']:.1f}%" if x.get("mfu") is not None else "-"
    rows.append((("dnajax (JAX)" if fw == "jax" else f"PyTorch {x['torch_version']}"),
                 f"{x['tokens_per_second']:,.0f}", f"{x['tokens_per_second_min']:,.0f}..{x['tokens_per_second_max']:,.0f}",
                 f"{x['steps_per_second']:.2f}", f"{x['compile_seconds']:.1f}" if "compile_seconds" in x else "-",
                 mfu, f"{x['peak_host_rss_gib']:.2f}"))
  widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
  lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
  j = r["jax"]
  lines.append(f"config {r['config']} {' '.join(r['overrides'])}: {j['parameters']:,} parameters, seq {r['seq_len']}, "
               f"batch {r['global_batch']}, {j['device_count']} x {j['device_kind']}")
  lines.append(f"model FLOPs/token {j['flops_per_token']:,.0f}; achieved {j['achieved_flops'] / 1e9:.1f} GFLOP/s; "
               f"peak {(j['peak_flops'] or 0) / 1e9:.1f} GFLOP/s ({j['peak_flops_source']})")
  lines.append(f"input pipeline (one core): {j['input_pipeline_tokens_per_second']:,.0f} tokens/s = "
               f"{r['input_pipeline_ratio']:.1f}x the step's consumption")
  if "ratio_vs_torch" in r:
    lines.append(f"dnajax / PyTorch: tokens/s {r['ratio_vs_torch']:.2f}x, peak RSS {r['rss_ratio_vs_torch']:.2f}x")
  return "\n".join(lines)


if __name__ == "__main__":  # worker entry point: python -m dnajax.bench FRAMEWORK CONFIG OVERRIDES STEPS WINDOWS
  from dnajax import config as _config
  fw, spec, ov, n_steps, n_windows = sys.argv[1:6]
  _cfg = _config.load(spec, [tuple(x) for x in json.loads(ov)])
  res = (run_jax if fw == "jax" else run_torch)(_cfg, int(n_steps), int(n_windows))
  print(json.dumps(res))
