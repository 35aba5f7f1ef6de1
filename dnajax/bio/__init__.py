"""Sequence biology used by design, generation and benchmarks: GC, homopolymers, repeats, restriction and splice
sites, ORFs and stops, codon tables, codon usage and CAI."""
