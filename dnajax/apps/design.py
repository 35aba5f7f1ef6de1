"""`dnajax design`: coding sequences for a protein, scored by a trained model, under manufacturability constraints.

The search is `dnajax.design.search` (constraints in `dnajax.design.constraints`, the expression objective in
`dnajax.design.expression_search`); this module reads the proteins, checks the options, runs it and writes the designs
and their report.

Proteins are matched to their designs by position in the input, never by name: records with the same id get unique
names (ID_recordN) and the report says which input record each design came from.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import sys

from tqdm import tqdm

from dnajax.bio import codons, expression, sequence
from dnajax.data import readers, rundir, tokens, writers
from dnajax.data import text as text_lib
from dnajax.design import search
from dnajax.design.constraints import Constraints, Infeasible
from dnajax.design.expression_search import Guide
from dnajax.errors import UserError, warn
from dnajax.evaluation.engine import SCORING_UNITS, Engine


@dataclasses.dataclass(frozen=True)
class ProteinInput:
  """One protein to design for: `name` is unique among the inputs; `record` is its 1-based position in the input
  and `record_id` its id as given (empty for --protein)."""

  name: str
  sequence: str
  record: int = 1
  record_id: str = ""


def check_protein(name: str, protein: str, allow_nucleotide_letters: bool = False) -> str:
  """The protein in upper case without a trailing '*'. UserError (starting with `name`, which says where it came
  from) for an empty one, non-amino-acid letters, or - unless `allow_nucleotide_letters` - one that looks like a
  nucleotide sequence (codons.looks_like_nucleotides: 10 or more letters, all nucleotide codes)."""
  p = "".join(protein.split()).upper().rstrip("*")
  if p and not allow_nucleotide_letters and codons.looks_like_nucleotides(p):
    raise UserError(f"{name}: looks like a nucleotide sequence ({len(p)} letters, all A/C/G/T/U/N or IUPAC codes), "
                    "not a protein; give its amino-acid translation, or pass --allow-nucleotide-letters if it "
                    "really is a protein")
  bad = sorted(set(p) - codons.PROTEIN_LETTERS)
  if not p or bad:
    raise UserError(f"{name}: {'empty' if not p else 'letters ' + ''.join(bad) + ' are not amino acids'}; "
                    "give the 20 standard one-letter codes (a trailing * is allowed)")
  return p


def unique_names(ids: list[str]) -> list[str]:
  """One name per input record, in order: its id when no other record has it, else ID_recordN (N its 1-based
  position; 'protein' stands in for an empty id), extended further in the unlikely case that is taken too."""
  ids = [i or "protein" for i in ids]
  counts = collections.Counter(ids)
  taken = {i for i in ids if counts[i] == 1}
  out = []
  for n, i in enumerate(ids, 1):
    name = i
    if counts[i] > 1:
      name = f"{i}_record{n}"
      while name in taken:
        name += f"_record{n}"
    taken.add(name)
    out.append(name)
  return out


def read_protein_records(path: str) -> list[tuple[str, str]]:
  """[(record id, letters)] of a protein FASTA (plain or gzip); a file with no '>' at all and only letters (and a
  trailing '*') is one bare protein sequence, its id the file name without extensions. UserError for text before
  the first header or a header-less file that is not a sequence."""
  text = text_lib.read_text(path)
  lines = text.split("\n")
  first = next(i for i, line in enumerate(lines) if line.strip())  # read_text refuses an all-blank file
  if not lines[first].lstrip().startswith(">"):
    header = next((i for i, line in enumerate(lines) if line.lstrip().startswith(">")), None)
    if header is not None:
      raise UserError(f"{path}: line {first + 1} comes before the first '>' header (line {header + 1}); remove it "
                      "or give it a header")
    letters = "".join(text.split())
    odd = sorted(set(letters.rstrip("*")) - set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
    if odd:
      raise UserError(f"{path}: neither FASTA (no '>' header) nor a bare protein sequence (characters "
                      f"{''.join(odd)!r}); give one protein per '>' record")
    return [(os.path.basename(path).split(".")[0], letters)]
  return list(readers.fasta_records(path, text))


def read_proteins(protein: str | None, fasta: str | None, allow_nucleotide_letters: bool = False,
                  start: str = "") -> list[ProteinInput]:
  """The proteins of --protein or a protein FASTA, each with a unique name and its input record; with a start
  sequence (`read_start_sequence`) and neither, its translation. UserError for anything else (naming the file and
  record)."""
  if start and fasta:
    raise UserError("--start-sequence improves one coding sequence: give it alone or with --protein, not with "
                    "--protein-fasta")
  if start and not protein:
    return [ProteinInput("protein", _translation(start))]
  if bool(protein) == bool(fasta):
    raise UserError("give exactly one of --protein SEQUENCE or --protein-fasta FILE (or --start-sequence CDS)")
  if protein:
    return [ProteinInput("protein", check_protein("--protein", protein, allow_nucleotide_letters))]
  records = read_protein_records(fasta)
  names = unique_names([rid for rid, _ in records])
  return [ProteinInput(name, check_protein(f"{fasta} record {i} ({rid or 'no id'})", letters,
                                           allow_nucleotide_letters), i, rid)
          for i, (name, (rid, letters)) in enumerate(zip(names, records), 1)]


def read_start_sequence(value: str | None) -> str:
  """The --start-sequence as upper-case A/C/G/T ("" when not given): the letters given, or the one record of a FASTA
  file of that name. UserError for other letters, a length that is not whole codons, or a file of several records."""
  if not value:
    return ""
  where = "--start-sequence"
  if os.path.isfile(value):
    records = readers.read_file(value)
    if len(records) != 1:
      raise UserError(f"--start-sequence {value}: {len(records)} records; give a file with one coding sequence")
    where, letters = f"--start-sequence {value}", tokens.decode(records[0].ids)
  else:
    letters = "".join(value.split())
  seq = letters.upper().replace("U", "T")
  bad = sorted(set(seq) - set("ACGT"))
  if bad or not seq:
    raise UserError(f"{where}: {'empty' if not seq else 'letters ' + ''.join(bad) + ' are not A/C/G/T/U'}; give a "
                    "coding sequence (or a FASTA file holding one)")
  if len(seq) % 3:
    raise UserError(f"{where}: {len(seq)} nt is not a whole number of codons; give the coding sequence from its start "
                    "codon")
  return seq


def _translation(cds: str, code: int = 11) -> str:
  """The protein a start sequence encodes (its final stop codon, if any, dropped); UserError for an internal stop."""
  from Bio.Seq import Seq

  protein = str(Seq(cds).translate(table=code))
  protein = protein[:-1] if protein.endswith("*") else protein
  if "*" in protein:
    raise UserError(f"--start-sequence: stop codon at codon {protein.index('*') + 1} of {len(cds) // 3}; give one "
                    "open reading frame")
  return protein


def check_start(start: str, protein: str, usage, code: int, score_only: bool) -> tuple[str, str]:
  """(the start sequence checked against `protein`, the stop codon appended to it or ""): the organism's most used
  stop codon is appended when it has none (--score-only keeps it as given). UserError when it does not translate to
  `protein`."""
  translated = _translation(start, code)
  if translated != protein:
    at = next((i for i, (a, b) in enumerate(zip(translated, protein)) if a != b), min(len(translated), len(protein)))
    raise UserError(f"--start-sequence translates to a protein of {len(translated)} aa that differs from --protein "
                    f"({len(protein)} aa) at residue {at + 1}; give a coding sequence of the protein")
  if len(start) == 3 * len(protein) and not score_only:
    stop = max(usage["*"], key=usage["*"].get)
    return start + stop, stop
  return start, ""


def parse_locks(values: list[str], start: str, n_codons: int) -> tuple[tuple[int, int], ...]:
  """--lock START-END values as codon ranges (1-based, inclusive; a single N is N-N). UserError for a bad range, one
  outside the `n_codons` codons (stop codon included), or locks without a --start-sequence to keep."""
  if values and not start:
    raise UserError("--lock keeps codons of --start-sequence CDS; give the coding sequence whose codons to keep")
  out = []
  for v in values:
    a, _, b = v.partition("-")
    try:
      lo, hi = int(a), int(b or a)
    except ValueError:
      raise UserError(f"--lock {v!r}: give START-END codon numbers, e.g. --lock 1-20") from None
    if lo > hi:
      raise UserError(f"--lock {v}: END comes before START; give START-END with START <= END, e.g. --lock {hi}-{lo}")
    if not 1 <= lo <= hi <= n_codons:
      raise UserError(f"--lock {v}: outside codons 1-{n_codons} of the start sequence (stop codon included); give "
                      "1-based inclusive codon ranges within it")
    out.append((lo, hi))
  return tuple(sorted(out))


OBJECTIVES = ("pll", "expression")


def make_guide(objective: str, expression_model: str | None, max_codon_distance: int | None) -> Guide:
  """The search's objective with its predictor loaded. Raises UserError for an unknown objective, expression without
  --expression-model, a trust region without one (or one that does not keep its training sequences) or a negative
  bound, and for a directory that is not a regression fine-tuning."""
  if objective not in OBJECTIVES:
    raise UserError(f"--objective {objective!r}: use pll or expression")
  if expression_model is None:
    if objective == "expression" or max_codon_distance is not None:
      what = "--objective expression" if objective == "expression" else "--max-codon-distance"
      raise UserError(f"{what} needs --expression-model FT (a `dnajax finetune --task regression` directory)")
    return Guide(objective)
  if max_codon_distance is not None and max_codon_distance < 0:
    raise UserError(f"--max-codon-distance {max_codon_distance}: give 0 or more codons")
  from dnajax.evaluation.expression_model import ExpressionModel

  hint = "pass the --output directory of `dnajax finetune --task regression`"
  if not os.path.exists(expression_model):
    raise UserError(f"--expression-model {expression_model}: does not exist; {hint}")
  if rundir.kind(expression_model) == rundir.PRETRAINING:
    raise UserError(f"--expression-model {expression_model}: a pretraining run, not a fine-tuning; {hint} (the "
                    "pretraining run goes to --workdir)")
  model = ExpressionModel(expression_model)
  if max_codon_distance is not None and not model.has_training():
    raise UserError(f"--max-codon-distance: {expression_model} does not keep its training sequences (fine-tuned by an "
                    "older dnajax); fine-tune it again to measure distances")
  return Guide(objective, model, max_codon_distance)


def genetic_code(organism: str, code: int | None) -> int:
  """The NCBI table of --genetic-code, else the organism's; UserError for an unknown organism or table."""
  code = codons.ORGANISMS[codons.check_organism(organism)][1] if code is None else code
  codons.check_genetic_code(code)
  return code


