#!/usr/bin/env bash
# Benchmark dnajax on one NVIDIA GPU in one command: installs jax[cuda13] into .venv if needed, then runs
# `dnajax bench` for configs/base.py as shipped (bfloat16, seq 1024, batch 256, grad_accum=auto, cuDNN attention)
# and configs/small.py, writing JSON beside the printed tables.
# Needs: an NVIDIA GPU with CUDA 13 drivers; Python 3.11.
# Usage:  launch/bench_gpu.sh [OUTPUT_DIR]      (default bench-gpu/)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-bench-gpu}
cd "$here"
if [ ! -x .venv/bin/dnajax ]; then
  python3.11 -m venv .venv
  .venv/bin/pip install -q -e .
fi
.venv/bin/python -c 'import jax, sys; sys.exit(0 if jax.default_backend() == "gpu" else 1)' 2>/dev/null \
  || .venv/bin/pip install -q -U "jax[cuda13]"
.venv/bin/python -c 'import jax; assert jax.default_backend() == "gpu", jax.devices(); print(jax.devices())'
mkdir -p "$out"
.venv/bin/dnajax bench --config configs/base.py --steps 10 --windows 3 --output "$out/base_shipped.json"
.venv/bin/dnajax bench --config configs/small.py --steps 20 --windows 5 --output "$out/small_bf16.json" \
  --config.model.dtype=bfloat16 --config.train.global_batch=128
.venv/bin/dnajax bench --config configs/small.py --steps 20 --windows 5 --output "$out/small_fp32.json" \
  --config.train.global_batch=128
