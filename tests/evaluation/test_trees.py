"""The boosted-tree head: cutting a fit to its first k iterations is the fit with max_iter=k."""

import numpy as np
import pytest

from dnajax.evaluation import trees


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_first_iterations_equal_a_fit_of_that_many(task):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(300, 40)).astype(np.float32)
  y = x[:, :5].sum(1) + rng.normal(size=300)
  if task == "classification":
    y = (y > 0).astype(int) + (y > 2)
  model = trees.make_model(task, 50, 0.1, seed=0).fit(x, y)
  staged = list(trees.staged_outputs(model, task, x[:80]))
  cut = trees.first_iterations(model, 17, task, x[:80], staged[16])
  again = trees.make_model(task, 17, 0.1, seed=0).fit(x, y)
  assert cut.n_iter_ == 17 and model.n_iter_ == 50 and cut.get_params()["max_iter"] == 17
  np.testing.assert_array_equal(trees.model_outputs(cut, task, x), trees.model_outputs(again, task, x))
  # Outputs that differ from the staged ones (another scikit-learn's internals) say: fit again.
  assert trees.first_iterations(model, 17, task, x[:80], staged[15]) is None
