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
   restriction sites, all re-checked after the design.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re

import numpy as np

from dnajax import tokens
from dnajax.errors import UserError

# organism -> (python-codon-tables name, default NCBI genetic code)
ORGANISMS = {"e_coli": ("e_coli_316407", 11), "b_subtilis": ("b_subtilis_1423", 11),
             "s_cerevisiae": ("s_cerevisiae_4932", 1), "h_sapiens": ("h_sapiens_9606", 1),
             "m_musculus": ("m_musculus_10090", 1), "d_melanogaster": ("d_melanogaster_7227", 1),
             "c_elegans": ("c_elegans_6239", 1), "g_gallus": ("g_gallus_9031", 1)}
PROTEIN_LETTERS = set("ACDEFGHIKLMNPQRSTVWY")


@dataclasses.dataclass(frozen=True)
class Constraints:
  gc_min: float = 0.0
  gc_max: float = 1.0
  gc_window: int = 50
  avoid_sites: tuple[str, ...] = ()
  max_homopolymer: int = 0  # 0: no limit; 6 allows runs of at most 6
  avoid_repeats: int = 0  # k: no k-mer twice on either strand; 0: off
  avoid_splice_sites: bool = False  # consensus splice donors/acceptors on the coding strand (eukaryotic hosts)


# Consensus splice sites on the coding strand (IUPAC): the donor at an intron's 5' end (exon|GT[A/G]AGT) and an
# acceptor at its 3' end (a polypyrimidine tract, any base, then CAG|exon). Consensus matches, not a splice predictor.
SPLICE_PATTERNS = {"donor": "GTRAGT", "acceptor": "YYYYYYYYYYYNCAG"}
_IUPAC_REGEX = {"R": "[AG]", "Y": "[CT]", "N": "[ACGT]"}


def check_protein(name: str, protein: str) -> str:
  p = protein.strip().upper().rstrip("*")
  bad = sorted(set(p) - PROTEIN_LETTERS)
  if not p or bad:
    raise UserError(f"protein {name}: {'empty' if not p else 'letters ' + ''.join(bad) + ' are not amino acids'}; "
                    "give the 20 standard one-letter codes (a trailing * is allowed)")
  return p


def codon_usage(organism: str, code: int) -> dict[str, dict[str, float]]:
  """amino acid (or '*') -> {codon: frequency}, restricted to the codons `code` assigns to it."""
  import python_codon_tables as pct
  from Bio.Data import CodonTable

  if organism not in ORGANISMS:
    raise UserError(f"--organism {organism}: unknown; use one of {', '.join(ORGANISMS)}")
  table = pct.get_codons_table(ORGANISMS[organism][0])
  code_table = CodonTable.unambiguous_dna_by_id[code]
  out: dict[str, dict[str, float]] = {}
  for codon in map("".join, itertools.product("ACGT", repeat=3)):
    aa = "*" if codon in code_table.stop_codons else code_table.forward_table.get(codon)
    if aa is None:
      continue
    freq = max(float(table.get(aa, {}).get(codon, 0.0)), 1e-3)  # codons the table lacks: rare, not forbidden
    out.setdefault(aa, {})[codon] = freq
  return out


def chisel_specs(protein: str, c: Constraints, code: int) -> list:
  import dnachisel as dc
  from Bio.Data import CodonTable

  table_name = CodonTable.unambiguous_dna_by_id[code].names[0]  # DNA Chisel takes Biopython's table names
  specs = [dc.EnforceTranslation(genetic_table=table_name, translation=protein + "*")]
  if c.gc_min > 0 or c.gc_max < 1:
    specs.append(dc.EnforceGCContent(mini=c.gc_min, maxi=c.gc_max, window=c.gc_window))
  for site in c.avoid_sites:
    specs.append(dc.AvoidPattern(f"{site}_site"))
  if c.max_homopolymer:
    specs += [dc.AvoidPattern(f"{c.max_homopolymer + 1}x{b}") for b in "ACGT"]
  if c.avoid_repeats:
    specs.append(dc.UniquifyAllKmers(c.avoid_repeats, include_reverse_complement=True))
  if c.avoid_splice_sites:
    specs += [dc.AvoidPattern(p, strand=1) for p in SPLICE_PATTERNS.values()]
  return specs


