"""`dnajax design`: coding sequences for a protein, scored by a trained model, under manufacturability constraints.

1. Constraints are DNA Chisel specifications (translation, windowed GC, restriction sites via Bio.Restriction names,
   homopolymers, repeated k-mers on either strand, optionally consensus splice sites on the coding strand). A
   usage-weighted random coding sequence is made feasible by DNA Chisel's solver; if no sequence can satisfy them the
   protein is reported infeasible with the violated constraint.
2. Search: synonymous codon changes only. In each pass every `stride`-th codon is masked at once (only the bases
   where its synonyms differ, so the amino acid stays visible) and the model's probabilities there score all
   synonymous codons (a batched estimate: one forward pass per window scores many codons); the best codon is taken
   if every constraint still holds. Passes repeat until nothing changes or `rounds` is reached.
3. The final report uses the exact pseudo-log-likelihood, each codon masked in turn (its three bases together: the
   unit the search changes, at a third of the forward passes of masking each base; `pll_unit="base"` for that),
   CAI against the organism's codon usage (Biopython's CodonAdaptationIndex), GC, homopolymers, repeats and
   restriction sites, all re-checked after the design. The re-check counts what the DNA Chisel specifications count
   (`chisel_checks` names each specification by the check it matches): a GC window longer than the sequence is the
   whole sequence in both, sites are patterns on either strand in both.
4. `--n K` gives K different sequences: a design that repeats an earlier one is started again from other seeded
   starts, then changed by the single synonymous codon the model's estimate loses least by; one that still repeats
   (a protein with almost no synonymous choice) is written and marked `duplicate_of` in the report.

Proteins are matched to their designs by position in the input, never by name: records with the same id get unique
names (ID_recordN) and the report says which input record each design came from.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import sys

import numpy as np
from tqdm import tqdm

from dnajax.bio import codons, sequence
from dnajax.data import readers, tokens, writers
from dnajax.errors import UserError
from dnajax.evaluation import metrics
from dnajax.evaluation.engine import SCORING_UNITS, Engine


@dataclasses.dataclass(frozen=True)
class Constraints:
  """Synthesis constraints of a design (DNA Chisel specifications, re-checked by dnajax after the search)."""

  gc_min: float = 0.0
  gc_max: float = 1.0
  gc_window: int = 50
  avoid_sites: tuple[str, ...] = ()
  max_homopolymer: int = 0  # 0: no limit; 6 allows runs of at most 6
  avoid_repeats: int = 0  # k: no k-mer twice on either strand; 0: off
  avoid_splice_sites: bool = False  # consensus splice donors/acceptors on the coding strand (eukaryotic hosts)


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


def chisel_checks(protein: str, c: Constraints, code: int) -> dict[str, list]:
  """check name (as `violations` names it) -> the DNA Chisel specifications of `c` for a coding sequence of
  `protein` (stop codon included). Each specification passes exactly when dnajax's re-check of that name does:
  the GC window is min(window, sequence length), as in sequence.gc_windows (DNA Chisel passes any sequence shorter
  than its window); homopolymers are runs of any base, sites patterns on either strand, repeats k-mers counted with
  their reverse complements, splice sites patterns on the coding strand."""
  import dnachisel as dc
  from Bio.Data import CodonTable

  table_name = CodonTable.unambiguous_dna_by_id[code].names[0]  # DNA Chisel takes Biopython's table names
  checks = {"translation": [dc.EnforceTranslation(genetic_table=table_name, translation=protein + "*")]}
  if c.gc_min > 0 or c.gc_max < 1:
    window = min(c.gc_window, 3 * (len(protein) + 1))
    checks["gc"] = [dc.EnforceGCContent(mini=c.gc_min, maxi=c.gc_max, window=window)]
  if c.avoid_sites:
    checks["restriction_site"] = [dc.AvoidPattern(f"{site}_site") for site in c.avoid_sites]
  if c.max_homopolymer:
    checks["homopolymer"] = [dc.AvoidPattern(f"{c.max_homopolymer + 1}x{b}") for b in "ACGT"]
  if c.avoid_repeats:
    checks["repeats"] = [dc.UniquifyAllKmers(c.avoid_repeats, include_reverse_complement=True)]
  if c.avoid_splice_sites:
    checks["splice_site"] = [dc.AvoidPattern(p, strand=1) for p in sequence.SPLICE_PATTERNS.values()]
  return checks


def chisel_specs(protein: str, c: Constraints, code: int) -> list:
  """The DNA Chisel constraint specifications of `c` for a coding sequence of `protein` (stop codon included)."""
  return [spec for specs in chisel_checks(protein, c, code).values() for spec in specs]


def feasible_start(protein: str, usage, c: Constraints, code: int, rng: np.random.Generator):
  """A DnaOptimizationProblem holding a sequence that meets every constraint, or UserError naming the violated
  one."""
  import dnachisel as dc

  problem = dc.DnaOptimizationProblem(codons.sample_cds(protein, usage, rng),
                                      constraints=chisel_specs(protein, c, code), logger=None)
  try:
    problem.resolve_constraints()
  except dc.NoSolutionError as e:
    failing = [str(r.specification) for r in problem.constraints_evaluations() if not r.passes]
    what = "; ".join(failing) or str(e).splitlines()[0]
    raise Infeasible(f"no sequence satisfies the constraints ({what})") from None
  return problem


class Infeasible(UserError):
  """No coding sequence of the protein meets the constraints."""


def codon_scores(engine: Engine, seq: str, codon_ids, usage, protein: str) -> dict[int, dict[str, float]]:
  """Mask the codons `codon_ids` together (one batched pass over windows covering the sequence) and score each
  synonymous codon by the summed log-probabilities of its bases at the positions where the synonyms differ. The
  positions they share stay visible, so the model knows the amino acid: for most amino acids this is exactly
  log p(third base | first two, context), the choice the search makes."""
  ids = tokens.encode(seq).copy()
  varying = {j: codons.varying_positions(usage[(protein + "*")[j]]) for j in codon_ids}
  for j in codon_ids:
    ids[[3 * j + k for k in varying[j]]] = tokens.MASK
  logp = engine.sequence_log_probs([ids])[0]
  out = {}
  for j in codon_ids:
    aa = (protein + "*")[j]
    out[j] = {c: float(sum(logp[3 * j + k, "ACGT".index(c[k])] for k in varying[j])) for c in usage[aa]}
  return out


def improve(engine: Engine, problem, protein: str, usage, rounds: int = 3, stride: int = 8) -> int:
  """Synonymous codon changes that raise the model's estimate, keeping every constraint; returns how many."""
  n_codons = len(protein) + 1
  changes = 0
  for _ in range(rounds):
    changed = 0
    for offset in range(stride):
      js = [j for j in range(offset, n_codons, stride) if len(usage[(protein + "*")[j]]) > 1]
      if not js:
        continue
      scores = codon_scores(engine, problem.sequence, js, usage, protein)
      for j, by_codon in scores.items():
        current = problem.sequence[3 * j:3 * j + 3]
        best = max(by_codon, key=by_codon.get)
        if by_codon[best] <= by_codon.get(current, -math.inf):  # includes best == current
          continue
        before = problem.sequence
        problem.sequence = before[:3 * j] + best + before[3 * j + 3:]
        if problem.all_constraints_pass():
          changed += 1
        else:
          problem.sequence = before
    changes += changed
    if not changed:
      break
  return changes


