"""Renderers of the result schema (`metrics.summarize` plus `baselines`, `bayes`, `strata`): the one place that
knows how results read as text, JSON and flat tags. Apps pick a renderer; none of them formats baselines itself.

Values computed over nothing are None: `-` in text, empty in TSV, `null` in JSON (never NaN or Infinity).
"""

from __future__ import annotations

import json
import math
import numbers


def number(x, spec: str = ".4f", missing: str = "-") -> str:
  """`x` formatted with `spec`, or `missing` for None or a non-finite value."""
  if x is None or (isinstance(x, numbers.Real) and not math.isfinite(x)):  # also NumPy floats
    return missing
  return format(x, spec)


def percent(fraction, spec: str = ".1f", missing: str = "-") -> str:
  """100 x `fraction` formatted with `spec` (no % sign), or `missing` for None or a non-finite value."""
  return number(None if fraction is None else 100 * fraction, spec, missing)


def _finite_or_none(x):
  if isinstance(x, float) and not math.isfinite(x):
    return None
  if isinstance(x, dict):
    return {k: _finite_or_none(v) for k, v in x.items()}
  if isinstance(x, (list, tuple)):
    return [_finite_or_none(v) for v in x]
  return x


def to_json(obj, indent: int | None = 1) -> str:
  """Strict JSON (RFC 8259): NaN and infinities become null; NumPy/JAX scalars and arrays become numbers and lists.
  Every JSON dnajax prints or writes goes through here."""
  def default(o):
    if hasattr(o, "tolist"):
      return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")
  return json.dumps(_finite_or_none(json.loads(json.dumps(obj, default=default))), indent=indent, allow_nan=False)


def reference_rows(result: dict) -> list[dict]:
  """The Bayes limit and every baseline in `result`, in display order: {name, detail (parameters, e.g. "k=4"),
  predicts (the base a constant predictor always gives), masked_accuracy, loss (None where undefined), ceiling
  (True for the exact Bayes limit)}. The one place that knows the `baselines` and `bayes` keys; also reads a
  stratum's or source's entry (its `baselines` without parameters, `strata.attach_baselines`)."""
  rows = []
  if result.get("bayes"):
    rows.append({"name": "Bayes-optimal", "detail": None, "predicts": None, "ceiling": True,
                 "masked_accuracy": result["bayes"]["masked_accuracy"], "loss": result["bayes"]["loss"]})
  b = result.get("baselines", {})
  if "kmer_of_training_data" in b:
    k = b["kmer_of_training_data"]
    rows.append({"name": "k-mer context model", "detail": f"k={k['max_k']}" if "max_k" in k else None,
                 "predicts": None, "ceiling": False,
                 "masked_accuracy": k["masked_accuracy"], "loss": k["loss"]})
  for key, name in (("majority_base_of_training_data", "majority base"),
                    ("majority_base_of_input", "majority base of input")):
    if key in b:
      rows.append({"name": name, "detail": None, "predicts": b[key].get("base"), "ceiling": False,
                   "masked_accuracy": b[key]["masked_accuracy"], "loss": b[key].get("loss")})
  if "uniform" in b:
    rows.append({"name": "uniform", "detail": None, "predicts": None, "ceiling": False,
                 "masked_accuracy": b["uniform"], "loss": math.log(4)})
  return rows


def reference_label(row: dict) -> str:
  """'k-mer context model (k=4)', 'majority base (A)', 'Bayes-optimal', ..."""
  return row["name"] + "".join(f" ({x})" for x in (row["detail"], row["predicts"]) if x)


def reference_text(result: dict) -> list[str]:
  """One line per reference row: label, masked accuracy, loss."""
  return [f"  {reference_label(r):32s} masked_accuracy {number(r['masked_accuracy'])}  loss {number(r['loss'])}"
          for r in reference_rows(result)]


def validation_line(r: dict) -> str:
  """One line: the model, the Bayes limit where known, then the baselines (the format of `dnajax train`'s final
  validation line: `masked_accuracy X, loss Y nats | Bayes-optimal ... | k-mer context model ..., majority base ...,
  uniform 0.25`)."""
  s = f"masked_accuracy {number(r['masked_accuracy'])}, loss {number(r['loss'])} nats"
  parts = []
  for row in reference_rows(r):
    acc, loss = number(row["masked_accuracy"]), number(row["loss"])
    if row["ceiling"]:
      s += f" | {row['name']} {acc} ({percent(r.get('fraction_of_bayes'))}% of it), Bayes loss {loss}"
    elif row["name"] == "uniform":
      parts.append(f"uniform {number(row['masked_accuracy'], 'g')}")
    else:
      parts.append(f"{row['name']} {acc}" + (f" (loss {loss})" if row["detail"] else ""))
  return s + (" | " + ", ".join(parts) if parts else "")


def beside(stratum: dict) -> str:
  """'  | k-mer context model 0.4012, majority base (A) 0.2990' for a stratum's or source's baselines, or ''."""
  rows = reference_rows(stratum)
  return ("  | " + ", ".join(f"{reference_label(row)} {number(row['masked_accuracy'])}" for row in rows)
          if rows else "")


def result_text(r: dict) -> list[str]:
  """Lines for a result: summary, per base, strata, reverse complement, references."""
  lines = [f"masked_accuracy {number(r['masked_accuracy'])}   loss {number(r['loss'])} nats/base   "
           f"perplexity {number(r['perplexity'], '.3f')}   ({r['num_masked']} masked bases)"]
  if "per_base_accuracy" in r:
    lines.append("per base: " + "  ".join(f"{b} {number(v)}" for b, v in r["per_base_accuracy"].items()))
  for name, st in r.get("strata", {}).items():
    lines.append(f"  {name:18s} masked_accuracy {number(st['masked_accuracy'])}  loss {number(st['loss'])}  "
                 f"n {st['num_masked']}{beside(st)}")
  if len(r.get("sources", {})) > 1:
    for name, st in r["sources"].items():
      lines.append(f"  source {name}: masked_accuracy {number(st['masked_accuracy'])}  loss {number(st['loss'])}  "
                   f"n {st['num_masked']}{beside(st)}")
  rc = r.get("reverse_complement")
  if rc:
    lines.append(f"reverse complement: same prediction at {percent(rc.get('agreement'))}% of masked bases, "
                 f"mean total-variation distance {number(rc.get('mean_tv_distance'))}, accuracy from the reverse "
                 f"strand {number(rc.get('masked_accuracy_from_reverse_strand'))}")
  return lines + reference_text(r)


def flatten(tree: dict, prefix: str) -> dict:
  """Nested results -> {"prefix/a/b": value} (the TensorBoard tags and metrics.jsonl keys)."""
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(flatten(v, f"{prefix}/{k}"))
    else:
      out[f"{prefix}/{k}"] = v
  return out


def unflatten(record: dict, prefix: str) -> dict:
  """The inverse of `flatten` for the keys under `prefix`."""
  out: dict = {}
  for key, v in record.items():
    if not key.startswith(prefix + "/"):
      continue
    *parents, leaf = key[len(prefix) + 1:].split("/")
    node = out
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = v
  return out
