"""The `dnajax` command: argument parsing only, one function call per verb.

Every user-facing failure is one line on stderr, `dnajax: error: ...`, with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from dnajax.errors import UserError

VERBS = ("prepare", "fetch", "train", "evaluate", "predict", "baseline", "bench")


class _Parser(argparse.ArgumentParser):
  def error(self, message):  # one line, exit 2 (argparse's default prints the usage too)
    raise UserError(f"{self.prog}: {message}; see `{self.prog} --help`")


def _build_parser() -> argparse.ArgumentParser:
  p = _Parser(prog="dnajax", description="Masked-nucleotide language models in JAX/Flax.")
  sub = p.add_subparsers(dest="verb", required=True, parser_class=_Parser)

  s = sub.add_parser("prepare", help="FASTA/GenBank files -> a corpus directory with a train/val split")
  s.add_argument("--input", nargs="+", required=True, help="FASTA/GenBank files or directories (.gz allowed)")
  s.add_argument("--output", required=True, help="corpus directory to write")
  s.add_argument("--format", choices=("fasta", "genbank"), help="input format (default: from the extension)")
  s.add_argument("--val-fraction", type=float, default=0.1)
  s.add_argument("--split", choices=("auto", "records", "blocks"), default="auto",
                 help="hold out whole records, or a block at the end of each record (auto: records if >= 5)")
  s.add_argument("--n-run", type=int, default=10, help="split records at runs of at least this many N")
  s.add_argument("--min-len", type=int, default=64, help="drop segments shorter than this")
  s.add_argument("--seed", type=int, default=0)
  s.add_argument("--force", action="store_true", help="replace a different corpus at --output")

  s = sub.add_parser("fetch", help="download nucleotide records from NCBI (cached)")
  s.add_argument("accessions", nargs="+", metavar="ACCESSION")
  s.add_argument("--output", required=True)
  s.add_argument("--email", help="your e-mail address, sent to NCBI as E-utilities asks")
  s.add_argument("--format", choices=("fasta", "genbank"), default="fasta")

  s = sub.add_parser("train", help="train (or resume) a model in --workdir",
                     epilog="Any config field can be overridden: --config.model.num_layers=2")
  s.add_argument("--config", default="configs/default.py", help="config file (default configs/default.py)")
  s.add_argument("--workdir", required=True)
  s.add_argument("--data", nargs="+", help="FASTA/GenBank files or a prepared corpus (replaces data.sources)")
  s.add_argument("--no-progress", action="store_true", help="no progress bar")
  s.add_argument("--dry-run", action="store_true",
                 help="compile the step for the configured mesh; print parameters, FLOPs, memory; do not train")
  s.add_argument("--stop-at", type=int, metavar="STEP",
                 help="stop (validated and checkpointed) at this step; the schedule still spans train.steps")
  s.add_argument("--coordinator", help="host:port of process 0 (multi-process runs)")
  s.add_argument("--num-processes", type=int)
  s.add_argument("--process-id", type=int)

  s = sub.add_parser("evaluate", help="masked accuracy / loss of a checkpoint on FASTA/GenBank files")
  s.add_argument("--workdir", required=True)
  s.add_argument("--input", nargs="+", required=True)
  s.add_argument("--step", type=int, help="checkpoint step (default: latest)")
  s.add_argument("--mask-rate", type=float, help="default: the training config's eval.mask_rate")
  s.add_argument("--seed", type=int, help="mask seed (default: the training config's eval.seed)")
  s.add_argument("--format", choices=("fasta", "genbank"))
  s.add_argument("--json", action="store_true", help="print one JSON object")
  s.add_argument("--no-reverse-complement", action="store_true",
                 help="skip the reverse-strand pass (the strand-consistency score; halves the time)")

  s = sub.add_parser("predict", help="fill the '?' positions of a FASTA file")
  s.add_argument("--workdir", required=True)
  s.add_argument("--input", required=True, help="FASTA with ? at the positions to fill")
  s.add_argument("--output", help="TSV path (the filled FASTA goes beside it); default: TSV on stdout")
  s.add_argument("--step", type=int)

  s = sub.add_parser("baseline", help="the k-mer context and majority-base baselines alone")
  s.add_argument("--data", nargs="+", required=True, help="training data: FASTA/GenBank files or a prepared corpus")
  s.add_argument("--input", nargs="+", required=True, help="files to evaluate on")
  s.add_argument("--mask-rate", type=float, default=0.15)
  s.add_argument("--seed", type=int, default=1234)
  s.add_argument("--seq-len", type=int, default=128, help="evaluation window length")
  s.add_argument("--format", choices=("fasta", "genbank"))
  s.add_argument("--json", action="store_true")

  s = sub.add_parser("score", help="pseudo-log-likelihood of each sequence (each base or codon masked in turn)")
  s.add_argument("--workdir", required=True)
  s.add_argument("--input", nargs="+", required=True)
  s.add_argument("--unit", choices=("base", "codon"), default="base",
                 help="mask one base at a time, or the three bases of each codon together")
  s.add_argument("--step", type=int)
  s.add_argument("--format", choices=("fasta", "genbank"))
  s.add_argument("--json", action="store_true", help="one JSON object (with per-position log-probabilities)")

  s = sub.add_parser("design", help="coding sequences for a protein: model-scored, under synthesis constraints")
  s.add_argument("--workdir", required=True, help="a trained run (configs/cds.py trains on coding sequences)")
  s.add_argument("--protein", help="one-letter amino-acid sequence (a trailing * is stripped)")
  s.add_argument("--protein-fasta", help="protein FASTA, one design set per record")
  s.add_argument("--organism", default="e_coli", help="codon usage: e_coli, s_cerevisiae, h_sapiens, ...")
  s.add_argument("--genetic-code", type=int, help="NCBI table (default: the organism's: 11 bacteria, else 1)")
  s.add_argument("--gc-min", type=float, default=0.0)
  s.add_argument("--gc-max", type=float, default=1.0)
  s.add_argument("--gc-window", type=int, default=50)
  s.add_argument("--avoid-sites", default="", help="restriction enzymes, e.g. BsaI,BsmBI")
  s.add_argument("--max-homopolymer", type=int, default=0, help="longest allowed run of one base (0: no limit)")
  s.add_argument("--avoid-repeats", type=int, default=0, help="no K-mer twice on either strand (0: off)")
  s.add_argument("--avoid-splice-sites", action="store_true",
                 help="no consensus splice donor (GTRAGT) or acceptor (Y11-N-CAG) on the coding strand")
  s.add_argument("--n", type=int, default=1, help="designs per protein")
  s.add_argument("--seed", type=int, default=0)
  s.add_argument("--rounds", type=int, default=3, help="passes of model-guided synonymous codon changes")
  s.add_argument("--pll-unit", choices=("codon", "base"), default="codon",
                 help="the reported pseudo-log-likelihood masks each codon (default) or each base in turn")
  s.add_argument("--output", help="designs FASTA (the proteins go to OUTPUT.protein.fasta); default: stdout")
  s.add_argument("--report", help="TSV: PLL, CAI, GC, windows, homopolymer, repeats, sites per design")

  s = sub.add_parser("generate", help="new sequences by iterative, confidence-ordered unmasking; plausibility report")
  s.add_argument("--workdir", required=True)
  s.add_argument("--length", type=int, required=True, help="bases per sequence, prefix included")
  s.add_argument("--prefix", default="", help="fixed start (A/C/G/T), e.g. a start codon")
  s.add_argument("--n", type=int, default=1, help="sequences to generate")
  s.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (0: the most likely base)")
  s.add_argument("--steps", type=int, help="unmasking steps (default: a quarter of the masked length, at most 256)")
  s.add_argument("--order-noise", type=float, default=4.5,
                 help="Gumbel noise on the confidence order at the first step, fading to 0 (0: confidence only)")
  s.add_argument("--seed", type=int, default=0)
  s.add_argument("--genetic-code", type=int, default=11, help="NCBI table for ORFs and stops in the report")
  s.add_argument("--min-orf", type=int, default=100, help="count ORFs of at least this many codons")
  s.add_argument("--no-score", action="store_true", help="skip the exact pseudo-log-likelihood (one pass per base)")
  s.add_argument("--output", help="FASTA path (default: stdout)")
  s.add_argument("--report", help="TSV: PLL, GC, ORFs (and a shuffled reference), stops per frame, homopolymer")

  s = sub.add_parser("report", help="training/validation curves (PNG) and a Markdown summary of a run")
  s.add_argument("--workdir", required=True)
  s.add_argument("--output", help="Markdown path; the PNGs go beside it (default: WORKDIR/report.md)")

  s = sub.add_parser("quality", help="benchmark: train a config on synthetic and real genomes; table vs baselines")
  s.add_argument("--workdir", required=True, help="runs go to WORKDIR/synthetic and WORKDIR/ecoli (reused if done)")
  s.add_argument("--config", default="configs/cpu.py")
  s.add_argument("--data-dir", help="the shared data directory (default: ../shared/data beside the project)")
  s.add_argument("--only", choices=("synthetic", "real"))
  s.add_argument("--output", help="write the results as JSON here")

  s = sub.add_parser("bench", help="tokens/s, MFU, compile time, memory, input rate; optionally vs PyTorch")
  s.add_argument("--config", default="configs/small.py")
  s.add_argument("--steps", type=int, default=10, help="steps per timed window")
  s.add_argument("--windows", type=int, default=5, help="timed windows (the median is reported)")
  s.add_argument("--output", help="write the results as JSON here")
  s.add_argument("--compare-torch", action="store_true", help="also run the PyTorch reference (pip install dnajax[bench])")
  return p


def _split_overrides(argv: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
  rest, overrides, i = [], [], 0
  while i < len(argv):
    a = argv[i]
    if a.startswith("--config."):
      key, eq, value = a[len("--config."):].partition("=")
      if not eq:
        if i + 1 >= len(argv):
          raise UserError(f"{a}: missing value; write {a}=VALUE")
        value, i = argv[i + 1], i + 1
      overrides.append((key, value))
    else:
      rest.append(a)
    i += 1
  return rest, overrides


def run(argv: list[str]) -> int:
  argv, overrides = _split_overrides(argv)
  args = _build_parser().parse_args(argv)
  if overrides and args.verb not in ("train", "bench", "quality"):
    raise UserError(f"--config.* overrides apply to `dnajax train`, `bench` and `quality` only, not `{args.verb}`")
  from dnajax import runtime
  runtime.setup_logging()

  if args.verb == "prepare":
    from dnajax import corpus, io
    files = io.expand_inputs(args.input)
    records = io.read_files(files, args.format)
    settings = corpus.SplitSettings(args.val_fraction, args.split, args.n_run, args.min_len, args.seed)
    c = corpus.prepare(records, args.output, settings, sources=files, force=args.force)
    splits = {k: sum(s["length"] for s in c.split(k)) for k in ("train", "val")}
    print(f"prepared {args.output}: {len(c.segments)} segments from {c.index['num_records']} records, "
          f"{splits['train']:,} train / {splits['val']:,} val bases (split by {c.index['split_mode']})")
  elif args.verb == "fetch":
    from dnajax import fetch
    r = fetch.fetch(args.accessions, args.output, args.format, args.email)
    print(f"wrote {r['records']} record(s) to {r['output']} ({r['from_cache']} from the cache)")
  elif args.verb == "train":
    from dnajax import config as config_lib
    cfg = config_lib.load(args.config, overrides)
    if args.data:
      with cfg.data.unlocked():
        cfg.data.sources = tuple(args.data)
    runtime.initialize(args.coordinator, args.num_processes, args.process_id)
    runtime.quiet_unless_main()
    from dnajax import train
    if args.dry_run:
      print(train.describe_dry_run(train.dry_run(cfg)))
      return 0
    final = train.train_and_evaluate(cfg, args.workdir, show_progress=not args.no_progress, stop_at=args.stop_at)
    if final.get("interrupted"):
      print(f"stopped by {final['signal']} after step {final['checkpoint_step']} (checkpoint saved); rerun the "
            "same command to resume", file=sys.stderr)
    elif runtime.is_main():
      print(f"final validation (step {final['checkpoint_step']}, {final['wall_seconds']:.0f} s): "
            f"{train.describe_eval(final)}")
  elif args.verb == "evaluate":
    from dnajax import evaluate
    r = evaluate.evaluate(args.workdir, args.input, args.step, args.mask_rate, args.seed, args.format,
                          progress=True, reverse_complement=not args.no_reverse_complement)
    print(json.dumps(r, indent=1) if args.json else evaluate.format_text(r))
  elif args.verb == "score":
    from dnajax import score
    r = score.score(args.workdir, args.input, args.unit, args.step, args.format, per_position=args.json)
    print(json.dumps(r) if args.json else score.format_tsv(r), end="" if not args.json else "\n")
  elif args.verb == "design":
    from dnajax import design
    proteins = design.read_proteins(args.protein, args.protein_fasta)
    c = design.Constraints(args.gc_min, args.gc_max, args.gc_window,
                           tuple(x.strip() for x in args.avoid_sites.split(",") if x.strip()),
                           args.max_homopolymer, args.avoid_repeats, args.avoid_splice_sites)
    designs, infeasible = design.run(args.workdir, proteins, args.organism, args.genetic_code, c, args.n, args.seed,
                                     args.rounds, pll_unit=args.pll_unit)
    fasta = design.write_outputs(designs, proteins, args.output, args.report)
    if not args.output:
      sys.stdout.write(fasta)
    for name, why in infeasible:
      print(f"dnajax: error: protein {name}: infeasible: {why}", file=sys.stderr)
    if infeasible:
      return 2
  elif args.verb == "generate":
    from dnajax import generate
    results = generate.run(args.workdir, args.length, args.prefix, args.n, args.temperature, args.steps, args.seed,
                           args.genetic_code, args.min_orf, score=not args.no_score, order_noise=args.order_noise)
    fasta, tsv = generate.write_outputs(results, args.output, args.report)
    if not args.output:
      sys.stdout.write(fasta)
    if not args.report:
      sys.stderr.write(tsv)
  elif args.verb == "report":
    from dnajax import report
    md, images = report.report(args.workdir, args.output)
    print(f"wrote {md} and {', '.join(images)}")
  elif args.verb == "predict":
    from dnajax import predict
    out, fasta = predict.predict(args.workdir, args.input, args.output, args.step)
    if fasta is None:
      sys.stdout.write(out)
    else:
      print(f"wrote {out} and {fasta}", file=sys.stderr)
  elif args.verb == "baseline":
    from dnajax import baselines
    if not 0.0 < args.mask_rate < 1.0:
      raise UserError(f"--mask-rate {args.mask_rate}: must be between 0 and 1")
    r = baselines.run(args.data, args.input, args.mask_rate, args.seed, args.seq_len, args.format)
    k = r["kmer"]
    print(json.dumps(r, indent=1) if args.json else
          f"{r['num_masked']} masked bases: k-mer context model (k={k['max_k']}, min count {k['min_count']}) "
          f"masked_accuracy {k['masked_accuracy']:.4f} loss {k['loss']:.4f}; majority base "
          f"{r['majority_base_of_training_data']['masked_accuracy']:.4f}; uniform 0.25")
  elif args.verb == "quality":
    from dnajax import io, quality
    r = quality.run(args.workdir, args.config, args.data_dir, args.only, overrides=overrides)
    if args.output:
      io.atomic_write_text(args.output, json.dumps(r, indent=1) + "\n")
    print(quality.table(r))
  elif args.verb == "bench":
    from dnajax import bench
    if args.steps < 1 or args.windows < 1:
      raise UserError("--steps and --windows must be at least 1")
    print(bench.format_table(bench.bench(args.config, overrides, args.steps, args.windows, args.compare_torch,
                                         args.output)))
  return 0


def main(argv: list[str] | None = None) -> int:
  try:
    return run(sys.argv[1:] if argv is None else argv)
  except UserError as e:
    print(f"dnajax: error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("dnajax: interrupted", file=sys.stderr)
    return 130


if __name__ == "__main__":
  sys.exit(main())
