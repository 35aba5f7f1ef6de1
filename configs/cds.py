"""Coding sequences: a CDS FASTA, or the CDS features of GenBank files, in codon-aligned windows; sized for about
25 minutes on 2 CPU cores from configs/cpu.py's measured step rates (not yet timed end to end).
`dnajax train --config configs/cds.py --workdir runs/cds --data genome.gbff.gz` (or a CDS FASTA).

Windows of 384 bases (128 codons), 192 for the first 80% of the steps; whole genes are held out for validation.
"""

from configs import cpu


def get_config():
  c = cpu.get_config()
  c.data.sources = ()  # pass --data: the CDS set to learn from
  c.data.update(cds=True, seq_len=384, curriculum="192:0.8", split="records", min_len=90)
  c.model.max_len = 384
  c.train.update(steps=1200, eval_every=600)  # longer windows than cpu.py: fewer steps in the same time
  c.ckpt.every = 600
  return c