def run(workdir: str, proteins: list[ProteinInput], organism: str, code: int | None, c: Constraints, n: int,
        seed: int, rounds: int | None = None, progress: bool = True, pll_unit: str = "codon",
        guide: Guide | None = None, score_only: bool = False) -> tuple[list[dict], list[tuple[str, str]]]:
  """(designs, [(protein name, why infeasible)]), each protein's designs ranked best first. Model and constraints are
  checked before any search; `rounds` defaults to search.DEFAULT_ROUNDS of the objective. With `score_only`, the one
  report of c.start_sequence as given (objective "score_only"; the constraints it breaks in `violations`)."""
  code = genetic_code(organism, code)
  if not 0 <= c.gc_min < c.gc_max <= 1:
    raise UserError(f"--gc-min {c.gc_min} / --gc-max {c.gc_max}: need 0 <= min < max <= 1 (fractions, e.g. 0.3 and "
                    "0.65)")
  if c.gc_window < 3:
    raise UserError(f"--gc-window {c.gc_window}: give a window of at least 3 bases")
  if c.max_homopolymer < 0 or c.avoid_repeats < 0:
    raise UserError("--max-homopolymer and --avoid-repeats must be 0 (off) or positive")
  if n < 1 or seed < 0:
    raise UserError("--n must be at least 1 and --seed 0 or more")
  guide = guide or Guide()
  rounds = search.DEFAULT_ROUNDS[guide.objective] if rounds is None else rounds
  if rounds < 0:
    raise UserError(f"--rounds {rounds}: give 0 or more passes")
  if c.mfe_window < 1:
    raise UserError(f"--mfe-window {c.mfe_window}: give at least 1 nt (default {expression.MFE_WINDOW_NT})")
  if pll_unit not in SCORING_UNITS:
    raise UserError(f"--pll-unit {pll_unit!r}: use codon or base")
  if score_only and not c.start_sequence:
    raise UserError("--score-only reports the columns of an existing coding sequence; give it as --start-sequence CDS")
  sequence.check_enzymes(c.avoid_sites)
  if c.utr5:
    expression.check_utr(c.utr5)
  engine = Engine.from_workdir(workdir)
  designs, infeasible = [], []
  for p in tqdm(proteins, desc="design", unit="protein", disable=not progress or len(proteins) < 2):
    try:
      if score_only:
        usage = codons.codon_usage(organism, code)
        found = [{**search.report(engine, p.name, p.sequence, c.start_sequence, usage, c, code, guide, pll_unit),
                  "name": f"{p.name}_given", "objective": "score_only", "codon_changes_by_model": 0, "rank": 1,
                  "duplicate_of": ""}]
      else:
        found = search.design_protein(engine, p.name, p.sequence, organism, code, c, n, seed, rounds, pll_unit,
                                      guide, progress)
    except Infeasible as e:
      infeasible.append(("--protein" if not p.record_id and len(proteins) == 1 else f"protein {p.name}", str(e)))
      continue
    if guide.model is not None and guide.model.has_training() and found[0]["codon_distance_to_training"] is None:
      warn(f"{p.name}: the expression model {guide.model.workdir} was trained on no sequence of this length "
           f"({found[0]['length']} nt), so its predicted_expression is an extrapolation and "
           "codon_distance_to_training is empty")
    designs += [{**d, "record": p.record, "record_id": p.record_id} for d in found]
  return designs, infeasible