def splice_sites(seq: str) -> list[str]:
  """'donor@i' / 'acceptor@i' for every consensus match on the coding strand (overlapping matches included)."""
  out = []
  for kind, pattern in SPLICE_PATTERNS.items():
    regex = "".join(_IUPAC_REGEX.get(ch, ch) for ch in pattern)
    out += [f"{kind}@{m.start()}" for m in re.finditer(f"(?={regex})", seq)]
  return out


def check_genetic_code(code: int) -> int:
  from Bio.Data import CodonTable

  if code not in CodonTable.unambiguous_dna_by_id:
    raise UserError(f"--genetic-code {code}: not an NCBI translation table number (1-33)")
  return code


def check_sites(sites: tuple[str, ...]) -> tuple[str, ...]:
  from Bio import Restriction

  for s in sites:
    if not hasattr(Restriction, s) or not hasattr(getattr(Restriction, s), "site"):
      raise UserError(f"--avoid-sites {s}: not a restriction enzyme Biopython knows (Bio.Restriction); check the "
                      "spelling, e.g. BsaI,BsmBI,EcoRI")
  return sites


def sample_cds(protein: str, usage, rng: np.random.Generator) -> str:
  """Synonymous codons drawn by the organism's usage, the stop codon included."""
  out = []
  for aa in protein + "*":
    codons, freqs = zip(*usage[aa].items())
    p = np.asarray(freqs) / sum(freqs)
    out.append(codons[int(rng.choice(len(codons), p=p))])
  return "".join(out)


def feasible_start(protein: str, usage, c: Constraints, code: int, rng: np.random.Generator):
  """A DnaOptimizationProblem holding a sequence that meets every constraint, or UserError naming the violated
  one."""
  import dnachisel as dc

  problem = dc.DnaOptimizationProblem(sample_cds(protein, usage, rng), constraints=chisel_specs(protein, c, code),
                                      logger=None)
  try:
    problem.resolve_constraints()
  except dc.NoSolutionError as e:
    failing = [str(r.specification) for r in problem.constraints_evaluations() if not r.passes]
    what = "; ".join(failing) or str(e).splitlines()[0]
    raise Infeasible(f"no sequence satisfies the constraints ({what})") from None
  return problem


class Infeasible(UserError):
  """No coding sequence of the protein meets the constraints."""


def varying_positions(codons) -> list[int]:
  """Positions (0-2) at which synonymous codons differ: only the third for 2- and 4-fold amino acids."""
  return [k for k in range(3) if len({c[k] for c in codons}) > 1]


def codon_scores(program, params, seq: str, codon_ids, usage, protein: str, seq_len: int,
                 batch: int) -> dict[int, dict[str, float]]:
  """Mask the codons `codon_ids` together (one batched pass over windows covering the sequence) and score each
  synonymous codon by the summed log-probabilities of its bases at the positions where the synonyms differ. The
  positions they share stay visible, so the model knows the amino acid: for most amino acids this is exactly
  log p(third base | first two, context), the choice the search makes."""
  from dnajax import predict

  ids = tokens.encode(seq).copy()
  varying = {j: varying_positions(usage[(protein + "*")[j]]) for j in codon_ids}
  for j in codon_ids:
    ids[[3 * j + k for k in varying[j]]] = tokens.MASK
  probs = predict.predict_probs(program, params, [ids], seq_len, batch)[0]
  logp = np.log(np.maximum(probs, 1e-30))
  out = {}
  for j in codon_ids:
    aa = (protein + "*")[j]
    out[j] = {c: float(sum(logp[3 * j + k, "ACGT".index(c[k])] for k in varying[j])) for c in usage[aa]}
  return out


