"""`dnajax vep`: zero-shot variant effect scores from a VCF (or a table of variants) and a reference genome.

Each SNV gets the log-likelihood ratio log p(alt) - log p(ref) of a trained model with its position masked in a
window of the reference centred on it (`evaluation/vep.py` says exactly how), averaged over both strands by default.
Output: a TSV (one row per scored or flagged variant, input order) or, for `--output x.vcf[.gz]`, the input VCF with
the score in INFO (`DNAJAX_LLR`, one value per ALT). What was skipped and why, the share of REF mismatches and the
throughput go to stderr.
"""

from __future__ import annotations

import collections
import gzip
import sys
import time

from dnajax import runtime
from dnajax.data import genome, variants, vcf_writer, writers
from dnajax.errors import UserError
from dnajax.evaluation import vep
from dnajax.evaluation.engine import Engine

COLUMNS = ("chrom", "pos", "id", "ref", "alt", "score", "kind", "score_forward", "score_reverse", "ref_prob",
           "alt_prob", "window", "flag")
INFO_LINES = (
    '##INFO=<ID=DNAJAX_LLR,Number=A,Type=Float,Description="dnajax vep score per ALT: log p(alt) - log p(ref) of '
    'the masked-nucleotide model (natural log; SNVs masked in a window centred on the variant; MNVs/indels: '
    'pseudo-log-likelihood difference over the shared flanks); negative = less likely than the reference">',
    '##INFO=<ID=DNAJAX_FLAG,Number=A,Type=String,Description="dnajax vep: why an ALT has no score (ref_mismatch: '
    'REF differs from the reference; longer_than_window; skipped: symbolic, star, no_alt, not_acgt, same_as_ref, '
    'outside_reference, indel_skipped)">')


def add_arguments(p) -> None:
  p.add_argument("--workdir", required=True, help="a training run (its latest checkpoint unless --step)")
  p.add_argument("--reference", required=True, help="FASTA, plain or bgzip (plain gzip is decompressed once into "
                 "the cache); a record named like chr17:42425000-43600000 holds that region")
  src = p.add_mutually_exclusive_group(required=True)
  src.add_argument("--vcf", help="VCF or BCF, plain or bgzip")
  src.add_argument("--variants", help="TSV (or .csv) with header columns chrom pos ref alt [id]")
  p.add_argument("--output", required=True, help="OUT.tsv (OUT.tsv.gz: gzip; '-': stdout), or OUT.vcf / OUT.vcf.gz "
                 "for the input VCF with the score in INFO")
  p.add_argument("--window", type=int, help="context bases around each variant, 2..the model's training window "
                 "(the default)")
  p.add_argument("--strands", choices=vep.STRANDS, default="both",
                 help="both: mean of the forward and reverse-complement scores (default); forward: forward only")
  p.add_argument("--indels", choices=vep.INDEL_MODES, default="pll",
                 help="MNVs and indels: pseudo-log-likelihood difference over the shared flanks, or skip them")
  p.add_argument("--allow-shifted-positions", action="store_true",
                 help="score the positions as written even when they look shifted by one (most REFs differ from the "
                 "reference and match it one base further on, as 0-based positions do, or one base earlier); "
                 "refused without it")
  p.add_argument("--step", type=int, help="checkpoint step (default: the latest)")
  p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _number(x, fmt: str = ".6f") -> str:
  return "" if x is None else format(x, fmt)


def format_tsv(vs: list[variants.Variant], results: list) -> str:
  """The TSV: header `COLUMNS`, one line per scored or flagged variant in input order."""
  lines = ["\t".join(COLUMNS)]
  for v, r in zip(vs, results):
    if r is None:
      continue
    lines.append("\t".join([v.chrom, str(v.pos), v.id, v.ref, v.alt, _number(r.score), r.kind,
                            _number(r.score_forward), _number(r.score_reverse), _number(r.ref_prob),
                            _number(r.alt_prob), "" if r.window is None else str(r.window), r.flag]))
  return "\n".join(lines) + "\n"


