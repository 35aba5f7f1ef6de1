"""Fuzz the input path: N generated files through the readers and `prepare` in-process, a few dozen through the
`dnajax prepare` CLI, and the peak memory of preparing one very long record. Prints the counts.

  python -m benchmarks.fuzz_inputs [--cases 10000] [--cli 40] [--long-mb 50]   (from the repository root)
"""

import argparse
import collections
import os
import random
import subprocess
import sys
import tempfile
import time

from hypothesis import HealthCheck, given, settings

from benchmarks.fuzz_strategies import check, files


def in_process(n: int) -> collections.Counter:
  counts = collections.Counter()

  @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
  @given(files())
  def one(case):
    with tempfile.TemporaryDirectory() as d:
      counts[check(*case, d)] += 1

  one()
  return counts


def through_cli(n: int) -> collections.Counter:
  counts = collections.Counter()
  cases = []

  @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
  @given(files())
  def collect(case):
    cases.append(case)

  collect()
  for name, data in random.Random(0).sample(cases, min(n, len(cases))):
    with tempfile.TemporaryDirectory() as d:
      path = os.path.join(d, name)
      with open(path, "wb") as f:
        f.write(data)
      r = subprocess.run([sys.executable, "-m", "dnajax.cli", "prepare", "--input", path, "--output",
                          os.path.join(d, "c"), "--min-len", "8"], capture_output=True, text=True)
      lines = r.stderr.strip().splitlines()
      if r.returncode == 0 and os.path.isfile(os.path.join(d, "c", "index.json")):
        counts["ok"] += 1
      elif r.returncode == 2 and len(lines) == 1 and lines[0].startswith("dnajax: error:") \
          and not os.path.exists(os.path.join(d, "c")):
        counts["rejected (one line, exit 2)"] += 1
      else:
        counts["BAD: " + (lines[-1] if lines else f"exit {r.returncode}")] += 1
  return counts


def long_record(mb: int) -> dict:
  with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "long.fa")
    rng = random.Random(0)
    with open(path, "w") as f:
      f.write(">long\n")
      for _ in range(mb * 10**6 // 100_000):
        chunk = "".join(rng.choices("ACGT", k=100_000))
        f.write("\n".join(chunk[i:i + 80] for i in range(0, len(chunk), 80)) + "\n")
    size = os.path.getsize(path)
    code = ("import resource, sys; from dnajax import cli; rc = cli.main(['prepare', '--input', sys.argv[1], "
            "'--output', sys.argv[2]]); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024); "
            "sys.exit(rc)")
    base = subprocess.run([sys.executable, "-c", "import resource; from dnajax import cli; from dnajax.apps import "
                           "prepare; print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)"],
                          capture_output=True, text=True)
    t0 = time.time()
    r = subprocess.run([sys.executable, "-c", code, path, os.path.join(d, "c")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    peak = int(r.stdout.strip().splitlines()[-1])
    idle = int(base.stdout.strip())
    return {"file_bytes": size, "peak_rss_bytes": peak, "import_rss_bytes": idle,
            "ratio": (peak - idle) / size, "seconds": time.time() - t0}


def main(argv: list[str] | None = None) -> None:
  """The benchmark program: runs the three parts named by the arguments and prints their counts."""
  ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
  ap.add_argument("--cases", type=int, default=10_000)
  ap.add_argument("--cli", type=int, default=40)
  ap.add_argument("--long-mb", type=int, default=50)
  a = ap.parse_args(argv)
  t0 = time.time()
  c = in_process(a.cases)
  print(f"in-process: {sum(c.values())} generated files in {time.time() - t0:.0f} s: " +
        ", ".join(f"{k} {v}" for k, v in sorted(c.items())) + "; tracebacks 0 (any would have stopped the run)")
  if a.cli:
    t0 = time.time()
    c = through_cli(a.cli)
    print(f"CLI (`dnajax prepare` subprocesses): {sum(c.values())} files in {time.time() - t0:.0f} s: " +
          ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
  if a.long_mb:
    r = long_record(a.long_mb)
    print(f"one {r['file_bytes'] / 1e6:.0f} MB record: prepared in {r['seconds']:.1f} s, peak RSS "
          f"{r['peak_rss_bytes'] / 2**20:.0f} MiB ({r['import_rss_bytes'] / 2**20:.0f} MiB after imports) = "
          f"{r['ratio']:.1f}x the file size above the imports")


if __name__ == "__main__":
  main()
