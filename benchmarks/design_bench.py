"""Design benchmark: coding sequences for natural E. coli proteins the model never saw, by five methods.

  python -m benchmarks.design_bench --workdir runs/cds [--proteins 20] [--seed 0] [--output design_bench.json]
      [--genbank ../shared/data/GCF_000005845.2_ASM584v2_genomic.gbff.gz]

The workdir is a run of configs/cds.py on that GenBank file (split by whole genes): the proteins are drawn from its
validation genes only, 100-600 aa, leaving out /pseudo features, CDS with internal stops or a /transl_except
(selenocysteine in fdnG, fdoG, fdhF), ribosomal slippage and joined locations. For each protein:

  natural          the genome's own CDS (reference row: what the identity column compares with)
  most_frequent    the organism's most frequent codon for every amino acid (CAI = 1; DNA Chisel's "use_best_codon")
  usage_random     synonymous codons drawn by the organism's codon usage
  chisel_match     DNA Chisel: CodonOptimize(method="match_codon_usage") under the constraints below
  dnajax           `dnajax design` under the constraints below

Constraints (the design issue's acceptance options): GC 0.3-0.65 in every 50-base window, no BsaI or BsmBI site, no
homopolymer longer than 6, no 20-mer twice on either strand. Columns: the model's exact pseudo-log-likelihood per
base (each codon masked in turn, as `dnajax design` reports it), codon identity to the natural CDS, CAI
(python-codon-tables usage), |GC - mean GC of the training genes|, designs violating any constraint, and seconds per
design for dnajax. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time

import numpy as np

from dnajax.bio import codons, sequence
from dnajax.data import corpus, features, rundir, tokens, writers
from dnajax.design import constraints, search
from dnajax.errors import UserError
from dnajax.evaluation import render
from dnajax.evaluation.engine import Engine

SHARED_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")

METHODS = ("natural", "most_frequent", "usage_random", "chisel_match", "dnajax")
CONSTRAINTS = constraints.Constraints(gc_min=0.3, gc_max=0.65, gc_window=50, avoid_sites=("BsaI", "BsmBI"),
                                 max_homopolymer=6, avoid_repeats=20)
CODE = 11


TRAIN_HINT = "dnajax train --config configs/cds.py --workdir WORKDIR --data {genbank}"


def corpus_split(workdir: str) -> dict[str, str]:
  """Segment name -> "train" or "val" of the run's corpus; UserError when the workdir has no readable corpus."""
  return {s["name"]: s["split"] for s in corpus.Corpus(rundir.corpus_dir(workdir)).segments}


def read_genbank(genbank: str) -> list:
  """The records of a GenBank file (plain or gzip); UserError when it cannot be read."""
  from Bio import SeqIO

  opener = gzip.open if genbank.endswith(".gz") else open
  try:
    with opener(genbank, "rt") as f:
      records = list(SeqIO.parse(f, "genbank"))
  except (OSError, ValueError, EOFError, UnicodeDecodeError) as e:
    raise UserError(f"--genbank {genbank}: cannot read it as GenBank ({getattr(e, 'strerror', None) or e}); give "
                    "the GenBank file the run was trained on") from None
  if not records:
    raise UserError(f"--genbank {genbank}: no GenBank record; give the GenBank file the run was trained on")
  return records


def held_out_proteins(workdir: str, genbank: str, n: int, seed: int, min_aa: int = 100, max_aa: int = 600):
  """([(locus tag, protein, natural CDS)] from the run's validation genes, the training genes' mean GC, the number
  of candidates). UserError when the run's corpus holds no training or no usable held-out gene of `genbank`."""
  from Bio.Seq import Seq

  split = corpus_split(workdir)
  records = read_genbank(genbank)
  candidates, train_gc = [], []
  for rec in records:
    for feat in rec.features:
      q = feat.qualifiers
      if feat.type != "CDS" or "pseudo" in q or "transl_except" in q or "ribosomal_slippage" in q:
        continue
      name = features.cds_name(rec, feat)  # as the corpus names it
      cds = str(feat.extract(rec.seq)).upper()
      if split.get(name) == "train":
        train_gc.append(sequence.gc_content(cds))
      if split.get(name) != "val" or len(feat.location.parts) > 1 or len(cds) % 3:
        continue
      protein = str(Seq(cds).translate(table=CODE))
      if not protein.endswith("*") or "*" in protein[:-1] or not min_aa <= len(protein) - 1 <= max_aa:
        continue
      if set(protein[:-1]) - codons.PROTEIN_LETTERS:
        continue
      candidates.append((name, "M" + protein[1:-1], cds))  # alternative starts (GTG, TTG) are read as Met
  if not candidates or not train_gc:
    what = "none of its genes are" if not candidates and not train_gc else \
        f"no held-out genes of it ({min_aa}-{max_aa} aa) are" if not candidates else "no training genes of it are"
    raise UserError(f"--genbank {genbank}: {what} in the corpus of --workdir {workdir}; the benchmark needs a run "
                    f"trained on this GenBank file: {TRAIN_HINT.format(genbank=genbank)}")
  candidates.sort()
  pick = np.random.default_rng(seed).choice(len(candidates), size=min(n, len(candidates)), replace=False)
  return [candidates[i] for i in sorted(pick)], float(np.mean(train_gc)), len(candidates)


