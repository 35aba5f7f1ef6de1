"""`dnajax generate`: new sequences from a trained model by iterative, confidence-ordered unmasking.

Every position after the prefix starts as MASK. Each step predicts all positions (long sequences by overlapping
windows, as `predict` does), samples a base at every masked position from the model's distribution sharpened by the
temperature (0: the most likely base), and keeps the samples the model was most confident in, with Gumbel noise on
that confidence that fades over the steps (without it, runs of one base grow: see ORDER_NOISE): the number kept per
step follows a cosine schedule (few while little context is known, more later), so `steps` forward passes fill the
sequence. The rest stay masked and are predicted again with the new context.

Each sequence comes with a plausibility report: GC, the longest open reading frame on either strand, ORFs of at least
`min_orf` codons, stop codons per 100 codons in each forward frame, and the same ORF statistics for shuffles of the
sequence (same composition, no order) as a reference: a model that learned coding sequence makes long ORFs that
shuffles do not. The model's exact pseudo-log-likelihood is reported too (one forward pass per base).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable

import numpy as np
from tqdm import tqdm

from dnajax.bio import codons, sequence
from dnajax.data import tokens, writers
from dnajax.errors import UserError
from dnajax.evaluation import metrics, render
from dnajax.evaluation.engine import Engine

MAX_LENGTH = 1_000_000
# Choice noise at the first step. Measured (configs/cds.py on E. coli, 600 bases from ATG, 4 sequences): with 0 the
# most confident positions extend runs of one base (longest homopolymer 64 on average, GC 0.63); with 4.5: 5.5, 0.60.
ORDER_NOISE = 4.5
MAX_DEFAULT_STEPS = 256  # each step predicts the whole sequence: long sequences fill more bases per step


def unmask_counts(masked: int, steps: int) -> list[int]:
  """How many positions to fill at each step: a cosine schedule, at least one per step, `masked` in total."""
  steps = max(1, min(steps, masked))
  remaining = [math.floor(masked * math.cos(math.pi / 2 * (t + 1) / steps)) for t in range(steps)]
  counts, left = [], masked
  for t, r in enumerate(remaining):
    k = max(1, left - r) if t < steps - 1 else left
    k = min(k, left - (steps - 1 - t))  # leave at least one for each later step
    counts.append(k)
    left -= k
  return counts


def sample_bases(p_Mx4: np.ndarray, temperature: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """(base index 0..3, confidence: the tempered probability of the chosen base) per row."""
  p = np.asarray(p_Mx4, np.float64)
  if temperature <= 0:
    choice = p.argmax(axis=1)
    q = p / p.sum(axis=1, keepdims=True)
  else:
    logits = np.log(np.maximum(p, 1e-30)) / temperature
    q = np.exp(logits - logits.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    choice = (rng.random((len(q), 1)) > np.cumsum(q, axis=1)).sum(axis=1).clip(0, 3)
  return choice, q[np.arange(len(q)), choice]


def iterative_unmask(probs_fn: Callable[[list[np.ndarray]], list[np.ndarray]], starts: list[np.ndarray],
                     steps: int, temperature: float, rng: np.random.Generator, order_noise: float = 0.0,
                     progress: bool = False) -> tuple[list[np.ndarray], list[np.ndarray]]:
  """Fill the MASK positions of `starts` (token ids) using `probs_fn(seqs) -> float[len, 4] per sequence`.
  Positions are kept by confidence, the log-probability of the sampled base plus Gumbel noise scaled by
  `order_noise` x (1 - t / steps) (MaskGIT's annealed choice noise: a near-random order first, confidence last).
  Returns (filled sequences, the step at which each position was filled; -1 where it was given)."""
  seqs = [s.copy() for s in starts]
  order = [np.where(s == tokens.MASK, 0, -1) for s in seqs]
  masked = max(int((s == tokens.MASK).sum()) for s in seqs)
  schedule = unmask_counts(masked, steps) if masked else []
  for t in tqdm(range(len(schedule)), desc="generate", unit="step", leave=False,
                disable=not progress or len(schedule) < 2):
    probs = probs_fn(seqs)
    for i, s in enumerate(seqs):
      m = np.flatnonzero(s == tokens.MASK)
      if not len(m):
        continue
      k = len(m) if t == len(schedule) - 1 else min(len(m), schedule[t])
      choice, conf = sample_bases(probs[i][m], temperature, rng)
      score = np.log(np.maximum(conf, 1e-30)) + rng.random(len(m)) * 1e-9  # ties: a random one, not the leftmost
      if order_noise > 0:
        score += order_noise * (1 - t / len(schedule)) * rng.gumbel(size=len(m))
      keep = np.argsort(-score, kind="stable")[:k]
      s[m[keep]] = tokens.BASE_IDS[choice[keep]]
      order[i][m[keep]] = t
  return seqs, order


# ------------------------------------------------------------------------------------------ Plausibility
def plausibility(seq: str, code: int = 11, min_orf: int = 100, shuffles: int = 20, seed: int = 0) -> dict:
  """GC, ORFs (longest, count of at least `min_orf` codons, mean longest of `shuffles` shuffles), stops per
  100 codons in each forward frame, longest homopolymer. A value over nothing (stops in a frame holding no whole
  codon, GC of an empty sequence, the shuffled mean of no shuffle) is None."""
  found = codons.orfs(seq, code)
  longest = max((n for _, _, n in found), default=0)
  rng = np.random.default_rng(seed)
  null = []
  for _ in range(shuffles):
    shuffled = "".join(rng.permutation(list(seq)))
    null.append(max((n for _, _, n in codons.orfs(shuffled, code)), default=0))
  stops = [x if len(seq) - frame >= 3 else None for frame, x in enumerate(codons.stops_per_100_codons(seq, code))]
  return {"gc": sequence.gc_content(seq) if seq else None,
          "longest_orf_codons": longest, "orfs_at_least_min": sum(n >= min_orf for _, _, n in found),
          "longest_orf_shuffled_mean": float(np.mean(null)) if null else None,
          "stops_per_100_codons_frame1": stops[0], "stops_per_100_codons_frame2": stops[1],
          "stops_per_100_codons_frame3": stops[2], "longest_homopolymer": sequence.longest_homopolymer(seq)}


# --------------------------------------------------------------------------------------------------- Command
def check_request(length: int, prefix: str, n: int, steps: int | None, temperature: float,
                  order_noise: float = ORDER_NOISE, seed: int = 0) -> np.ndarray:
  """The prefix as token ids, after checking every argument (one line each)."""
  if not 1 <= length <= MAX_LENGTH:
    raise UserError(f"--length {length}: must be between 1 and {MAX_LENGTH:,}")
  if seed < 0:
    raise UserError(f"--seed {seed}: must be 0 or more")
  ids = tokens.encode(prefix.strip())
  if ((ids < tokens.A) | (ids > tokens.T)).any():
    raise UserError("--prefix: only the letters A, C, G, T (or U; either case) are allowed")
  if len(ids) > length:
    raise UserError(f"--prefix is {len(ids)} bases, longer than --length {length}")
  if n < 1:
    raise UserError("--n must be at least 1")
  if steps is not None and steps < 1:
    raise UserError("--steps must be at least 1")
  if not 0 <= temperature <= 10:
    raise UserError(f"--temperature {temperature}: must be between 0 (most likely base) and 10")
  if not 0 <= order_noise <= 100:
    raise UserError(f"--order-noise {order_noise}: must be between 0 (pure confidence order) and 100")
  return ids


def run(workdir: str, length: int, prefix: str = "", n: int = 1, temperature: float = 1.0,
        steps: int | None = None, seed: int = 0, code: int = 11, min_orf: int = 100, score: bool = True,
        order_noise: float = ORDER_NOISE, progress: bool = True) -> list[dict]:
  """`n` generated sequences of `length` bases with their plausibility reports (and exact PLL unless `score`
  is False). Raises UserError for bad arguments or a bad workdir."""
  prefix_ids = check_request(length, prefix, n, steps, temperature, order_noise, seed)
  codons.check_genetic_code(code)
  engine = Engine.from_workdir(workdir)
  masked = length - len(prefix_ids)
  steps = steps if steps is not None else min(MAX_DEFAULT_STEPS, max(1, math.ceil(masked / 4)))
  start = np.full(length, tokens.MASK, np.uint8)
  start[:len(prefix_ids)] = prefix_ids
  seqs, _ = iterative_unmask(lambda s: [np.exp(lp) for lp in engine.sequence_log_probs(s)], [start] * n, steps,
                             temperature, np.random.default_rng(seed), order_noise, progress)
  out = []
  prefix_letters = np.frombuffer(prefix.strip().encode("ascii"), np.uint8)
  letters = np.concatenate([prefix_letters, np.full(masked, ord("N"), np.uint8)])
  for k, ids in enumerate(seqs):
    seq = tokens.decode(ids)  # the statistics read DNA letters; the FASTA keeps the prefix's case and alphabet (U)
    written = tokens.fill_letters(letters, np.arange(len(prefix_ids), length), ids[len(prefix_ids):]).decode()
    d = {"name": f"generated{k + 1}", "sequence": written, "length": length, "prefix_length": len(prefix_ids),
         "checkpoint_step": engine.step, "temperature": temperature, "steps": steps,
         **plausibility(seq, code, min_orf, seed=seed + k)}
    if score:
      t = metrics.pll_totals(engine.pseudo_log_likelihood(ids))
      d.update(model_pll=t["pll"], model_pll_per_base=t["pll_per_base"])
    out.append(d)
  return out


REPORT_COLUMNS = ("name", "length", "prefix_length", "model_pll", "model_pll_per_base", "gc", "longest_orf_codons",
                  "longest_orf_shuffled_mean", "orfs_at_least_min", "stops_per_100_codons_frame1",
                  "stops_per_100_codons_frame2", "stops_per_100_codons_frame3", "longest_homopolymer")


def write_outputs(results: list[dict], output: str | None, report: str | None) -> tuple[str, str]:
  """(FASTA, TSV report) as text; each also written to its path when given (both or neither). Values over nothing
  (None) are empty cells."""
  fasta = "".join(writers.fasta_entry(f"{d['name']} length={d['length']} gc={render.number(d['gc'], '.3f')} "
                                  f"longest_orf={d['longest_orf_codons']}", d["sequence"]) for d in results)
  cells = [{k: "" if v is None else v for k, v in d.items()} for d in results]
  tsv = writers.tsv_table(cells, [c for c in REPORT_COLUMNS if all(c in d for d in results)])
  text = {"--output": fasta, "--report": tsv}
  writers.write_all([(label, path, text[label]) for label, path in output_paths(output, report)])
  return fasta, tsv


def output_paths(output: str | None, report: str | None) -> list[tuple[str, str]]:
  """(label, path) of the files written: the FASTA (--output) and the report (--report), those given."""
  return [(label, path) for label, path in (("--output", output), ("--report", report)) if path is not None]


def add_arguments(p) -> None:
  p.add_argument("--workdir", required=True)
  p.add_argument("--length", type=int, required=True, help="bases per sequence, prefix included")
  p.add_argument("--prefix", default="", help="fixed start (A/C/G/T), e.g. a start codon")
  p.add_argument("--n", type=int, default=1, help="sequences to generate")
  p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (0: the most likely base)")
  p.add_argument("--steps", type=int, help="unmasking steps (default: a quarter of the masked length, at most 256)")
  p.add_argument("--order-noise", type=float, default=ORDER_NOISE,
                 help="Gumbel noise on the confidence order at the first step, fading to 0 (0: confidence only)")
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--genetic-code", type=int, default=11, help="NCBI table for ORFs and stops in the report")
  p.add_argument("--min-orf", type=int, default=100, help="count ORFs of at least this many codons")
  p.add_argument("--no-score", action="store_true", help="skip the exact pseudo-log-likelihood (one pass per base)")
  p.add_argument("--output", help="FASTA path (default: stdout)")
  p.add_argument("--report", help="TSV: PLL, GC, ORFs (and a shuffled reference), stops per frame, homopolymer")


def main(args, overrides) -> int:
  writers.check_outputs(output_paths(args.output, args.report))  # before the model is loaded
  results = run(args.workdir, args.length, args.prefix, args.n, args.temperature, args.steps, args.seed,
                args.genetic_code, args.min_orf, score=not args.no_score, order_noise=args.order_noise)
  fasta, tsv = write_outputs(results, args.output, args.report)
  if args.output is None:
    sys.stdout.write(fasta)
  if args.report is None:
    sys.stderr.write(tsv)
  return 0