REPORT_COLUMNS = ("name", "protein", "record", "record_id", "rank", "length", "objective", "model_pll",
                  "model_pll_per_base", "pll_unit", "codon_changes_by_model", "predicted_expression",
                  "codon_distance_to_training", "mfe_5prime", "cai", "gc", "gc_window_min", "gc_window_max",
                  "longest_homopolymer", "repeated_kmers", "restriction_sites", "splice_sites", "translation_ok",
                  "violations", "duplicate_of")


FASTA_EXTENSIONS = (".fasta", ".fas", ".fna", ".fa")  # the designs' --output extension, replaced by .protein.fasta


def output_paths(output: str | None, report: str | None) -> list[tuple[str, str]]:
  """(label, path) of each file written: the designs FASTA, the proteins beside it (OUTPUT without .fasta, plus
  .protein.fasta) and the report, for those given."""
  out = []
  if output is not None:
    ext = next((e for e in FASTA_EXTENSIONS if output.endswith(e)), "")
    stem = output[:len(output) - len(ext)]
    out += [("--output", output), ("the proteins FASTA beside --output", stem + ".protein.fasta")]
  return out + ([("--report", report)] if report not in (None, "-") else [])


def write_outputs(designs: list[dict], output: str | None, report: str | None) -> str:
  """The designs FASTA (returned; also written to `output` with each design's own protein beside it, matched by
  position, never by name) and the TSV report: all the files, or none when there is no design."""
  def header(d):
    dup = f" duplicate_of={d['duplicate_of']}" if d["duplicate_of"] else ""
    pred = "" if d["predicted_expression"] is None else f" predicted_expression={d['predicted_expression']:.3f}"
    return (f">{d['name']} protein={d['protein']} record={d['record']} pll={d['model_pll']:.3f} cai={d['cai']:.3f}"
            f"{pred}{dup}")

  fasta = "".join(f"{header(d)}\n{d['sequence']}\n" for d in designs)
  texts = ([fasta, "".join(f">{d['name']} protein={d['protein']} record={d['record']}\n{d['protein_sequence']}\n"
                           for d in designs)] if output is not None else [])
  texts += [writers.tsv_table(designs, REPORT_COLUMNS)] if report is not None else []
  if designs:
    writers.write_all([(label, path, text) for (label, path), text in zip(output_paths(output, report), texts)])
  return fasta


