"""Zero-shot variant effect benchmark for `dnajax vep` (a program that prints numbers, not a test).

  python -m benchmarks.vep_bench [--parts synthetic,cds,brca1] [--out DIR] [--config configs/default.py]
      [--synthetic-workdir W] [--ecoli-workdir W] [--human-workdir W] [--data-dir ../shared/data]
      [--snvs 2000] [--genes 150] [--brca1-positions 1333] [--seed 0] [--output results.json]

Each part prints a Markdown table. A workdir that holds a trained run is reused; a missing one is trained here with
`dnajax train --config CONFIG` (about 4-5 min each on 2 CPU cores) under --out (default: a new temporary directory).
  synthetic  a reference sampled from the structured synthetic HMM (records of 20 kb, a seed the training corpus
             does not use), random SNVs, `dnajax vep --strands forward` and `both`: Pearson and Spearman correlation
             of the score with the EXACT log-likelihood ratio under the generating HMM over the same window (centred
             on the variant, the model's data.seq_len long, shifted inward at record ends; forward algorithm,
             `synthetic.substitution_llr`), beside the k-mer context model of the run's training split.
  cds        E. coli K-12 genes (non-pseudo, complete, no internal stop), drawn from the run's validation block when
             the run was trained on the genome (so the model never saw them), every SNV classified by
             `bio.coding_variants` and mapped to the genome (minus-strand genes: complemented alleles); positions
             that another CDS also covers are left out. AUROC of minus the score separating nonsense, and missense,
             from synonymous SNVs, beside the k-mer model (training split) and the codon-position rule (which
             reads the reading frame from the annotation: what knowing the frame alone buys).
  brca1      plumbing and throughput on GRCh38 chr17 around BRCA1: 3 ALTs at each of N random positions of
             chr17:43,044,295-43,125,364 (like a saturation-editing screen), scored, counted and timed.
The cds and brca1 parts need ../shared/data (skipped with a message where it is absent).

Measured on 2 CPU cores (configs/default.py runs, reused): synthetic 0.6 min (2,000 SNVs, both vep modes); cds
18.5 min with --strands both, 9.5 min with forward (150 genes, 436,563 SNVs, about 420 / 880 variants/s); brca1
under 0.5 min (3,999 SNVs, both modes). Training a missing run adds 5-7 min per part.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import os
import shutil
import sys
import tempfile
import time

import numpy as np

from dnajax import cli
from dnajax.bio import coding_variants
from dnajax.data import features, rundir, synthetic, tokens, vcf_writer, writers
from dnajax.data.corpus import Corpus
from dnajax.errors import UserError
from dnajax.evaluation import baselines, render

SHARED_DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "..", "shared", "data")
ECOLI_FASTA, ECOLI_GENBANK = "GCF_000005845.2_ASM584v2_genomic.fna.gz", "GCF_000005845.2_ASM584v2_genomic.gbff.gz"
HUMAN = ("GRCh38_chr17_42425000-43600000.fa", "hg38_chr13_chr4_regions.fa")
BRCA1_REGION, BRCA1_GENE = ("chr17", 42_425_000), (43_044_295, 43_125_364)  # record start, gene span (1-based, hg38)
PARTS = ("synthetic", "cds", "brca1")
SYNTHETIC_RECORD_LEN = 20_000
K = baselines.MAX_K  # the k-mer model looks at most K bases each side: its rows are 2K + 1 long


# ----------------------------------------------------------------------------------------------------- shared
def ensure_run(workdir: str, config: str, data: list[str], progress: bool) -> str:
  """Minutes `dnajax train` took here ('reused' when `workdir` already holds a trained run)."""
  if rundir.kind(workdir) == rundir.PRETRAINING and os.path.isdir(rundir.checkpoints_dir(workdir,
                                                                                         rundir.read_config(workdir))):
    return "reused"
  t0 = time.time()
  argv = ["train", "--config", config, "--workdir", workdir] + (["--data", *data] if data else [])
  if cli.main(argv + ([] if progress else ["--no-progress"])) != 0:
    raise UserError(f"training {workdir} failed (see above)")
  return f"{(time.time() - t0) / 60:.1f}"


def seq_len_of(workdir: str) -> int:
  return int(rundir.pretraining(workdir).data.seq_len)


def write_vcf(path: str, rows: list[tuple[str, int, str, str, str]]) -> None:
  """A VCF 4.2 of (chrom, 1-based pos, id, ref, alt) rows, in the order given."""
  writers.atomic_write_text(path, vcf_writer.minimal(rows))


def run_vep(workdir: str, reference: str, vcf: str, out_tsv: str, strands: str) -> tuple[list[dict], float]:
  """(the rows of `dnajax vep`'s TSV, its wall seconds in this process: checkpoint load and compile included)."""
  t0 = time.time()
  if cli.main(["vep", "--workdir", workdir, "--reference", reference, "--vcf", vcf, "--output", out_tsv,
               "--strands", strands]) != 0:
    raise UserError(f"dnajax vep on {vcf} failed (see above)")
  seconds = time.time() - t0
  with open(out_tsv) as f:
    return list(csv.DictReader((line for line in f if not line.startswith("##")), delimiter="\t")), seconds


def scores_of(rows: list[dict], ids: list[str] | None = None) -> np.ndarray:
  """float64[n]: the score column, NaN where the row is flagged (empty score); in the order of `ids` (the VCF's ID
  column) when given, NaN for an id the output lacks."""
  by_id = {r["id"]: r["score"] for r in rows} if ids is not None else None
  cells = [by_id.get(i, "") for i in ids] if ids is not None else [r["score"] for r in rows]
  return np.array([float(c) if c not in ("", None) else np.nan for c in cells])


def kmer_model(workdir: str) -> baselines.KmerModel:
  """The k-mer context model of the run's training split, sizes chosen as `dnajax train` chooses them."""
  data = rundir.pretraining(workdir).data
  corpus = Corpus(rundir.corpus_dir(workdir))
  return baselines.select_and_fit(baselines.train_sequences(corpus), data["mask_rate"], data["seq_len"])


def kmer_llr(kmer, seq: np.ndarray, pos: np.ndarray, ref: np.ndarray, alt: np.ndarray, strands: str) -> np.ndarray:
  """log p_kmer(alt) - log p_kmer(ref) with the position masked (mean over strands for 'both'), float64[n].
  `seq`: token ids of one record; `pos` 0-based; `ref`, `alt`: base indices 0..3."""
  padded = np.concatenate([np.full(K, tokens.PAD, np.uint8), seq, np.full(K, tokens.PAD, np.uint8)])
  rows = padded[pos[:, None] + np.arange(2 * K + 1)]
  rows[:, K] = tokens.MASK
  n = np.arange(len(pos))
  logp = np.log(kmer.predict(rows)[:, K])
  out = logp[n, alt] - logp[n, ref]
  if strands == "both":
    logp = np.log(kmer.predict(tokens.reverse_complement(rows))[:, K])
    out = (out + logp[n, 3 - alt] - logp[n, 3 - ref]) / 2
  return out


def correlations(x: np.ndarray, y: np.ndarray) -> tuple[float, float, int]:
  """(Pearson r, Spearman rho, n) over the pairs where both are finite."""
  from scipy import stats

  keep = np.isfinite(x) & np.isfinite(y)
  return float(stats.pearsonr(x[keep], y[keep])[0]), float(stats.spearmanr(x[keep], y[keep])[0]), int(keep.sum())


def auroc(score: np.ndarray, consequence: np.ndarray, positive: str, negative: str = "synonymous") -> float:
  """AUROC of minus `score` for `positive` against `negative` SNVs (flagged rows, NaN, left out)."""
  from sklearn.metrics import roc_auc_score

  keep = np.isin(consequence, (positive, negative)) & np.isfinite(score)
  return float(roc_auc_score(consequence[keep] == positive, -score[keep]))


# ----------------------------------------------------------------------------------------------------- synthetic
def hmm_windows(seq: np.ndarray, pos: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
  """(windows uint8[n, length], the variant's index in each): `length` bases centred on the variant, shifted inward
  at the record's ends - the window `dnajax vep` gives the model."""
  start = np.clip(pos - length // 2, 0, len(seq) - length)
  return seq[start[:, None] + np.arange(length)], pos - start


def synthetic_part(args, out: str) -> dict:
  workdir = args.synthetic_workdir or os.path.join(out, "synthetic_run")
  minutes = ensure_run(workdir, args.config, [], not args.no_progress)
  length = seq_len_of(workdir)
  hmm = synthetic.structured_hmm()
  rng = np.random.default_rng([args.seed, 2025])  # the training corpus is drawn with [seed, 7919]
  n_records = max(1, -(-args.snvs // 400))  # about 400 SNVs per 20-kb record
  recs = synthetic.sample(hmm, n_records, SYNTHETIC_RECORD_LEN, rng)
  reference = os.path.join(out, "synthetic_reference.fa")
  writers.atomic_write_text(reference, "".join(writers.fasta_entry(f"synth{r}", tokens.decode(s))
                                               for r, s in enumerate(recs)))
  flat = rng.choice(n_records * SYNTHETIC_RECORD_LEN, args.snvs, replace=False)
  rec, pos = flat // SYNTHETIC_RECORD_LEN, flat % SYNTHETIC_RECORD_LEN
  order = np.lexsort((pos, rec))
  rec, pos = rec[order], pos[order]
  ref = recs[rec, pos].astype(np.int64) - tokens.A
  alt = (ref + rng.integers(1, 4, args.snvs)) % 4
  vcf = os.path.join(out, "synthetic.vcf")
  write_vcf(vcf, [(f"synth{r}", int(p) + 1, f"v{i}", tokens.BASES[a], tokens.BASES[b])
                  for i, (r, p, a, b) in enumerate(zip(rec, pos, ref, alt))])
  exact = np.empty(args.snvs)
  for r in np.unique(rec):
    sel = rec == r
    win, at = hmm_windows(recs[r], pos[sel], length)
    exact[sel] = synthetic.substitution_llr(hmm, win, at, tokens.BASE_IDS[alt[sel]])
  kmer = kmer_model(workdir)
  rows = []
  for strands in ("forward", "both"):
    got, seconds = run_vep(workdir, reference, vcf, os.path.join(out, f"synthetic_{strands}.tsv"), strands)
    score = scores_of(got, [f"v{i}" for i in range(args.snvs)])
    rows.append({"model": f"dnajax vep --strands {strands}", **_corr_row(score, exact), "seconds": seconds,
                 "other_windows": sum(g.get("window") not in ("", None, str(length)) for g in got)})
    k_score = np.concatenate([kmer_llr(kmer, recs[r], pos[rec == r], ref[rec == r], alt[rec == r], strands)
                              for r in np.unique(rec)])
    rows.append({"model": f"k-mer context model (max_k {kmer.max_k}), {strands}", **_corr_row(k_score, exact)})
  return {"workdir": workdir, "train_minutes": minutes, "seq_len": length, "records": n_records,
          "exact_llr_mean": float(exact.mean()), "exact_llr_sd": float(exact.std()), "rows": rows}


def _corr_row(score: np.ndarray, exact: np.ndarray) -> dict:
  r, rho, n = correlations(score, exact)
  keep = np.isfinite(score)
  rmse = float(np.sqrt(np.mean((score[keep] - exact[keep]) ** 2)))
  return {"pearson": r, "spearman": rho, "n": n, "rmse": rmse, "mean": float(np.nanmean(score))}


def synthetic_table(r: dict) -> str:
  other = sum(x.get("other_windows", 0) for x in r["rows"])
  lines = [f"Synthetic: {r['records']} record(s) of {SYNTHETIC_RECORD_LEN:,} bases from the structured HMM; model "
           f"{r['workdir']} (train minutes: {r['train_minutes']}), window {r['seq_len']} ({other} vep rows with "
           f"another window); exact HMM LLR mean {r['exact_llr_mean']:.3f}, sd {r['exact_llr_sd']:.3f} nats.", "",
           "| score | SNVs | Pearson r with exact LLR | Spearman rho | RMSE (nats) | mean score | vep wall s |",
           "|---|---|---|---|---|---|---|"]
  for x in r["rows"]:
    lines.append(f"| {x['model']} | {x['n']:,} | {x['pearson']:.4f} | {x['spearman']:.4f} | {x['rmse']:.3f} | "
                 f"{x['mean']:.3f} | {render.number(x.get('seconds'), '.1f')} |")
  return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------- cds
def _read_genbank(path: str):
  from Bio import SeqIO

  with gzip.open(path, "rt") as f:
    return SeqIO.read(f, "genbank")


def split_spans(workdir: str, record_id: str, split: str = "val") -> list[tuple[int, int]] | None:
  """[start, end) spans of `record_id` (its FASTA id) in the run's `split` (train | val); None when the run's corpus
  does not hold that record (another source, or a CDS corpus)."""
  try:
    segs = Corpus(rundir.corpus_dir(workdir)).segments
  except (OSError, UserError, ValueError, KeyError):
    return None
  mine = [s for s in segs if s["name"].split()[0] == record_id and "start" in s]
  if not mine:
    return None
  return [(s["start"], s["start"] + s["length"]) for s in mine if s["split"] == split]


def pick_genes(record, n: int, seed: int, spans) -> tuple[list, np.ndarray]:
  """(up to `n` CDS entries - complete, non-pseudo, in frame, no internal stop, inside `spans` when given, not
  overlapping each other - in a seeded random order, the number of CDS covering each base of the record)."""
  entries = features.cds_entries(record, features.new_counts())
  cover = np.zeros(len(record.seq), np.int32)
  for e in entries:
    cover[e.positions] += 1
  usable = []
  for e in entries:
    if e.frame or e.end != len(e.positions) or "transl_except" in e.feature.qualifiers:
      continue
    if spans is not None and not any(a <= e.positions.min() and e.positions.max() < b for a, b in spans):
      continue
    usable.append(e)
  taken, used = [], np.zeros(len(record.seq), bool)
  for i in np.random.default_rng(seed).permutation(len(usable)):
    e = usable[i]
    if len(taken) == n:
      break
    if used[e.positions].any():
      continue
    try:
      coding_variants.coding_snvs(str(e.feature.extract(record.seq)))
    except UserError:
      continue
    taken.append(e)
    used[e.positions] = True
  return taken, cover


def cds_variants(record, genes, cover) -> tuple[list, np.ndarray, np.ndarray]:
  """(VCF rows, consequence per row, codon position 1-3 per row) of every SNV of `genes` at bases no other CDS
  covers, in genome coordinates (minus-strand genes: complemented alleles)."""
  comp = str.maketrans("ACGT", "TGCA")
  genome = str(record.seq).upper()
  rows, what, codon_pos = [], [], []
  for e in genes:
    minus = e.feature.location.strand == -1
    tag = e.name.split(":")[-1]
    for v in coding_variants.coding_snvs(str(e.feature.extract(record.seq))):
      g = int(e.positions[v.offset])
      if cover[g] > 1:
        continue
      ref, alt = (v.ref.translate(comp), v.alt.translate(comp)) if minus else (v.ref, v.alt)
      assert genome[g] == ref, (e.name, v)
      rows.append((record.id, g + 1, f"{tag}:c.{v.offset + 1}{v.ref}>{v.alt}", ref, alt))
      what.append(v.consequence)
      codon_pos.append(v.offset % 3 + 1)
  order = sorted(range(len(rows)), key=lambda i: rows[i][1])
  return [rows[i] for i in order], np.array(what)[order], np.array(codon_pos)[order]


def cds_part(args, out: str) -> dict:
  fasta_gz = os.path.join(args.data_dir, ECOLI_FASTA)
  workdir = args.ecoli_workdir or os.path.join(out, "ecoli_run")
  minutes = ensure_run(workdir, args.config, [fasta_gz], not args.no_progress)
  record = _read_genbank(os.path.join(args.data_dir, ECOLI_GENBANK))
  spans = split_spans(workdir, record.id)
  genes, cover = pick_genes(record, args.genes, args.seed, spans)
  rows, what, codon_pos = cds_variants(record, genes, cover)
  reference = os.path.join(out, "ecoli.fa")
  with gzip.open(fasta_gz, "rb") as src, open(reference, "wb") as dst:
    shutil.copyfileobj(src, dst)
  vcf = os.path.join(out, "ecoli_cds.vcf")
  write_vcf(vcf, rows)
  got, seconds = run_vep(workdir, reference, vcf, os.path.join(out, "ecoli_cds.tsv"), args.strands)
  seq = tokens.encode(str(record.seq))
  pos = np.array([r[1] - 1 for r in rows])
  ref = np.array([tokens.BASES.index(r[3]) for r in rows])
  alt = np.array([tokens.BASES.index(r[4]) for r in rows])
  kmer = kmer_model(workdir) if spans is not None else None
  scores = {f"dnajax vep --strands {args.strands}": scores_of(got, [r[2] for r in rows]),
            "codon position, read from the annotation (3rd: 0, 1st/2nd: -1)": np.where(codon_pos == 3, 0.0, -1.0)}
  if kmer is not None:
    scores[f"k-mer context model of the training split (max_k {kmer.max_k})"] = kmer_llr(kmer, seq, pos, ref, alt,
                                                                                        args.strands)
  table = [{"score": name, "nonsense_auroc": auroc(s, what, "nonsense"), "missense_auroc": auroc(s, what, "missense"),
            "scored": int(np.isfinite(s).sum())} for name, s in scores.items()]
  counts = {c: int((what == c).sum()) for c in coding_variants.CONSEQUENCES}
  return {"workdir": workdir, "train_minutes": minutes, "genes": len(genes), "held_out": spans is not None,
          "bases": int(sum(len(e.positions) for e in genes)), "snvs": len(rows), "counts": counts,
          "vep_seconds": seconds, "variants_per_second": len(rows) / seconds, "rows": table}


def cds_table(r: dict) -> str:
  seen = ("held out from training (the run's validation block)" if r["held_out"] else
          "NOT held out: the run's corpus is not this genome, so the model may have seen them")
  c = r["counts"]
  lines = [f"E. coli K-12: {r['genes']} genes ({r['bases']:,} coding bases), {seen}; model {r['workdir']} (train "
           f"minutes: {r['train_minutes']}). {r['snvs']:,} SNVs: " + ", ".join(f"{k} {v:,}" for k, v in c.items())
           + f". dnajax vep: {r['vep_seconds']:.1f} s, {r['variants_per_second']:,.0f} variants/s.", "",
           "| score | SNVs scored | AUROC nonsense vs synonymous | AUROC missense vs synonymous |", "|---|---|---|---|"]
  for x in r["rows"]:
    lines.append(f"| {x['score']} | {x['scored']:,} | {x['nonsense_auroc']:.4f} | {x['missense_auroc']:.4f} |")
  return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------- brca1
def brca1_part(args, out: str) -> dict:
  reference = os.path.join(args.data_dir, HUMAN[0])
  workdir = args.human_workdir or os.path.join(out, "human_run")
  minutes = ensure_run(workdir, args.config, [os.path.join(args.data_dir, f) for f in HUMAN], not args.no_progress)
  with open(reference) as f:
    seq = "".join(line.strip() for line in f if not line.startswith(">")).upper()
  chrom, first = BRCA1_REGION
  lo, hi = BRCA1_GENE
  rng = np.random.default_rng(args.seed)
  candidates = [p for p in range(lo, hi + 1) if seq[p - first] in "ACGT"]
  positions = sorted(rng.choice(candidates, args.brca1_positions, replace=False).tolist())
  rows = [(chrom, p, ".", seq[p - first], a) for p in positions for a in "ACGT" if a != seq[p - first]]
  trained_on = split_spans(workdir, f"{chrom}:{first}-{first + len(seq) - 1}", "train") or []
  seen = sum(any(a <= p - first < b for a, b in trained_on) for p in positions)
  vcf = os.path.join(out, "brca1.vcf")
  write_vcf(vcf, rows)
  result = {"workdir": workdir, "train_minutes": minutes, "positions": len(positions), "snvs": len(rows),
            "positions_in_training_split": seen, "modes": []}
  for strands in ("both", "forward"):
    got, seconds = run_vep(workdir, reference, vcf, os.path.join(out, f"brca1_{strands}.tsv"), strands)
    s = scores_of(got)
    result["modes"].append({"strands": strands, "rows": len(got), "scored": int(np.isfinite(s).sum()),
                            "seconds": seconds, "variants_per_second": len(rows) / seconds,
                            "mean_score": float(np.nanmean(s))})
  return result


def brca1_table(r: dict) -> str:
  lines = [f"GRCh38 BRCA1 (chr17:{BRCA1_GENE[0]:,}-{BRCA1_GENE[1]:,}): {r['positions']:,} random positions x 3 ALTs "
           f"= {r['snvs']:,} SNVs; model {r['workdir']} (train minutes: {r['train_minutes']}; "
           f"{r['positions_in_training_split']:,} of the positions in its training split). Wall time of the "
           "in-process `dnajax vep` call: checkpoint load and compile included.", "",
           "| strands | rows written | scored | wall s | variants/s | mean score |", "|---|---|---|---|---|---|"]
  for m in r["modes"]:
    lines.append(f"| {m['strands']} | {m['rows']:,} | {m['scored']:,} | {m['seconds']:.1f} | "
                 f"{m['variants_per_second']:,.0f} | {m['mean_score']:.3f} |")
  return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--parts", default=",".join(PARTS), help="comma-separated: synthetic, cds, brca1")
  p.add_argument("--out", help="directory for every file written (default: a new temporary directory)")
  p.add_argument("--config", default="configs/default.py", help="training config for runs trained here")
  p.add_argument("--synthetic-workdir", help="a run on synthetic:structured (default: OUT/synthetic_run)")
  p.add_argument("--ecoli-workdir", help="a run on the E. coli genome FASTA (default: OUT/ecoli_run)")
  p.add_argument("--human-workdir", help="a run on human sequence, for brca1 (default: OUT/human_run)")
  p.add_argument("--data-dir", default=SHARED_DATA)
  p.add_argument("--snvs", type=int, default=2000, help="synthetic SNVs")
  p.add_argument("--genes", type=int, default=150, help="E. coli genes")
  p.add_argument("--strands", choices=("both", "forward"), default="both", help="vep strands for the cds part")
  p.add_argument("--brca1-positions", type=int, default=1333)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--output", help="write the results as JSON here")
  p.add_argument("--no-progress", action="store_true")
  args = p.parse_args(sys.argv[1:] if argv is None else argv)
  parts = args.parts.split(",")
  if set(parts) - set(PARTS):
    p.error(f"--parts: use some of {', '.join(PARTS)}")
  if args.output:
    try:
      writers.check_outputs([("--output", args.output)])  # before any work, not after
    except UserError as e:
      p.error(str(e))
  out = args.out or tempfile.mkdtemp(prefix="vep_bench_")
  os.makedirs(out, exist_ok=True)
  print(f"vep_bench: writing to {out}")
  results = {}
  try:
    for part, fn, table, needs in (("synthetic", synthetic_part, synthetic_table, ()),
                                   ("cds", cds_part, cds_table, (ECOLI_FASTA, ECOLI_GENBANK)),
                                   ("brca1", brca1_part, brca1_table, HUMAN)):
      if part not in parts:
        continue
      missing = [f for f in needs if not os.path.isfile(os.path.join(args.data_dir, f))]
      if missing:
        print(f"vep_bench: {part} skipped: {os.path.join(args.data_dir, missing[0])} is absent (--data-dir)")
        continue
      t0 = time.time()
      results[part] = fn(args, out)
      results[part]["part_seconds"] = time.time() - t0
      print(f"\n### {part} ({results[part]['part_seconds'] / 60:.1f} min)\n\n{table(results[part])}\n", flush=True)
  except UserError as e:
    print(f"vep_bench: error: {e}", file=sys.stderr)
    return 2
  if args.output:
    writers.atomic_write_text(args.output, render.to_json(results) + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
