"""Coding sequences: a CDS FASTA, or the CDS features of GenBank files, in codon-aligned windows. Measured on 2 CPU
cores with the E. coli K-12 GenBank file (4,298 CDS, 4.0M bases, 10% of the genes held out): 28 min 18 s wall for
the whole run; held-out genes at mask rate 0.15: masked accuracy 0.4279, loss 1.2392 vs k-mer 0.3814, 1.2991.
`dnajax train --config configs/cds.py --workdir runs/cds --data genome.gbff.gz` (or a CDS FASTA).

Windows of 384 bases (128 codons), 192 for the first 80% of the steps; whole genes are held out for validation.
"""

from dnajax.configs import cpu


def get_config():
  c = cpu.get_config()
  c.data.sources = ()  # pass --data: the CDS set to learn from
  c.data.update(cds=True, seq_len=384, curriculum="192:0.8", split="records", min_len=90)
  c.model.max_len = 384
  c.train.update(steps=1200, eval_every=600)  # longer windows than cpu.py: fewer steps in the same time
  c.ckpt.every = 600
  return c