def add_arguments(p) -> None:
  p.add_argument("--workdir", required=True, help="a trained run (configs/cds.py trains on coding sequences)")
  p.add_argument("--protein", help="one-letter amino-acid sequence (a trailing * is stripped)")
  p.add_argument("--protein-fasta", help="protein FASTA, one design set per record (records with the same id get "
                 "unique names ID_recordN); a file with no '>' header is read as one bare protein sequence")
  p.add_argument("--allow-nucleotide-letters", action="store_true",
                 help="design for a protein of 10 or more residues made only of nucleotide letters (A/C/G/T/U/N, "
                 "IUPAC codes), which is otherwise refused as a nucleotide sequence given in place of a protein")
  p.add_argument("--organism", default="e_coli", help="codon usage: e_coli (default), s_cerevisiae, h_sapiens, ...")
  p.add_argument("--genetic-code", type=int, help="NCBI table (default: the organism's: 11 bacteria, else 1)")
  p.add_argument("--gc-min", type=float, default=0.0, help="lowest GC per window, 0-1 (default: 0 = unconstrained)")
  p.add_argument("--gc-max", type=float, default=1.0, help="highest GC per window, 0-1 (default: 1 = unconstrained)")
  p.add_argument("--gc-window", type=int, default=50,
                 help="GC window in bases; a coding sequence shorter than it is checked as a whole (default: 50)")
  p.add_argument("--avoid-sites", default="", help="restriction enzymes, e.g. BsaI,BsmBI (default: none)")
  p.add_argument("--max-homopolymer", type=int, default=0, help="longest run of one base (default: 0 = no limit)")
  p.add_argument("--avoid-repeats", type=int, default=0, help="no K-mer twice on either strand (default: 0 = off)")
  p.add_argument("--avoid-splice-sites", action="store_true",
                 help="no consensus splice donor (GTRAGT) or acceptor (Y11-N-CAG) on the coding strand")
  p.add_argument("--n", type=int, default=1, help="designs per protein, all different where the constraints allow "
                 "(a design that must repeat another is marked in the report's duplicate_of column; default: 1)")
  p.add_argument("--seed", type=int, default=0, help="seed of the starting codons (default: 0)")
  p.add_argument("--rounds", type=int, help="passes of model-guided synonymous codon changes (default: 3 for "
                 "--objective pll, 8 for expression)")
  p.add_argument("--objective", choices=OBJECTIVES, default="pll",
                 help="what the synonymous changes maximise: pll, the base model's estimate (default), or expression, "
                 "the output of --expression-model (a predictor, not a measurement)")
  p.add_argument("--expression-model", metavar="FT",
                 help="a `dnajax finetune --task regression` directory trained on measured expression: the objective "
                 "of --objective expression; with either objective the report gains predicted_expression and "
                 "codon_distance_to_training (codons from the nearest sequence it was trained on)")
  p.add_argument("--max-codon-distance", "--max-codon-changes", dest="max_codon_distance", type=int, metavar="K",
                 help="trust region: designs stay within K codons of a training sequence of the expression model "
                 "(search starts from its best-predicted training sequence of the protein; default: no bound)")
  p.add_argument("--mfe-5prime-min", "--min-mfe-5prime", dest="mfe_5prime_min", type=float, metavar="KCAL",
                 help="5' folding bound (kcal/mol, e.g. -8): --utr5 and the first --mfe-window nt of the CDS fold no "
                 "more stably than this (ViennaRNA; default: no bound)")
  p.add_argument("--mfe-window", type=int, default=expression.MFE_WINDOW_NT,
                 help=f"nt of the CDS start folded for mfe_5prime and its bound (default: {expression.MFE_WINDOW_NT})")
  p.add_argument("--utr5", default="", metavar="SEQ",
                 help="the mRNA's 5'UTR (A/C/G/T/U), folded ahead of the CDS start for mfe_5prime (default: none, the "
                 "CDS start alone)")
  p.add_argument("--start-sequence", metavar="CDS",
                 help="improve this coding sequence (letters, or a FASTA file of one record) rather than start from "
                 "usage-weighted codons; it gives the protein when --protein is left out (a missing stop codon is "
                 "added); further --n designs start from it with a tenth of its free codons redrawn")
  p.add_argument("--lock", action="append", default=[], metavar="START-END",
                 help="keep codons START-END of --start-sequence byte for byte (1-based, inclusive, stop codon "
                 "counted; repeatable), e.g. --lock 1-20 keeps a known-good 5' end")
  p.add_argument("--score-only", action="store_true",
                 help="report --start-sequence's columns (PLL, predicted expression, 5' MFE, CAI, GC, the constraints "
                 "it breaks in `violations`) without changing it; the report goes to stdout without --report")
  p.add_argument("--pll-unit", choices=("codon", "base"), default="codon",
                 help="the reported pseudo-log-likelihood masks each codon (default) or each base in turn")
  p.add_argument("--output", help="designs FASTA (the proteins go to OUTPUT.protein.fasta); default: stdout")
  p.add_argument("--report", help="TSV, one row per design, best first: rank, PLL, predicted expression, codon "
                 "distance to training, 5' MFE, CAI, GC, windows, homopolymer, repeats, sites, violations")