def format_vcf(vset: variants.VariantSet, results: list, reasons: dict | None = None, meta: str = "") -> str:
  """The input's lines (a VCF's own, or one line per table row) with DNAJAX_LLR per ALT in INFO, and DNAJAX_FLAG
  saying why an ALT has no score (flagged or skipped); `meta` (a `##` line: the model and settings) joins the
  header."""
  per_record: dict[int, dict[int, tuple[str, str]]] = {}
  for (record, allele), reason in vset.skip_reasons.items():
    per_record.setdefault(record, {})[allele] = (".", reason)
  for k, (v, r) in enumerate(zip(vset.variants, results)):
    if r is not None:
      per_record.setdefault(v.record, {})[v.allele] = (_number(r.score, ".5f") or ".", r.flag or ".")
    elif reasons and k in reasons:
      per_record.setdefault(v.record, {})[v.allele] = (".", reasons[k])
  header, lines = vset.header, vset.lines
  if lines is None:  # a table: a minimal VCF, one line per row
    rows: dict[int, list[variants.Variant]] = {}
    for v in vset.variants:
      rows.setdefault(v.record, []).append(v)
    lines = [None] * vset.records
    for k, vs in rows.items():
      lines[k] = vcf_writer.minimal_lines([(vs[0].chrom, vs[0].pos, vs[0].id, vs[0].ref,
                                            ",".join(v.alt for v in vs))])[0]
  return vcf_writer.annotated(header if vset.lines is not None else None, lines, per_record,
                              ("DNAJAX_LLR", "DNAJAX_FLAG"), INFO_LINES, meta)


