"""Data: the token vocabulary, file readers and writers, corpora, samplers, windows, masking, synthetic DNA.

The lowest layer of dnajax after the base modules (config, errors, runtime, sharding, checkpoint): nothing here
imports from model/, evaluation/, training/, bio/ or apps/.
"""
