"""Values over nothing (None) in every renderer: `-` in text, empty in TSV, `null` in strict JSON; never a crash."""

import json

import numpy as np
import pytest

from dnajax.evaluation import metrics, render


def _strict(text):
  return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


def _empty_result():
  """A result over zero masked bases, with every optional part present (Bayes, strata, reverse complement)."""
  r = metrics.summarize(metrics.masked_sums(np.zeros((1, 4, 4)), np.full((1, 4), 2, np.uint8), np.zeros((1, 4))))
  r["strata"] = {"repeat": metrics.summary(0.0, 0.0, 0.0)}
  r["reverse_complement"] = {"agreement": None, "mean_tv_distance": None, "masked_accuracy_from_reverse_strand": None}
  r["bayes"] = {"masked_accuracy": None, "loss": None}
  r.update(fraction_of_bayes=None, excess_loss=None)
  r["baselines"] = {"uniform": 0.25, "majority_base_of_training_data": {"base": "A", "masked_accuracy": None,
                                                                         "loss": None},
                    "kmer_of_training_data": {"masked_accuracy": None, "loss": None, "max_k": 4, "min_count": 1}}
  return r


def test_none_renders_as_dash_empty_and_null():
  r = _empty_result()
  assert r["masked_accuracy"] is None and r["num_masked"] == 0
  text = "\n".join(render.result_text(r))
  assert "masked_accuracy -" in text and "same prediction at -%" in text and "None" not in text
  line = render.validation_line(r)
  assert line.startswith("masked_accuracy -, loss - nats") and "Bayes-optimal - (-% of it)" in line
  assert "None" not in line and "uniform 0.25" in line
  assert all("None" not in x for x in render.reference_text(r))
  back = _strict(render.to_json(r))
  assert back["masked_accuracy"] is None and back["fraction_of_bayes"] is None and back["bayes"]["loss"] is None
  assert render.number(None, ".4f", "") == "" and render.percent(None) == "-" and render.percent(0.5) == "50.0"


def test_to_json_is_strict_for_nan_infinity_and_numpy():
  obj = {"a": float("nan"), "b": [float("inf"), -float("inf"), 1.5], "c": np.float32("nan"), "d": np.float64(2.0),
         "e": np.array([1.0, np.nan]), "f": np.int64(3), "g": (np.nan,)}
  back = _strict(render.to_json(obj))
  assert back == {"a": None, "b": [None, None, 1.5], "c": None, "d": 2.0, "e": [1.0, None], "f": 3, "g": [None]}
  assert render.number(np.float32("nan")) == "-" and render.number(np.float64(0.25)) == "0.2500"


def test_pll_totals_over_nothing_are_none():
  assert metrics.pll_totals(np.full(5, np.nan)) == {"scored_bases": 0, "pll": None, "pll_per_base": None}
  assert metrics.pll_totals(np.array([])) == {"scored_bases": 0, "pll": None, "pll_per_base": None}
  t = metrics.pll_totals(np.array([np.nan, -1.0, -2.0, -3.0, np.nan]))
  assert t["scored_bases"] == 3 and t["pll"] == -6.0 and t["pll_per_base"] == -2.0