def _summary(vset: variants.VariantSet, results: list, skipped, seconds: float, output: str,
             window: int, refs: vep.RefCheck) -> list[str]:
  """The stderr lines: counts (scored by kind, flagged, skipped by reason), throughput, and warnings for REF
  mismatches above vep.MISMATCH_WARN (with how many match one base further on) and for SNVs scored with less than
  half the window of context."""
  scored = [r for r in results if r is not None and r.score is not None]
  flags = collections.Counter(r.flag for r in results if r is not None and r.flag)
  kinds = collections.Counter(r.kind for r in scored)
  n = len(vset.variants) + sum(vset.skipped.values())
  kind_text = ", ".join(f"{k} {c}" for k, c in kinds.items())
  parts = [f"{n} ALT alleles in {vset.records} records; scored {len(scored)}" + (f" ({kind_text})" if kinds else "")]
  if flags:
    parts.append("flagged, not scored: " + ", ".join(f"{c} {f}" for f, c in flags.items()))
  skip = variants.describe_skipped(skipped)
  if skip:
    parts.append("skipped: " + skip)
  where = "stdout" if output == "-" else output
  parts.append(f"{len(scored) / max(seconds, 1e-9):.1f} variants/s ({seconds:.1f} s scoring) -> {where}")
  lines = ["dnajax vep: " + "; ".join(parts)]
  if refs.mismatched > vep.MISMATCH_WARN * refs.checked:
    lines.append(f"dnajax: warning: {_mismatch_text(refs)}; those are flagged ref_mismatch, not scored"
                 + (f"; the {refs.checked - refs.mismatched} whose REF matches at the position as written were scored "
                    "there (--allow-shifted-positions)" if refs.looks_shifted else ""))
  short = sum(1 for r in scored if r.kind == "snv" and r.window < window // 2)
  if short:
    lines.append(f"dnajax: warning: {short} SNVs were scored with less than half of the {window}-base window (N runs "
                 "or contig ends around them; see the window column): their scores rest on little context")
  return lines


def _mismatch_text(refs: vep.RefCheck) -> str:
  """'N of M variants (x%) have a REF that differs from the reference at their position (K of them match it one base
  further on, J one base earlier)'."""
  sides = [(n, side) for n, side in ((refs.shifted, "further on"), (refs.shifted_back, "earlier")) if n]
  shifts = ", ".join(f"{n}{' of them' if not k else ''} match it one base {side}" for k, (n, side) in enumerate(sides))
  return (f"{refs.mismatched} of {refs.checked} variants ({100 * refs.mismatched / refs.checked:.1f}%) have a REF "
          "that differs from the reference at their position" + (f" ({shifts})" if shifts else ""))


def _output_kind(output: str) -> str:
  """'vcf', 'vcf.gz', 'tsv.gz', 'stdout' or 'tsv' from the --output name; UserError for a format not written."""
  low = output.lower()
  if output == "-":
    return "stdout"
  if low.endswith(".bcf"):
    raise UserError(f"--output {output}: BCF is not written; name it .vcf.gz (bgzip VCF) or .tsv")
  if low.endswith(".csv"):
    raise UserError(f"--output {output}: the table is tab-separated; name it .tsv (or .vcf / .vcf.gz for a VCF)")
  for ext in ("vcf", "vcf.gz", "tsv.gz"):
    if low.endswith("." + ext) or (ext == "vcf.gz" and low.endswith(".vcf.bgz")):
      return ext
  return "tsv"


def _write(kind: str, output: str, vset: variants.VariantSet, results: list, reasons: dict, meta: str) -> None:
  if kind == "stdout":
    sys.stdout.write(format_tsv(vset.variants, results))
  elif kind == "tsv":
    writers.atomic_write_text(output, format_tsv(vset.variants, results))
  elif kind == "tsv.gz":
    writers.write_all([("--output", output, gzip.compress(format_tsv(vset.variants, results).encode(), mtime=0))])
  else:
    text = format_vcf(vset, results, reasons, meta)
    writers.write_all([("--output", output, text if kind == "vcf" else vcf_writer.bgzip(text))])


def run(workdir: str, reference: str, output: str, vcf: str | None = None, table: str | None = None,
        window: int | None = None, strands: str = "both", indels: str = "pll", step: int | None = None,
        batch_size: int | None = None, progress: bool = True, allow_shifted: bool = False) -> dict:
  """Scores the variants of `vcf` (or `table`) against `reference` with the model of `workdir` and writes `output`
  (TSV; `.tsv.gz` gzip; `.vcf`/`.vcf.gz` a VCF; `-` the TSV on stdout). Returns {variants, results, reasons (skip
  reason by variant index), skipped (counts), seconds, summary (stderr lines)}.

  `batch_size` overrides the engine's rows per forward pass (scores do not depend on it). Raises UserError for bad
  inputs - files, contigs, positions, nothing to score, positions that look shifted by one (`vep.RefCheck`; scored
  as written only with `allow_shifted`) - before the model is loaded, and when no variant could be scored (every REF
  differs from the reference); nothing is written then."""
  if window is not None and window < 2:
    raise UserError(f"--window {window}: use at least 2 bases (default: the model's training window)")
  kind = _output_kind(output)
  inputs = [("--reference", reference)] + ([("--vcf", vcf)] if vcf else [("--variants", table)])
  if kind != "stdout":
    writers.check_outputs([("--output", output)], inputs)
  vset = variants.read_vcf(vcf, keep_lines=kind.startswith("vcf")) if vcf else variants.read_table(table)
  where = f"--vcf {vcf}" if vcf else f"--variants {table}"
  if not vset.variants:
    skip = variants.describe_skipped(vset.skipped)
    raise UserError(f"{where}: no variant to score ({vset.records} records" + (f"; skipped: {skip}" if skip else "")
                    + "); nothing written")
  ref = genome.Reference(reference, progress)
  try:
    sites = [vep.locate(ref, v, f"{where}, record {v.record + 1} ({v.chrom}:{v.pos})", 0)
             for v in vset.variants]  # every contig, position and REF is checked before the model is loaded
    if not any(site is not None for site in sites):
      raise UserError(f"{where}: none of the {len(vset.variants)} variants lies in the sequence the reference "
                      f"holds ({_held(ref)}); nothing written")
    refs = vep.check_refs(ref, vset.variants, sites)
    if refs.looks_shifted and not allow_shifted:
      raise UserError(f"{where}: positions look shifted by one{' (0-based?)' if refs.shift > 0 else ''}: "
                      f"{_mismatch_text(refs)}; positions are read 1-based, as VCF's POS: "
                      f"{'add 1 to' if refs.shift > 0 else 'subtract 1 from'} every position, or pass "
                      "--allow-shifted-positions to score them as written; nothing written")
    engine = Engine.from_workdir(workdir, step)
    if batch_size:
      engine.batch_size = -(-batch_size // engine.unit) * engine.unit
    t0 = time.perf_counter()
    results, reasons = vep.score_variants(engine, ref, vset.variants, window, strands, indels, where, progress)
    seconds = time.perf_counter() - t0
  finally:
    ref.close()
  if not any(r is not None and r.score is not None for r in results):
    flags = collections.Counter(r.flag for r in results if r is not None)
    raise UserError(f"{where}: no variant could be scored (" + ", ".join(f"{c} {f}" for f, c in flags.items())
                    + ("; ref_mismatch: the REF differs from the reference at its position; pass the reference "
                       "the variants were called against" if "ref_mismatch" in flags else "") + "); nothing written")
  meta = (f"##dnajax_vepCommand=<workdir={workdir},checkpoint_step={engine.step},window={window or engine.seq_len},"
          f"strands={strands},indels={indels}>")
  if runtime.is_main():
    _write(kind, output, vset, results, reasons, meta)
  skipped = vset.skipped + collections.Counter(reasons.values())
  summary = _summary(vset, results, skipped, seconds, output, window or engine.seq_len, refs)
  return {"variants": vset.variants, "results": results, "reasons": reasons, "skipped": skipped, "seconds": seconds,
          "summary": summary}


def _held(ref: genome.Reference) -> str:
  parts = [f"{s.contig}:{s.start + 1}-{s.end}" for segs in ref.segments.values() for s in segs]
  return ", ".join(parts[:4]) + (f" (and {len(parts) - 4} more)" if len(parts) > 4 else "")


def main(args, overrides) -> int:
  r = run(args.workdir, args.reference, args.output, args.vcf, args.variants, args.window, args.strands, args.indels,
          args.step, progress=not args.no_progress, allow_shifted=args.allow_shifted_positions)
  if runtime.is_main():
    for line in r["summary"]:
      print(line, file=sys.stderr)
  return 0