def improve(program, params, problem, protein: str, usage, seq_len: int, batch: int, rounds: int = 3,
            stride: int = 8) -> int:
  """Synonymous codon changes that raise the model's estimate, keeping every constraint; returns how many."""
  n_codons = len(protein) + 1
  changes = 0
  for _ in range(rounds):
    changed = 0
    for offset in range(stride):
      js = [j for j in range(offset, n_codons, stride) if len(usage[(protein + "*")[j]]) > 1]
      if not js:
        continue
      scores = codon_scores(program, params, problem.sequence, js, usage, protein, seq_len, batch)
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


# ----------------------------------------------------------------------------------------------- Reporting
def longest_homopolymer(seq: str) -> int:
  return max(len(m.group(0)) for m in re.finditer(r"(.)\1*", seq)) if seq else 0


def repeated_kmers(seq: str, k: int) -> int:
  """Distinct k-mers occurring more than once, counting the reverse strand too."""
  from Bio.Seq import Seq

  if k <= 0 or len(seq) < k:
    return 0
  rc = str(Seq(seq).reverse_complement())
  counts: dict[str, int] = {}
  for i in range(len(seq) - k + 1):
    kmer = seq[i:i + k]
    key = min(kmer, rc[len(seq) - k - i:len(seq) - i])
    counts[key] = counts.get(key, 0) + 1
  return sum(1 for v in counts.values() if v > 1)


def gc_content(seq: str) -> float:
  return float(np.mean([b in "GC" for b in seq])) if seq else 0.0


def gc_windows(seq: str, window: int) -> tuple[float, float]:
  gc = np.array([b in "GC" for b in seq], float)
  if len(seq) <= window:
    return float(gc.mean()), float(gc.mean())
  s = np.convolve(gc, np.ones(window), "valid") / window
  return float(s.min()), float(s.max())


def sites_found(seq: str, sites: tuple[str, ...]) -> list[str]:
  from Bio import Restriction
  from Bio.Seq import Seq

  batch = Restriction.RestrictionBatch(list(sites) or ["BsaI", "BsmBI", "EcoRI", "BamHI", "XhoI", "NotI"])
  return sorted(str(e) for e, hits in batch.search(Seq(seq), linear=True).items() if hits)


def cai(seq: str, usage) -> float:
  from Bio.SeqUtils import CodonAdaptationIndex

  index = CodonAdaptationIndex([])
  for codons in usage.values():
    top = max(codons.values())
    index.update({c: f / top for c, f in codons.items()})
  return float(index.calculate(seq))


def describe(seq: str, protein: str, usage, c: Constraints, code: int) -> dict:
  from Bio.Seq import Seq

  lo, hi = gc_windows(seq, c.gc_window)
  return {"translation_ok": str(Seq(seq).translate(table=code)) == protein + "*",
          "cai": cai(seq, usage), "gc": gc_content(seq), "gc_window_min": lo,
          "gc_window_max": hi, "longest_homopolymer": longest_homopolymer(seq),
          "repeated_kmers": repeated_kmers(seq, c.avoid_repeats or 20),
          "restriction_sites": sites_found(seq, c.avoid_sites), "splice_sites": splice_sites(seq)}


def violations(d: dict, c: Constraints) -> list[str]:
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


def design_protein(program, params, seq_len: int, batch: int, name: str, protein: str, organism: str, code: int,
                   c: Constraints, n: int, seed: int, rounds: int = 3, pll_unit: str = "codon") -> list[dict]:
  from dnajax import score

  usage = codon_usage(organism, code)
  out = []
  for k in range(n):
    rng = np.random.default_rng([seed, k])
    problem = feasible_start(protein, usage, c, code, rng)
    changes = improve(program, params, problem, protein, usage, seq_len, batch, rounds)
    seq = problem.sequence
    lp = score.position_log_probs(program, params, tokens.encode(seq), seq_len, batch, pll_unit)
    d = {"name": f"{name}_design{k + 1}", "protein": name, "sequence": seq, "length": len(seq),
         "model_pll": float(lp.sum()), "model_pll_per_base": float(lp.mean()), "pll_unit": pll_unit,
         "codon_changes_by_model": changes,
         **describe(seq, protein, usage, c, code)}
    d["violations"] = violations(d, c)
    if d["violations"]:  # DNA Chisel said yes; dnajax's own check disagrees: never emit it silently
      raise Infeasible(f"design {d['name']} fails {', '.join(d['violations'])} after the solver; not written")
    out.append(d)
  return out


