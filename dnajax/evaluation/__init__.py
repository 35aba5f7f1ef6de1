"""Evaluation: the inference engine (a trained model on the local devices), the one masked-sums kernel, strata,
baselines (k-mer context model, base composition, exact Bayes limit), validation, and the renderers of results."""
