"""dnajax: masked-nucleotide language models in JAX/Flax, from a laptop smoke run to a pod."""

__version__ = "0.1.0"