# --------------------------------------------------------------------------------------------------- Command
def read_proteins(protein: str | None, fasta: str | None) -> list[tuple[str, str]]:
  if bool(protein) == bool(fasta):
    raise UserError("give exactly one of --protein SEQUENCE or --protein-fasta FILE")
  if protein:
    return [("protein", check_protein("protein", protein))]
  from Bio import SeqIO

  try:
    records = list(SeqIO.parse(fasta, "fasta"))
  except (OSError, ValueError) as e:
    raise UserError(f"{fasta}: cannot read a protein FASTA ({e}); check the path and format") from None
  if not records:
    raise UserError(f"{fasta}: no FASTA records; give one protein per record")
  return [(r.id or f"protein{i + 1}", check_protein(r.id, str(r.seq))) for i, r in enumerate(records)]


def run(workdir: str, proteins: list[tuple[str, str]], organism: str, code: int | None, c: Constraints, n: int,
        seed: int, rounds: int = 3, progress: bool = True,
        pll_unit: str = "codon") -> tuple[list[dict], list[tuple[str, str]]]:
  """(designs, [(protein name, why infeasible)]). Model and constraints are checked before any search."""
  from tqdm import tqdm

  from dnajax import evaluate

  if organism not in ORGANISMS:
    raise UserError(f"--organism {organism}: unknown; use one of {', '.join(ORGANISMS)}")
  code = ORGANISMS[organism][1] if code is None else code
  check_genetic_code(code)
  if not 0 <= c.gc_min < c.gc_max <= 1 or c.gc_window < 3:
    raise UserError("--gc-min/--gc-max must satisfy 0 <= min < max <= 1 and --gc-window must be at least 3")
  if n < 1:
    raise UserError("--n must be at least 1")
  if pll_unit not in ("base", "codon"):
    raise UserError(f"--pll-unit {pll_unit!r}: use codon or base")
  check_sites(c.avoid_sites)
  cfg, program, params, _ = evaluate.load_run(workdir)
  designs, infeasible = [], []
  for name, protein in tqdm(proteins, desc="design", unit="protein", disable=not progress or len(proteins) < 2):
    try:
      designs += design_protein(program, params, cfg.data.seq_len, cfg.eval.batch, name, protein, organism, code,
                                c, n, seed, rounds, pll_unit)
    except Infeasible as e:
      infeasible.append((name, str(e)))
  return designs, infeasible


REPORT_COLUMNS = ("name", "protein", "length", "model_pll", "model_pll_per_base", "pll_unit", "codon_changes_by_model",
                  "cai", "gc", "gc_window_min", "gc_window_max", "longest_homopolymer", "repeated_kmers",
                  "restriction_sites", "splice_sites", "translation_ok")


def write_outputs(designs: list[dict], proteins: list[tuple[str, str]], output: str | None,
                  report: str | None) -> str:
  from dnajax import io

  fasta = "".join(f">{d['name']} protein={d['protein']} pll={d['model_pll']:.3f} cai={d['cai']:.3f}\n"
                  f"{d['sequence']}\n" for d in designs)
  if output:
    io.atomic_write_text(output, fasta)
    prot = {name: p for name, p in proteins}
    stem = output[:-len(".fasta")] if output.endswith(".fasta") else output
    io.atomic_write_text(stem + ".protein.fasta",
                         "".join(f">{d['name']}\n{prot[d['protein']]}\n" for d in designs))
  if report:
    io.atomic_write_text(report, io.tsv_table(designs, REPORT_COLUMNS))
  return fasta