def constraints_of(args, start: str, protein: str) -> Constraints:
  """The Constraints of the command line, with the start sequence and its locks (`parse_locks`)."""
  try:
    utr5 = expression.check_utr(args.utr5)
  except UserError as e:
    raise UserError(f"--utr5: {e}") from None
  return Constraints(args.gc_min, args.gc_max, args.gc_window,
                     tuple(x.strip() for x in args.avoid_sites.split(",") if x.strip()),
                     args.max_homopolymer, args.avoid_repeats, args.avoid_splice_sites, args.mfe_5prime_min,
                     args.mfe_window, utr5, start, parse_locks(args.lock, start, len(protein) + 1))


def main(args, overrides) -> int:
  report = args.report if args.report is not None or not args.score_only else "-"
  writers.check_outputs(output_paths(args.output, None if report == "-" else report),
                        [("--protein-fasta", args.protein_fasta or "")])
  code = genetic_code(args.organism, args.genetic_code)
  start = read_start_sequence(args.start_sequence)
  proteins = read_proteins(args.protein, args.protein_fasta, args.allow_nucleotide_letters, start)
  start, stop = check_start(start, proteins[0].sequence, codons.codon_usage(args.organism, code), code,
                            args.score_only) if start else ("", "")
  c = constraints_of(args, start, proteins[0].sequence)
  guide = make_guide(args.objective, args.expression_model, args.max_codon_distance)
  if stop:  # said once the command line is known to be good
    warn(f"--start-sequence has no stop codon; {stop} (the organism's most used) is added")
  designs, infeasible = run(args.workdir, proteins, args.organism, code, c, args.n, args.seed, args.rounds,
                            pll_unit=args.pll_unit, guide=guide, score_only=args.score_only)
  fasta = write_outputs(designs, args.output, None if report == "-" else report)
  if report == "-":
    sys.stdout.write(writers.tsv_table(designs, REPORT_COLUMNS))
  elif args.output is None and not args.score_only:
    sys.stdout.write(fasta)
  for d in designs:
    if d["violations"]:  # only a scored sequence: a design breaking a constraint is never written
      warn(f"{d['name']}: the sequence given breaks {', '.join(d['violations'])} (the report's violations column)")
    if d["duplicate_of"]:
      warn(f"design {d['name']} is identical to {d['duplicate_of']}: no other coding sequence for {d['protein']} "
           f"meeting the constraints was found ({search.MAX_STARTS} starts, then every single synonymous codon "
           "change); marked in the report's duplicate_of column")
  for where, why in infeasible:
    print(f"dnajax: error: {where}: infeasible: {why}", file=sys.stderr)
  if designs:  # a run with no design says only why (its error lines) and writes nothing
    print(f"dnajax: design: {summary(designs, len(proteins), infeasible, args.score_only, guide.objective)} "
          f"written to {', '.join(written(args.output, report, args.score_only))}", file=sys.stderr)
  return 2 if infeasible else 0


def written(output: str | None, report: str | None, score_only: bool) -> list[str]:
  """Where the outputs went: the files, and stdout for the report of --score-only without --report or the designs
  without --output."""
  to_stdout = report == "-" or (output is None and not score_only)
  return [path for _, path in output_paths(output, report)] + (["stdout"] if to_stdout else [])


def summary(designs: list[dict], n_proteins: int, infeasible: list, score_only: bool, objective: str) -> str:
  """The final line's account: what was made, for how many proteins."""
  if score_only:
    return "1 sequence scored (--score-only, unchanged),"
  done = n_proteins - len(infeasible)
  of = f"{done} protein{'s' if done != 1 else ''}" + (f" ({len(infeasible)} infeasible)" if infeasible else "")
  return f"{len(designs)} design{'s' if len(designs) != 1 else ''} ({objective} objective) for {of},"