def diversify(engine: Engine, problem, protein: str, usage, avoid, stride: int = 8) -> bool:
  """Make the single synonymous codon change that the model's estimate (codon_scores) loses least by, among those
  that keep every constraint and give a sequence not in `avoid`; False (sequence unchanged) when none does."""
  aa = protein + "*"
  seq = problem.sequence
  candidates = []
  for offset in range(stride):
    js = [j for j in range(offset, len(aa), stride) if len(usage[aa[j]]) > 1]
    if js:
      for j, by_codon in codon_scores(engine, seq, js, usage, protein).items():
        current = seq[3 * j:3 * j + 3]
        candidates += [(by_codon[current] - s, j, codon) for codon, s in by_codon.items() if codon != current]
  for _, j, codon in sorted(candidates):
    problem.sequence = seq[:3 * j] + codon + seq[3 * j + 3:]
    if problem.sequence not in avoid and problem.all_constraints_pass():
      return True
  problem.sequence = seq
  return False


# ----------------------------------------------------------------------------------------------- Reporting
def describe(seq: str, protein: str, usage, c: Constraints, code: int) -> dict:
  """The design's report: translation check, CAI, GC (overall and window extremes), homopolymer, repeated k-mers,
  restriction and splice sites, all measured on the final sequence."""
  from Bio.Seq import Seq

  lo, hi = sequence.gc_windows(seq, c.gc_window)
  return {"translation_ok": str(Seq(seq).translate(table=code)) == protein + "*",
          "cai": codons.cai(seq, usage), "gc": sequence.gc_content(seq), "gc_window_min": lo,
          "gc_window_max": hi, "longest_homopolymer": sequence.longest_homopolymer(seq),
          "repeated_kmers": sequence.repeated_kmers(seq, c.avoid_repeats or 20),
          "restriction_sites": sequence.restriction_sites(seq, c.avoid_sites),
          "splice_sites": sequence.splice_sites(seq)}


