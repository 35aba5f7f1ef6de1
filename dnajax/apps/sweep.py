"""`dnajax sweep`: a grid of config changes trained as ordinary runs in one directory, then one table and plots.

Each run is `dnajax train` in its own folder SWEEP/<name> (config, checkpoints, metrics, train.log), started as a
process, `--parallel N` at once. Rerunning the command skips finished runs and resumes unfinished ones from their
checkpoints (a resumed run continues bit-identically), so a preempted or killed sweep finishes with the numbers of an
uninterrupted one. On accelerators run one sweep member per host or slice through the launch scripts (e.g. a SLURM
array over `--grid` values) rather than `--parallel`.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import signal
import statistics
import subprocess
import sys
import time

from tqdm import tqdm

from dnajax.data import rundir, writers
from dnajax.errors import UserError, warn
from dnajax.training import sweep

CONFIG_OVERRIDES = True


def add_arguments(p) -> None:
  p.epilog = "Fixed config changes for every run: --config.KEY=VALUE (as for dnajax train)"
  p.add_argument("--config", default="default", help="the config every run starts from (default: default)")
  p.add_argument("--workdir", required=True, help="the sweep directory: one folder per run, results.* and *.png")
  p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                 help="a config key and its values (repeatable; the runs are all combinations)")
  p.add_argument("--zip", action="store_true", help="pair the --grid lists value by value instead of combining them")
  p.add_argument("--seeds", default="0", help="train.seed values, e.g. 0,1,2 (default: 0)")
  p.add_argument("--data", nargs="+", help="FASTA/GenBank files or a prepared corpus for every run")
  p.add_argument("--parallel", type=int, default=1, help="runs trained at once on this machine (default: 1)")
  p.add_argument("--equal-tokens", action="store_true",
                 help="set each run's train.steps so that every run sees the base config's training tokens")
  p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _command(args, run: sweep.Run, path: str) -> list[str]:
  data = ["--data", *args.data] if args.data else []
  return [sys.executable, "-m", "dnajax.cli", "train", "--config", args.config, "--workdir", path, *data,
          *(f"--config.{k}={v}" for k, v in run.overrides), "--no-progress"]


def _finished(proc, run: sweep.Run, path: str, log, t0: float) -> tuple[sweep.Run, str]:
  """Close the run's log and add this attempt's wall time to its sweep record."""
  log.close()
  record = rundir.read_sweep_run(path)
  rundir.write_sweep_run(path, {"wall_seconds": record.get("wall_seconds", 0.0) + time.time() - t0,
                                "attempts": record.get("attempts", 0) + 1})
  return run, path


def _train_all(args, todo: list[sweep.Run]) -> list[str]:
  """Train `todo`, `args.parallel` processes at once; returns one line per run that failed. SIGINT/SIGTERM stop
  every run (each saves a checkpoint) and raise KeyboardInterrupt."""
  pending, running, failed = list(todo), {}, []
  stop = []
  handlers = {s: signal.signal(s, lambda sig, _: stop.append(sig)) for s in (signal.SIGINT, signal.SIGTERM)}
  bar = tqdm(total=len(todo), desc="sweep", unit="run", disable=args.no_progress)
  try:
    while (pending or running) and not stop:
      while pending and len(running) < args.parallel:
        run = pending.pop(0)
        path = os.path.join(args.workdir, run.name)
        os.makedirs(path, exist_ok=True)
        log = open(rundir.train_log(path), "a")
        try:  # held by the run's process too (it inherits the file): another sweep on this folder skips the run
          fcntl.flock(log, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
          log.close()
          failed.append(f"{run.name}: being trained by another process (another sweep on this --workdir)")
          bar.update(1)
          continue
        proc = subprocess.Popen(_command(args, run, path), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        running[proc] = (run, path, log, time.time())
      time.sleep(0.2)
      for proc in [p for p in running if p.poll() is not None]:
        run, path = _finished(proc, *running.pop(proc))
        if proc.returncode != 0 or sweep.finished(path, run.cfg) is None:
          failed.append(f"{run.name}: exit code {proc.returncode}; see {rundir.train_log(path)}")
        bar.update(1)
  finally:
    for proc in running:
      proc.send_signal(signal.SIGTERM)  # each run saves its checkpoint and exits
    for proc, item in running.items():
      proc.wait()
      _finished(proc, *item)
    bar.close()
    for s, h in handlers.items():
      signal.signal(s, h)
  if stop:
    raise KeyboardInterrupt
  return failed


def _csv(rows: list[dict], columns: list[str]) -> str:
  out = io.StringIO()
  w = csv.DictWriter(out, columns, lineterminator="\n")
  w.writeheader()
  for r in rows:
    w.writerow({c: _cell(c, r[c]) for c in columns})
  return out.getvalue()


def _markdown(rows: list[dict], keys: list[str], columns: list[str]) -> str:
  lines = ["# Sweep results", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  lines += ["| " + " | ".join(_cell(c, r[c]) for c in columns) + " |" for r in rows]
  groups: dict[tuple, list[dict]] = {}
  for r in rows:
    groups.setdefault(tuple(r[k] for k in keys), []).append(r)
  metrics = ("val_masked_accuracy", "val_loss", "fraction_of_bayes", "kmer_masked_accuracy")
  lines += ["", "Mean +- standard deviation over seeds per configuration (std over one seed: -):", "",
            "| " + " | ".join(keys) + " | seeds | " + " | ".join(metrics) + " |",
            "|" + "---|" * (len(keys) + 1 + len(metrics))]
  for combo, rs in groups.items():
    lines.append("| " + " | ".join(map(str, combo)) + f" | {len(rs)} | "
                 + " | ".join(_mean_std([r[m] for r in rs]) for m in metrics) + " |")
  return "\n".join(lines) + "\n"


def _mean_std(values: list) -> str:
  """`mean +- std` of the values that are not None ("-" for the std of one value; empty for none)."""
  xs = [x for x in values if x is not None]
  if not xs:
    return ""
  return f"{statistics.mean(xs):.4f} +- {statistics.stdev(xs):.4f}" if len(xs) > 1 else f"{xs[0]:.4f} +- -"


def _cell(column: str, x) -> str:
  if x is None:
    return ""
  return f"{x:.1f}" if column == "wall_seconds" else f"{x:.4f}" if isinstance(x, float) else str(x)


def _figure():
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  return plt, *plt.subplots(figsize=(7, 4.2), dpi=110)


def _png(plt, fig) -> bytes:
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format="png")
  plt.close(fig)
  return buf.getvalue()


def _by_parameter(rows: list[dict], keys: list[str], key: str) -> bytes:
  """Final validation masked accuracy (mean over seeds, +- std) against `key`, one line per value of the other swept
  keys; the Bayes limit (where known) and the k-mer baseline dashed."""
  plt, fig, ax = _figure()
  xs = list(dict.fromkeys(r[key] for r in rows))
  numeric = all(_is_number(x) for x in xs)
  others = [k for k in keys if k != key]
  lines: dict[tuple, dict] = {}
  for r in rows:
    lines.setdefault(tuple(r[k] for k in others), {}).setdefault(r[key], []).append(r["val_masked_accuracy"])
  for label, points in lines.items():
    order = sorted(points, key=lambda x: float(x) if numeric else xs.index(x))
    pos = [float(x) if numeric else xs.index(x) for x in order]
    mean = [statistics.mean(points[x]) for x in order]
    std = [statistics.stdev(points[x]) if len(points[x]) > 1 else 0.0 for x in order]
    name = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in zip(others, label)) or "runs"
    ax.errorbar(pos, mean, yerr=std, marker="o", capsize=3, label=name)
  bayes = [r["val_masked_accuracy"] / r["fraction_of_bayes"] for r in rows if r["fraction_of_bayes"]]
  if bayes:
    ax.axhline(statistics.mean(bayes), ls="--", color="black", lw=1,
               label=f"Bayes-optimal {statistics.mean(bayes):.4f}")
  kmer = [r["kmer_masked_accuracy"] for r in rows if r["kmer_masked_accuracy"] is not None]
  if kmer:
    ax.axhline(statistics.mean(kmer), ls="--", color="grey", lw=1,
               label=f"k-mer context model {statistics.mean(kmer):.4f}")
  if not numeric:
    ax.set_xticks(range(len(xs)), xs)
  ax.set(xlabel=key, ylabel="validation masked accuracy", title=f"Masked accuracy against {key}")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return _png(plt, fig)


def _curves(curves: dict[str, list[tuple[float, float]]]) -> bytes:
  plt, fig, ax = _figure()
  for name, pts in curves.items():
    if pts:
      ax.plot(*zip(*pts), marker="o", ms=3, lw=1.2, label=name)
  ax.set(xlabel="training tokens", ylabel="validation masked accuracy", title="Validation curves of every run")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=6)
  return _png(plt, fig)


def _is_number(x) -> bool:
  try:
    float(x)
    return True
  except (TypeError, ValueError):
    return False


def main(args, overrides) -> int:
  if args.parallel < 1:
    raise UserError(f"--parallel {args.parallel}: must be an integer >= 1")
  grid = sweep.parse_grid(args.grid)
  seeds = sweep.parse_seeds(args.seeds)
  if not args.workdir:
    raise UserError("--workdir is empty; pass a directory for the sweep")
  if os.path.exists(args.workdir) and not os.path.isdir(args.workdir):
    raise UserError(f"--workdir {args.workdir}: a file; pass a directory for the sweep")
  writers.check_outputs([("--workdir", os.path.join(args.workdir, "results.csv"))])
  for path in args.data or ():
    if not path.startswith("synthetic:") and not os.path.exists(path):
      raise UserError(f"--data {path}: no such file or directory")
  runs = sweep.plan(args.config, list(overrides), grid, seeds, args.zip, args.equal_tokens)
  for run in runs:
    diff = None if run.skipped else sweep.config_difference(os.path.join(args.workdir, run.name), run.cfg)
    if diff:
      raise UserError(f"{os.path.join(args.workdir, run.name)}: holds a run of another config ({diff}); use a new "
                      "--workdir, or delete that folder to train it again")
  valid = [r for r in runs if not r.skipped]  # never empty: `plan` refuses a value no combination takes
  for run in runs:
    if run.skipped:
      print(f"skipped: {sweep.label(run)}: {run.skipped}", file=sys.stderr)
  todo = [r for r in valid if sweep.finished(os.path.join(args.workdir, r.name), r.cfg) is None]
  print(f"dnajax sweep: {len(valid)} run{'s' if len(valid) > 1 else ''} ({len(valid) - len(todo)} finished, "
        f"{len(todo)} to train"
        + (f", {args.parallel} at once" if args.parallel > 1 else "") + f") in {args.workdir}", file=sys.stderr)
  try:
    failed = _train_all(args, todo)
  except KeyboardInterrupt:
    print("dnajax sweep: stopped; every started run saved a checkpoint - rerun the same command to resume",
          file=sys.stderr)
    return 130
  for line in failed:
    warn(f"run failed: {line}")
  done = [(r, m) for r in valid if (m := sweep.finished(os.path.join(args.workdir, r.name), r.cfg)) is not None]
  if not done:
    raise UserError(f"{args.workdir}: no run finished; see the train.log of each run")
  keys = [k for k, _ in grid]
  rows = [sweep.result_row(r, m, rundir.read_sweep_run(os.path.join(args.workdir, r.name)).get("wall_seconds", 0.0))
          for r, m in done]
  columns = keys + list(sweep.RESULT_COLUMNS)
  table = _markdown(rows, keys, columns)
  files = [("results.csv", os.path.join(args.workdir, "results.csv"), _csv(rows, columns)),
           ("results.md", os.path.join(args.workdir, "results.md"), table),
           ("curves.png", os.path.join(args.workdir, "curves.png"),
            _curves({r.name: sweep.validation_curve(m, r.cfg) for r, m in done}))]
  files += [(f"{k}.png", os.path.join(args.workdir, f"{k}.png"), _by_parameter(rows, keys, k)) for k in keys]
  writers.write_all(files)
  sys.stdout.write(table)
  print(f"dnajax sweep: wrote {', '.join(name for name, _, _ in files)} to {args.workdir}", file=sys.stderr)
  return 1 if failed else 0
