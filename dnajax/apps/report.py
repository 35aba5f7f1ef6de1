"""`dnajax report`: training and validation curves of a run as PNG plots, with the baselines and the Bayes limit
as horizontal lines where known, plus a short Markdown summary. Reads only the run's own `metrics.jsonl`."""

from __future__ import annotations

import io
import math
import os

from dnajax.data import rundir, writers
from dnajax.evaluation import render
from dnajax.training.writer import read_metrics

# metric -> (training series, validation series): the training objective is the full-vocabulary cross-entropy on
# 80/10/10 inputs, easier than validation's all-[MASK] NLL over A/C/G/T, so the two are drawn but not compared.
SERIES = {"loss": ("train/mlm_cross_entropy", "val/loss"),
          "masked_accuracy": ("train/masked_accuracy", "val/masked_accuracy")}
# metric -> (plot title, y label); each plot is STEM_<metric>.png beside the Markdown
PLOTS = {"loss": ("Masked cross-entropy", "nats per masked base"),
         "masked_accuracy": ("Masked-base accuracy", "accuracy")}


def add_arguments(p) -> None:
  p.add_argument("--workdir", required=True)
  p.add_argument("--output", help="Markdown path; the PNGs go beside it (default: WORKDIR/report.md)")


def reference_lines(val: list[dict], metric: str) -> list[tuple[str, float]]:
  """(legend label, value) of the horizontal lines for `metric` (masked_accuracy or loss): the Bayes limit and
  the baselines of the last validation."""
  if not val:  # no validation yet: curves only
    return []
  rows = render.reference_rows(render.unflatten(val[-1], "val"))
  lines = [(row["name"] + (f" ({row['detail']})" if row["detail"] else ""), row[metric]) for row in rows]
  return [(label, v) for label, v in lines if isinstance(v, (int, float)) and math.isfinite(v)]


def source_labels(val: list[dict]) -> list[str]:
  """The sources validated one by one (`val/sources/LABEL/...` keys), in order of first appearance."""
  found = {}
  for r in val:
    for key in r:
      parts = key.split("/")  # val/sources/LABEL/masked_accuracy; not .../LABEL/baselines/NAME/masked_accuracy
      if len(parts) == 4 and parts[:2] == ["val", "sources"] and parts[3] == "masked_accuracy":
        found.setdefault(parts[2], None)
  return list(found)


def _plot(metric: str, title: str, ylabel: str, m: dict[str, list[dict]]) -> bytes:
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
  for split, key, style in (("train", SERIES[metric][0], dict(color="tab:blue", alpha=0.6, lw=1)),
                            ("val", SERIES[metric][1], dict(color="tab:orange", marker="o", lw=2))):
    pts = [(r["step"], r[key]) for r in m[split] if isinstance(r.get(key), (int, float))]
    if pts:
      label = "training (80/10/10 masks: easier, not comparable)" if split == "train" else "validation"
      ax.plot(*zip(*pts), label=label, **style)
  for label in source_labels(m["val"]):  # each source's validation curve, thinner
    key = f"val/sources/{label}/{metric}"
    pts = [(r["step"], r[key]) for r in m["val"] if isinstance(r.get(key), (int, float))]
    if pts:
      ax.plot(*zip(*pts), label=f"validation, {label}", lw=1, ls=":", marker=".")
  colors = ("black", "tab:green", "tab:red", "grey", "tab:purple")
  for (label, value), color in zip(reference_lines(m["val"], metric), colors):
    ax.axhline(value, ls="--", lw=1, color=color, label=f"{label} {value:.4f}")
  ax.set(xlabel="step", ylabel=ylabel, title=title)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format="png")
  plt.close(fig)
  return buf.getvalue()


def _config_line(workdir: str) -> list[str]:
  saved = rundir.read_config(workdir)
  if saved is None:
    return []
  cfg = saved.to_dict()
  mo, d, t = cfg.get("model", {}), cfg.get("data", {}), cfg.get("train", {})
  return [f"Model d_model {mo.get('d_model')}, {mo.get('num_heads')} heads, {mo.get('num_layers')} layers, "
          f"d_ff {mo.get('d_ff')}; data {', '.join(map(str, d.get('sources', [])))}, windows {d.get('seq_len')}"
          + (f" (curriculum {d['curriculum']})" if d.get("curriculum") else "")
          + f", mask rate {d.get('mask_rate')}"
          + (f"-{d['mask_rate_max']}" if d.get("mask_rate_max", 0) > d.get("mask_rate", 0) else "")
          + f"; {t.get('steps')} steps of {t.get('global_batch')} windows.", ""]


