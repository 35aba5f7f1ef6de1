"""The PyTorch reference of dnajax's encoder, trained on the same batches, for `benchmarks/compare_torch.py`.

Run as a worker in its own process (`python -m benchmarks.torch_reference CONFIG OVERRIDES STEPS WINDOWS`, printing
one JSON line), so its peak RSS is its own and the JAX process never imports torch. Needs `pip install
'dnajax[bench]'` (torch 2.13 CPU). Not part of the installed package.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

# PyTorch runs with the allocator and dispatch its users get: dnajax's CPU host set-up (dnajax/runtime.py) is off in
# this process, which imports dnajax only for the config, the batches and the FLOP count.
os.environ["DNAJAX_HOST_ALLOCATOR"] = "system"

import jax  # noqa: E402
import numpy as np  # noqa: E402

from dnajax import config as config_lib  # noqa: E402
from dnajax.apps import bench  # noqa: E402
from dnajax.data import masking, tokens  # noqa: E402
from dnajax.data import sampler as sampler_lib  # noqa: E402


def run_torch(cfg, steps: int, windows: int) -> dict:
  """The same architecture in idiomatic PyTorch: nn.TransformerEncoder (pre-LN, GELU, batch_first), a learned
  position embedding (nn.TransformerEncoder has no RoPE; the cost difference is negligible), AdamW, the same
  batches and masked cross-entropy."""
  import torch
  from torch import nn

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
    sampler = sampler_lib.WindowSampler(bench.make_corpus(L, tmp), L, seed=0)
    # The masks dnajax's train step draws for these windows.
    host = [jax.device_get(masking.mask_for_training(sampler.rows(s, range(B))["ids"], 0, s, cfg.data.mask_rate,
                                                     cfg.data.mask_rate_max)) for s in range(4)]
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
  out = bench.summarise_windows(times, steps, B * L)
  out.update(framework="torch", torch_version=torch.__version__, threads=torch.get_num_threads(),
             parameters=sum(p.numel() for p in model.parameters()), peak_host_rss_gib=bench.peak_rss_gib())
  return out


if __name__ == "__main__":
  _spec, _ov, _steps, _windows = sys.argv[1:5]
  print(json.dumps(run_torch(config_lib.load(_spec, [tuple(x) for x in json.loads(_ov)]), int(_steps),
                             int(_windows))))