def violations(d: dict, c: Constraints) -> list[str]:
  """The constraints a described design breaks (dnajax's own re-check after DNA Chisel's solver)."""
  v = []
  if not d["translation_ok"]:
    v.append("translation")
  if c.gc_min > 0 or c.gc_max < 1:
    if d["gc_window_min"] < c.gc_min - 1e-9 or d["gc_window_max"] > c.gc_max + 1e-9:
      v.append("gc")
  if c.avoid_sites and any(s in c.avoid_sites for s in d["restriction_sites"]):
    v.append("restriction_site")
  if c.max_homopolymer and d["longest_homopolymer"] > c.max_homopolymer:
    v.append("homopolymer")
  if c.avoid_repeats and d["repeated_kmers"]:
    v.append("repeats")
  if c.avoid_splice_sites and d["splice_sites"]:
    v.append("splice_site")
  return v


MAX_STARTS = 4  # seeded starts per design before a repeat of an earlier design is changed codon by codon


def design_protein(engine: Engine, name: str, protein: str, organism: str, code: int, c: Constraints, n: int,
                   seed: int, rounds: int = 3, pll_unit: str = "codon") -> list[dict]:
  """`n` different designs of one protein (seeded): each a feasible start improved by the model, with its report.
  A design that repeats an earlier one is redone from up to MAX_STARTS seeded starts, then given the single
  synonymous change the model loses least by (`diversify`); one that still repeats (no other coding sequence meets
  the constraints, e.g. "MW" has only its stop codon to vary) is kept with `duplicate_of` naming the earlier design.
  Raises Infeasible when no sequence meets the constraints or a design fails dnajax's re-check."""
  usage = codons.codon_usage(organism, code)
  out, seen = [], {}  # seen: sequence -> name of the first design with it
  for k in range(n):
    problem, changes = None, 0
    for t in range(MAX_STARTS if k else 1):
      rng = np.random.default_rng([seed, k] if t == 0 else [seed, k, t])
      try:
        problem = feasible_start(protein, usage, c, code, rng)
      except Infeasible:
        if problem is None:
          raise
        continue  # another start for a repeat: keep the repeat and try the next seed
      changes = improve(engine, problem, protein, usage, rounds)
      if problem.sequence not in seen:
        break
    if problem.sequence in seen:
      changes += diversify(engine, problem, protein, usage, seen)
    seq = problem.sequence
    pll = metrics.pll_totals(engine.pseudo_log_likelihood(tokens.encode(seq), pll_unit))
    d = {"name": f"{name}_design{k + 1}", "protein": name, "protein_sequence": protein, "sequence": seq,
         "length": len(seq), "model_pll": pll["pll"], "model_pll_per_base": pll["pll_per_base"],
         "pll_unit": pll_unit, "codon_changes_by_model": changes,
         **describe(seq, protein, usage, c, code), "duplicate_of": seen.get(seq, "")}
    d["violations"] = violations(d, c)
    if d["violations"]:  # DNA Chisel said yes; dnajax's own check disagrees: never emit it silently
      raise Infeasible(f"design {d['name']} fails {', '.join(d['violations'])} after the solver; not written")
    seen.setdefault(seq, d["name"])
    out.append(d)
  return out


# --------------------------------------------------------------------------------------------------- Command
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
  text = readers.read_text(path)
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
  records: list[tuple[str, list[str]]] = []
  for line in lines[first:]:
    line = line.strip()
    if line.startswith(">"):
      words = line[1:].split(None, 1)
      records.append((words[0] if words else "", []))
    elif line:
      records[-1][1].append(line)
  return [(rid, "".join(parts)) for rid, parts in records]


def read_proteins(protein: str | None, fasta: str | None,
                  allow_nucleotide_letters: bool = False) -> list[ProteinInput]:
  """The proteins of --protein or a protein FASTA, each with a unique name and its input record; UserError for
  anything else (naming the file and record)."""
  if bool(protein) == bool(fasta):
    raise UserError("give exactly one of --protein SEQUENCE or --protein-fasta FILE")
  if protein:
    return [ProteinInput("protein", check_protein("--protein", protein, allow_nucleotide_letters))]
  records = read_protein_records(fasta)
  names = unique_names([rid for rid, _ in records])
  return [ProteinInput(name, check_protein(f"{fasta} record {i} ({rid or 'no id'})", letters,
                                           allow_nucleotide_letters), i, rid)
          for i, (name, (rid, letters)) in enumerate(zip(names, records), 1)]