def baseline_designs(protein: str, usage, rng: np.random.Generator) -> dict[str, str]:
  import dnachisel as dc

  out = {"most_frequent": "".join(max(usage[aa], key=usage[aa].get) for aa in protein + "*"),
         "usage_random": codons.sample_cds(protein, usage, rng)}
  problem = dc.DnaOptimizationProblem(codons.sample_cds(protein, usage, rng),
                                      constraints=constraints.chisel_specs(protein, CONSTRAINTS, CODE),
                                      objectives=[dc.CodonOptimize(species="e_coli", method="match_codon_usage")],
                                      logger=None)
  problem.resolve_constraints()
  problem.optimize()
  out["chisel_match"] = problem.sequence
  return out


def identity(a: str, b: str) -> float:
  codons = len(a) // 3
  return 100.0 * sum(a[3 * i:3 * i + 3] == b[3 * i:3 * i + 3] for i in range(codons)) / codons


def run(args) -> dict:
  """The benchmark's result: {workdir, checkpoint_step, proteins, candidates, gene_gc, rows}; UserError for a bad
  workdir, GenBank file or protein count."""
  from tqdm import tqdm

  if args.proteins < 1:
    raise UserError(f"--proteins {args.proteins}: must be at least 1")
  proteins, gene_gc, n_candidates = held_out_proteins(args.workdir, args.genbank, args.proteins, args.seed)
  engine = Engine.from_workdir(args.workdir)
  usage = codons.codon_usage("e_coli", CODE)
  rows = []
  for k, (name, protein, natural) in enumerate(tqdm(proteins, desc="proteins", unit="protein")):
    rng = np.random.default_rng([args.seed, k])
    seqs = {"natural": natural, **baseline_designs(protein, usage, rng)}
    t0 = time.perf_counter()
    d = search.design_protein(engine, name, protein, "e_coli", CODE, CONSTRAINTS, 1, args.seed + k, args.rounds)[0]
    seconds = time.perf_counter() - t0
    seqs["dnajax"] = d["sequence"]
    row = {"name": name, "aa": len(protein), "dnajax_seconds": seconds}
    for m, s in seqs.items():
      if m == "dnajax":
        pll = d["model_pll_per_base"]
      else:
        pll = float(np.mean(engine.pseudo_log_likelihood(tokens.encode(s), "codon")))
      desc = constraints.describe(s, protein, usage, CONSTRAINTS, CODE)
      violations = constraints.violations(desc, CONSTRAINTS)
      if m == "natural":  # an alternative start codon (GTG, TTG) is read as Met by the cell, not by translate()
        violations = [v for v in violations if v != "translation"]
      else:
        assert desc["translation_ok"], (name, m)
      row[m] = {"pll_per_base": pll, "identity": identity(s, natural), "cai": desc["cai"],
                "gc_dev": abs(desc["gc"] - gene_gc), "violations": violations}
    rows.append(row)
  return {"workdir": args.workdir, "checkpoint_step": engine.step, "proteins": len(rows), "candidates": n_candidates,
          "gene_gc": gene_gc, "rows": rows}


def main(argv: list[str] | None = None) -> int:
  """The benchmark program: prints the table and writes --output (strict JSON); a bad argument, workdir or GenBank
  file is one line `design_bench: error: ...` with exit code 2, before any work and with nothing written."""
  p = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
  p.add_argument("--workdir", required=True, help="a configs/cds.py run on the GenBank file")
  p.add_argument("--genbank", default=os.path.join(SHARED_DATA, "GCF_000005845.2_ASM584v2_genomic.gbff.gz"))
  p.add_argument("--proteins", type=int, default=20)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--rounds", type=int, default=3)
  p.add_argument("--output", help="per-protein results as JSON")
  args = p.parse_args(argv)
  try:
    if args.output is not None:
      writers.check_outputs([("--output", args.output)], [("--genbank", args.genbank)])
    result = run(args)
    text = table(result)
    if args.output is not None:
      writers.atomic_write_text(args.output, render.to_json(result) + "\n")
  except UserError as e:
    print(f"design_bench: error: {e}", file=sys.stderr)
    return 2
  print(text)
  return 0


def table(r: dict) -> str:
  rows = r["rows"]
  lines = [f"{r['proteins']} held-out E. coli proteins ({min(x['aa'] for x in rows)}-{max(x['aa'] for x in rows)} aa, "
           f"drawn from {r['candidates']} validation genes), checkpoint step {r['checkpoint_step']}; mean over "
           f"proteins; training genes' GC {r['gene_gc']:.3f}",
           "",
           "| method | model PLL / base | codon identity to natural % | CAI | abs GC deviation | designs violating "
           "constraints | PLL above this method (dnajax wins) |",
           "|---|---|---|---|---|---|---|"]
  for m in METHODS:
    vals = [x[m] for x in rows]
    wins = "-" if m == "dnajax" else f"{sum(x['dnajax']['pll_per_base'] > x[m]['pll_per_base'] for x in rows)}" \
                                     f"/{len(rows)}"
    lines.append(f"| {m} | {np.mean([v['pll_per_base'] for v in vals]):.4f} | "
                 f"{np.mean([v['identity'] for v in vals]):.1f} | {np.mean([v['cai'] for v in vals]):.3f} | "
                 f"{np.mean([v['gc_dev'] for v in vals]):.3f} | {sum(bool(v['violations']) for v in vals)}"
                 f"/{len(rows)} | {wins} |")
  secs = [x["dnajax_seconds"] for x in rows]
  lines += ["", f"dnajax design: {np.mean(secs):.1f} s per design on average, {max(secs):.1f} s at most "
                f"(longest protein {max(x['aa'] for x in rows)} aa)"]
  return "\n".join(lines)


if __name__ == "__main__":
  sys.exit(main())