def summary_markdown(workdir: str, m: dict[str, list[dict]], images: list[str]) -> str:
  """The run's configuration, its last training window, and its last validation beside the baselines."""
  lines = [f"# dnajax run `{os.path.abspath(workdir)}`", ""] + _config_line(workdir)
  if m["train"]:
    last = m["train"][-1]
    lines += [f"Last training window (step {last['step']}): training objective (cross-entropy on 80/10/10 inputs) "
              f"{render.number(last.get('train/mlm_cross_entropy'))}, masked accuracy "
              f"{render.number(last.get('train/masked_accuracy'))}, "
              f"{render.number(last.get('perf/tokens_per_second'), ',.0f')} tokens/s.", ""]
  if m["val"]:
    v = render.unflatten(m["val"][-1], "val")
    lines += [f"Validation at step {m['val'][-1]['step']} ({v.get('num_masked', '?')} masked bases):", "",
              "| predictor | masked accuracy | loss (nats/base) |", "|---|---|---|",
              f"| this model | {render.number(v.get('masked_accuracy'))} | {render.number(v.get('loss'))} |"]
    for label, s in v.get("sources", {}).items():  # a corpus of several sources: each beside the overall number
      lines.append(f"| this model on {label} ({s.get('num_masked', '?')} masked) | "
                   f"{render.number(s.get('masked_accuracy'))} | {render.number(s.get('loss'))} |")
      lines += [f"| {render.reference_label(row)} on {label} | {render.number(row['masked_accuracy'])} | "
                f"{render.number(row['loss'])} |" for row in render.reference_rows(s)]
    for row in render.reference_rows(v):
      name = row["name"] + (" (exact)" if row["ceiling"] else "")
      lines.append(f"| {name} | {render.number(row['masked_accuracy'])} | {render.number(row['loss'])} |")
    lines.append("")
    if "fraction_of_bayes" in v:
      lines += [f"The model reaches {render.percent(v['fraction_of_bayes'])}% of the Bayes-optimal accuracy (excess "
                f"loss {render.number(v.get('excess_loss'))} nats/base).", ""]
    scored = [r for r in m["val"] if render.number(r.get("val/masked_accuracy")) != "-"]  # None: over nothing
    best = max(scored, key=lambda r: r["val/masked_accuracy"], default=None)
    if best is not None and best is not m["val"][-1]:
      lines += [f"Best validation accuracy {best['val/masked_accuracy']:.4f} at step {best['step']}.", ""]
  lines += [f"![{os.path.splitext(name)[0]}]({name})" for name in images]
  return "\n".join(lines) + "\n"


def output_paths(workdir: str, output: str | None) -> list[tuple[str, str]]:
  """(label, path) of the Markdown (`output`, default WORKDIR/report.md) and the two plots beside it."""
  md = output if output is not None else os.path.join(workdir, "report.md")
  label = "--output" if output is not None else "the default --output"
  stem = os.path.join(os.path.dirname(os.path.abspath(md)), os.path.splitext(os.path.basename(md))[0])
  return [(label, md)] + [(f"the {metric} plot beside {label}", f"{stem}_{metric}.png") for metric in PLOTS]


def report(workdir: str, output: str | None = None) -> tuple[str, list[str]]:
  """Write the plots beside `output` (default WORKDIR/report.md) and the Markdown, all or none; returns their
  paths. Raises UserError for a workdir without metrics or an output that cannot be written (checked before
  plotting; never the run's own metrics.jsonl or config.json)."""
  m = read_metrics(workdir)
  paths = output_paths(workdir, output)
  writers.check_outputs(paths, [(f"the run's {name}", os.path.join(workdir, name))
                                for name in (rundir.METRICS, rundir.CONFIG)])
  (_, md), images = paths[0], [path for _, path in paths[1:]]
  pngs = [_plot(metric, title, ylabel, m) for metric, (title, ylabel) in PLOTS.items()]
  text = summary_markdown(workdir, m, [os.path.basename(p) for p in images])
  writers.write_all([(label, path, content) for (label, path), content in zip(paths, [text] + pngs)])
  return md, images


def main(args, overrides) -> int:
  md, images = report(args.workdir, args.output)
  print(f"wrote {md} and {', '.join(images)}")
  return 0