def run(workdir: str, proteins: list[ProteinInput], organism: str, code: int | None, c: Constraints, n: int,
        seed: int, rounds: int = 3, progress: bool = True,
        pll_unit: str = "codon") -> tuple[list[dict], list[tuple[str, str]]]:
  """(designs, [(protein name, why infeasible)]). Model and constraints are checked before any search."""
  code = codons.ORGANISMS[codons.check_organism(organism)][1] if code is None else code
  codons.check_genetic_code(code)
  if not 0 <= c.gc_min < c.gc_max <= 1 or c.gc_window < 3:
    raise UserError("--gc-min/--gc-max must satisfy 0 <= min < max <= 1 and --gc-window must be at least 3")
  if c.max_homopolymer < 0 or c.avoid_repeats < 0:
    raise UserError("--max-homopolymer and --avoid-repeats must be 0 (off) or positive")
  if n < 1 or seed < 0:
    raise UserError("--n must be at least 1 and --seed 0 or more")
  if pll_unit not in SCORING_UNITS:
    raise UserError(f"--pll-unit {pll_unit!r}: use codon or base")
  sequence.check_enzymes(c.avoid_sites)
  engine = Engine.from_workdir(workdir)
  designs, infeasible = [], []
  for p in tqdm(proteins, desc="design", unit="protein", disable=not progress or len(proteins) < 2):
    try:
      found = design_protein(engine, p.name, p.sequence, organism, code, c, n, seed, rounds, pll_unit)
    except Infeasible as e:
      infeasible.append((p.name, str(e)))
      continue
    designs += [{**d, "record": p.record, "record_id": p.record_id} for d in found]
  return designs, infeasible


REPORT_COLUMNS = ("name", "protein", "record", "record_id", "length", "model_pll", "model_pll_per_base", "pll_unit",
                  "codon_changes_by_model", "cai", "gc", "gc_window_min", "gc_window_max", "longest_homopolymer",
                  "repeated_kmers", "restriction_sites", "splice_sites", "translation_ok", "duplicate_of")


def output_paths(output: str | None, report: str | None) -> list[tuple[str, str]]:
  """(label, path) of each file written: the designs FASTA, the proteins beside it (OUTPUT without .fasta, plus
  .protein.fasta) and the report, for those given."""
  out = []
  if output is not None:
    stem = output[:-len(".fasta")] if output.endswith(".fasta") else output
    out += [("--output", output), ("the proteins FASTA beside --output", stem + ".protein.fasta")]
  return out + ([("--report", report)] if report is not None else [])


def write_outputs(designs: list[dict], output: str | None, report: str | None) -> str:
  """The designs FASTA (returned; also written to `output` with each design's own protein beside it, matched by
  position, never by name) and the TSV report: all the files or none."""
  def header(d):
    dup = f" duplicate_of={d['duplicate_of']}" if d["duplicate_of"] else ""
    return f">{d['name']} protein={d['protein']} record={d['record']} pll={d['model_pll']:.3f} cai={d['cai']:.3f}{dup}"

  fasta = "".join(f"{header(d)}\n{d['sequence']}\n" for d in designs)
  texts = ([fasta, "".join(f">{d['name']} protein={d['protein']} record={d['record']}\n{d['protein_sequence']}\n"
                           for d in designs)] if output is not None else [])
  texts += [writers.tsv_table(designs, REPORT_COLUMNS)] if report is not None else []
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
  p.add_argument("--rounds", type=int, default=3, help="passes of model-guided synonymous codon changes (default: 3)")
  p.add_argument("--pll-unit", choices=("codon", "base"), default="codon",
                 help="the reported pseudo-log-likelihood masks each codon (default) or each base in turn")
  p.add_argument("--output", help="designs FASTA (the proteins go to OUTPUT.protein.fasta); default: stdout")
  p.add_argument("--report", help="TSV: PLL, CAI, GC, windows, homopolymer, repeats, sites per design")


def main(args, overrides) -> int:
  writers.check_outputs(output_paths(args.output, args.report), [("--protein-fasta", args.protein_fasta or "")])
  proteins = read_proteins(args.protein, args.protein_fasta, args.allow_nucleotide_letters)
  c = Constraints(args.gc_min, args.gc_max, args.gc_window,
                  tuple(x.strip() for x in args.avoid_sites.split(",") if x.strip()),
                  args.max_homopolymer, args.avoid_repeats, args.avoid_splice_sites)
  designs, infeasible = run(args.workdir, proteins, args.organism, args.genetic_code, c, args.n, args.seed,
                            args.rounds, pll_unit=args.pll_unit)
  fasta = write_outputs(designs, args.output, args.report)
  if args.output is None:
    sys.stdout.write(fasta)
  for d in designs:
    if d["duplicate_of"]:
      print(f"dnajax: warning: design {d['name']} is identical to {d['duplicate_of']}: no other coding sequence for "
            f"{d['protein']} meeting the constraints was found ({MAX_STARTS} starts, then every single "
            "synonymous codon change); marked in the report's duplicate_of column", file=sys.stderr)
  for name, why in infeasible:
    print(f"dnajax: error: protein {name}: infeasible: {why}", file=sys.stderr)
  return 2 if infeasible else 0
