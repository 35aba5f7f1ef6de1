"""Coding-sequence design: synthesis constraints, the model-guided search and designing for expression."""
