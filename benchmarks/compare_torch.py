"""dnajax against an idiomatic PyTorch reference of the same model, on the same batches, back to back.

    python -m benchmarks.compare_torch --config configs/small.py [--steps 10] [--windows 5] [--output r.json]
        [--config.KEY=VALUE ...]

Runs `dnajax bench`'s measurement and `benchmarks/torch_reference.py` each in its own process and prints one table
with the tokens/s and peak-RSS ratios. A benchmark program (never a test); needs `pip install 'dnajax[bench]'`.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

from dnajax.apps import bench
from dnajax.data import writers
from dnajax.evaluation import render


def compare(config: str, overrides: list, steps: int, windows: int) -> dict:
  """`bench.bench`'s result with "torch", "ratio_vs_torch" and "rss_ratio_vs_torch" added."""
  result = bench.bench(config, overrides, steps, windows)
  result["torch"] = bench.worker("benchmarks.torch_reference", config, overrides, steps, windows)
  result["ratio_vs_torch"] = result["jax"]["tokens_per_second"] / result["torch"]["tokens_per_second"]
  result["rss_ratio_vs_torch"] = result["jax"]["peak_host_rss_gib"] / result["torch"]["peak_host_rss_gib"]
  return result


def main(argv: list[str]) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--config", default="small")
  p.add_argument("--steps", type=int, default=10)
  p.add_argument("--windows", type=int, default=5)
  p.add_argument("--output")
  args, rest = p.parse_known_args(argv)
  overrides = [tuple(a[len("--config."):].split("=", 1)) for a in rest if a.startswith("--config.") and "=" in a]
  if len(overrides) != len(rest):
    p.error(f"unrecognised arguments: {' '.join(rest)} (overrides are --config.KEY=VALUE)")
  if importlib.util.find_spec("torch") is None:
    print("compare_torch: PyTorch is not installed; pip install 'dnajax[bench]' (torch 2.13 CPU)", file=sys.stderr)
    return 2
  result = compare(args.config, overrides, args.steps, args.windows)
  if args.output:
    writers.atomic_write_text(args.output, render.to_json(result) + "\n")
  print(bench.format_table(result))
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
