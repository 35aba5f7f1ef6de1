"""Genome-scale `dnajax prepare`: wall time, bases/s and peak memory on synthetic genomes of N Gb (a program that
prints a table, not a test).

  python -m benchmarks.prepare_genome [--sizes 0.4 1.6 3.2] [--records 24] [--dir DIR] [--keep]
      [--baseline-src DIR] [--workers N] [--output results.json]

For each size it writes a FASTA genome of SIZE x 1e9 bases in --records records of equal length (60-column lines,
about half the bases soft-masked in lowercase runs of 50-5,000 bases, a 50-kb run of N - an assembly gap - in the
middle of every record and short N runs here and there), then runs `dnajax prepare --input FASTA --output CORPUS` in
a fresh process and prints the wall time, the bases per second (of the input) and the peak resident memory of the
largest dnajax process (`ru_maxrss` of the process tree, as `/usr/bin/time -v` reports it). --baseline-src runs the
same command with the dnajax source tree at DIR (e.g. a `git worktree` of an older commit) first, for a before/after
row. Needs about 3.1x SIZE GB of free disk under --dir (default: a temporary directory, removed unless --keep).

Measured on the 2-core AMD EPYC machine of docs/verbs/prepare.md: see the table there.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

LINE = 60
POOL = 1 << 24  # random soft-masked bases reused at random offsets: writing stays fast
GAP = 50_000  # the N run in the middle of every record


def _pool(rng: np.random.Generator) -> np.ndarray:
  """uint8[POOL] letters: A/C/G/T, lowercase in runs of 50-5,000 bases (about half), a short N run every ~200 kb."""
  pool = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, POOL)]
  at = 0
  while at < POOL:
    at += int(rng.integers(50, 5000))
    n = int(rng.integers(50, 5000))
    pool[at:at + n] |= 0x20  # lowercase
    at += n
  for at in rng.integers(0, POOL - 20, POOL // 200_000):
    pool[at:at + int(rng.integers(1, 20))] = ord("N")
  return pool


def write_genome(path: str, gb: float, records: int, seed: int = 0) -> int:
  """Writes the synthetic genome FASTA; returns its number of bases."""
  rng = np.random.default_rng(seed)
  pool = _pool(rng)
  per = int(gb * 1e9) // records
  block = (1 << 22) // LINE * LINE  # bases written at a time
  with open(path, "wb") as f:
    for r in range(records):
      f.write(f">chr{r + 1} synthetic record {r + 1} of {records}\n".encode())
      written = 0
      while written < per:
        n = min(block, per - written)
        start = int(rng.integers(0, POOL - n))
        chunk = pool[start:start + n].copy()
        mid = per // 2 - GAP // 2
        lo, hi = max(mid, written), min(mid + GAP, written + n)
        if lo < hi:
          chunk[lo - written:hi - written] = ord("N")
        rows = -(-n // LINE)
        text = np.full((rows, LINE + 1), ord("\n"), np.uint8)
        padded = np.zeros(rows * LINE, np.uint8)
        padded[:n] = chunk
        text[:, :LINE] = padded.reshape(rows, LINE)
        if n % LINE:  # the last line of the record is shorter
          f.write(text[:-1].tobytes())
          f.write(chunk[(rows - 1) * LINE:].tobytes() + b"\n")
        else:
          f.write(text.tobytes())
        written += n
  return per * records


def run_prepare(fasta: str, out: str, src: str | None, workers: int | None) -> dict:
  """`dnajax prepare` in a fresh process tree: wall s and the peak RSS (GiB) of its largest process."""
  # The source tree at `src` goes first on sys.path, past an editable install's import hook.
  head = (f"import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
          f"sys.path.insert(0, {os.path.abspath(src)!r}); " if src else "")
  cmd = [sys.executable, "-c", head + "from dnajax.cli import main; raise SystemExit(main())", "prepare", "--input",
         fasta, "--output", out, "--force"] + (["--workers", str(workers)] if workers else [])
  probe = ("import resource, subprocess, sys, time, json; t = time.perf_counter(); "
           "rc = subprocess.run(sys.argv[1:]).returncode; w = time.perf_counter() - t; "
           "print(json.dumps({'rc': rc, 'wall_s': w, "
           "'peak_rss_kib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))")
  res = subprocess.run([sys.executable, "-c", probe, *cmd], capture_output=True, text=True)
  if res.returncode:
    raise SystemExit(f"prepare_genome: the probe failed: {res.stderr.strip().splitlines()[-1:]}")
  row = json.loads(res.stdout.strip().splitlines()[-1])
  if row["rc"]:
    raise SystemExit(f"prepare_genome: dnajax prepare exited {row['rc']}: {res.stderr.strip().splitlines()[-1:]}")
  return row


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--sizes", type=float, nargs="+", default=[0.4, 1.6, 3.2], help="genome sizes in Gb")
  ap.add_argument("--records", type=int, default=24)
  ap.add_argument("--dir", help="where the genomes and corpora go (default: a temporary directory)")
  ap.add_argument("--keep", action="store_true", help="keep the genomes and corpora")
  ap.add_argument("--baseline-src", help="a dnajax source tree to time first (before/after rows)")
  ap.add_argument("--workers", type=int, help="prepare --workers")
  ap.add_argument("--output", help="write the rows as JSON here")
  args = ap.parse_args(argv)
  work = args.dir or tempfile.mkdtemp(prefix="prepare-genome-")
  os.makedirs(work, exist_ok=True)
  rows = []
  print("| genome | records | code | wall s | Mb/s | peak RSS GiB |")
  print("|---|---|---|---|---|---|")
  try:
    for gb in args.sizes:
      fasta = os.path.join(work, f"genome_{gb:g}gb.fa")
      t = time.perf_counter()
      bases = write_genome(fasta, gb, args.records)
      print(f"(wrote {fasta}: {bases:,} bases, {os.path.getsize(fasta) / 1e9:.2f} GB in "
            f"{time.perf_counter() - t:.0f} s)", file=sys.stderr)
      for label, src in ([("before", args.baseline_src)] if args.baseline_src else []) + [("this", None)]:
        out = os.path.join(work, f"corpus_{gb:g}gb_{label}")
        shutil.rmtree(out, ignore_errors=True)  # (an existing corpus of the same genome would be reused)
        r = run_prepare(fasta, out, src, args.workers)
        row = {"gb": gb, "records": args.records, "code": label, "bases": bases, "wall_s": round(r["wall_s"], 1),
               "mb_per_s": round(bases / 1e6 / r["wall_s"], 1),
               "peak_rss_gib": round(r["peak_rss_kib"] / 2**20, 2)}
        rows.append(row)
        print(f"| {gb:g} Gb | {args.records} | {label} | {row['wall_s']} | {row['mb_per_s']} | "
              f"{row['peak_rss_gib']} |", flush=True)
        shutil.rmtree(out, ignore_errors=True) if not args.keep else None
      if not args.keep:
        os.remove(fasta)
  finally:
    if not args.keep and not args.dir:
      shutil.rmtree(work, ignore_errors=True)
  if args.output:
    with open(args.output, "w") as f:
      json.dump({"rows": rows}, f, indent=1)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
