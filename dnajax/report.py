"""`dnajax report`: training and validation curves of a run as PNG plots, with the baselines and the Bayes limit
as horizontal lines where known, plus a short Markdown summary. Reads only the run's own `metrics.jsonl`."""

from __future__ import annotations

import json
import math
import os

from dnajax import io
from dnajax.errors import UserError


def read_metrics(workdir: str) -> dict[str, list[dict]]:
  """{"train": [...], "val": [...]} sorted by step; a step logged twice (a resumed run) keeps its last record."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.isfile(path):
    raise UserError(f"{workdir}: no metrics.jsonl; pass the --workdir of a training run")
  by_key: dict[tuple[str, int], dict] = {}
  with open(path) as f:
    for n, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        rec = json.loads(line)
        by_key[(rec["split"], int(rec["step"]))] = rec
      except (ValueError, KeyError, TypeError):
        if n == 1 or line.endswith("\n"):  # a torn last line is what a killed run leaves: skip it quietly
          raise UserError(f"{path}: line {n} is not a metrics record; is this a dnajax workdir?") from None
  out = {"train": [], "val": []}
  for (split, _), rec in sorted(by_key.items(), key=lambda kv: kv[0][1]):
    out.setdefault(split, []).append(rec)
  if not out["train"] and not out["val"]:
    raise UserError(f"{path}: no training records yet; run dnajax train first")
  return out


def reference_lines(val: list[dict], metric: str) -> list[tuple[str, float]]:
  """(label, value) of the horizontal lines for `metric` (masked_accuracy or loss) from the last validation."""
  if not val:  # no validation yet: curves only
    return []
  last, lines = val[-1], []
  if "bayes" in last:
    lines.append(("Bayes-optimal", last["bayes"][metric]))
  kmer = last.get("baselines", {}).get("kmer")
  if kmer:
    lines.append((f"k-mer context model (k={kmer.get('max_k', '?')})", kmer[metric]))
  if metric == "masked_accuracy":
    b = last.get("baselines", {})
    if "majority_base" in b:
      lines.append(("majority base", b["majority_base"]))
    lines.append(("uniform", 0.25))
  return [(label, v) for label, v in lines if isinstance(v, (int, float)) and math.isfinite(v)]


def _plot(path: str, metric: str, title: str, ylabel: str, m: dict[str, list[dict]]) -> None:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
  for split, style in (("train", dict(color="tab:blue", alpha=0.6, lw=1)),
                       ("val", dict(color="tab:orange", marker="o", lw=2))):
    pts = [(r["step"], r[metric]) for r in m[split] if isinstance(r.get(metric), (int, float))]
    if pts:
      label = "training (80/10/10 masks: easier, not comparable)" if split == "train" else "validation"
      ax.plot(*zip(*pts), label=label, **style)
  for (label, value), color in zip(reference_lines(m["val"], metric), ("black", "tab:green", "tab:red", "grey")):
    ax.axhline(value, ls="--", lw=1, color=color, label=f"{label} {value:.4f}")
  ax.set(xlabel="step", ylabel=ylabel, title=title)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  tmp = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".tmp.png")
  fig.savefig(tmp)
  plt.close(fig)
  os.replace(tmp, path)


def summary_markdown(workdir: str, m: dict[str, list[dict]], images: list[str]) -> str:
  lines = [f"# dnajax run `{os.path.abspath(workdir)}`", ""]
  cfg_path = os.path.join(workdir, "config.json")
  if os.path.isfile(cfg_path):
    with open(cfg_path) as f:
      cfg = json.load(f)
    mo, d, t = cfg.get("model", {}), cfg.get("data", {}), cfg.get("train", {})
    lines += [f"Model d_model {mo.get('d_model')}, {mo.get('num_heads')} heads, {mo.get('num_layers')} layers, "
              f"d_ff {mo.get('d_ff')}; data {', '.join(map(str, d.get('sources', [])))}, windows {d.get('seq_len')}"
              + (f" (curriculum {d['curriculum']})" if d.get("curriculum") else "")
              + f", mask rate {d.get('mask_rate')}"
              + (f"-{d['mask_rate_max']}" if d.get("mask_rate_max", 0) > d.get("mask_rate", 0) else "")
              + f"; {t.get('steps')} steps of {t.get('global_batch')} windows.", ""]
  if m["train"]:
    last = m["train"][-1]
    lines.append(f"Last training window (step {last['step']}): loss {last['loss']:.4f}, masked accuracy "
                 f"{last['masked_accuracy']:.4f}, {last.get('tokens_per_second', float('nan')):,.0f} tokens/s.")
    lines.append("")
  if m["val"]:
    v = m["val"][-1]
    lines += [f"Validation at step {v['step']} ({v.get('num_masked', '?')} masked bases):", "",
              "| predictor | masked accuracy | loss (nats/base) |", "|---|---|---|",
              f"| this model | {v['masked_accuracy']:.4f} | {v['loss']:.4f} |"]
    if "bayes" in v:
      lines.append(f"| Bayes-optimal (exact) | {v['bayes']['masked_accuracy']:.4f} | {v['bayes']['loss']:.4f} |")
    b = v.get("baselines", {})
    if "kmer" in b:
      lines.append(f"| k-mer context model | {b['kmer']['masked_accuracy']:.4f} | {b['kmer']['loss']:.4f} |")
    if "majority_base" in b:
      lines.append(f"| majority base | {b['majority_base']:.4f} | - |")
    lines += [f"| uniform | 0.2500 | {math.log(4):.4f} |", ""]
    if "fraction_of_bayes" in v:
      lines += [f"The model reaches {100 * v['fraction_of_bayes']:.1f}% of the Bayes-optimal accuracy (excess loss "
                f"{v['excess_loss']:.4f} nats/base).", ""]
    best = max(m["val"], key=lambda r: r["masked_accuracy"])
    if best is not v:
      lines += [f"Best validation accuracy {best['masked_accuracy']:.4f} at step {best['step']}.", ""]
  lines += [f"![{os.path.splitext(name)[0]}]({name})" for name in images]
  return "\n".join(lines) + "\n"


def report(workdir: str, output: str | None = None) -> tuple[str, list[str]]:
  """Write the plots beside `output` (default WORKDIR/report.md) and the Markdown; returns their paths."""
  m = read_metrics(workdir)
  output = output or os.path.join(workdir, "report.md")
  out_dir = os.path.dirname(os.path.abspath(output))
  try:
    os.makedirs(out_dir, exist_ok=True)
  except OSError as e:
    raise UserError(f"{out_dir}: cannot create the output directory ({e.strerror}); pass another --output") from None
  stem = os.path.splitext(os.path.basename(output))[0]
  images = []
  for metric, title, ylabel in (("loss", "Masked cross-entropy", "nats per masked base"),
                                ("masked_accuracy", "Masked-base accuracy", "accuracy")):
    name = f"{stem}_{metric}.png"
    _plot(os.path.join(out_dir, name), metric, title, ylabel, m)
    images.append(name)
  io.atomic_write_text(output, summary_markdown(workdir, m, images))
  return output, [os.path.join(out_dir, n) for n in images]
