"""Zero-shot variant effect scores: log-likelihood ratios of a masked-nucleotide model at variants of a reference.

SNV score (natural log; A/C/G/T probabilities renormalised over the four bases):

    score = log p(alt | context) - log p(ref | context)

with the variant's position masked in a window of the reference around it. Negative: the model finds the alternative
base less likely than the reference base there (the usual reading: more likely deleterious). This is the zero-shot
score of GPN (Benegas et al. 2023, PNAS 120:e2311219120, `run_vep.py`) and of the Evo 2 BRCA1 analysis (Brixi et
al. 2025). With `strands="both"` (default) the score is the mean of the forward-strand score and the score of the
reverse-complemented window (complemented alleles at the mirrored position), as GPN averages the two strands.

The window is `window` bases (default: the model's training length), centred on the variant and shifted inward where
the contig (or the extracted region) ends or a run of N begins, so it keeps its full length where the sequence
allows; it is shorter only when the N-free stretch around the variant is. All ALT alleles at one position share one
masked window per strand; windows are batched.

MNVs and indels (`indels="pll"`): the difference of the pseudo-log-likelihoods (each base masked in turn; Salazar
et al. 2020) of the alternative and the reference window over the same bases - the flanks around the allele, which
both windows share - averaged over strands; it costs about 2 x (window - allele) forward rows per strand instead of
one. `indels="skip"` leaves them out (counted).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Sequence

import numpy as np
from tqdm import tqdm

from dnajax import runtime
from dnajax.data import genome, tokens
from dnajax.data.variants import Variant
from dnajax.errors import UserError

STRANDS = ("both", "forward")
INDEL_MODES = ("pll", "skip")
MISMATCH_WARN = 0.02  # share of REF alleles that differ from the reference above which stderr says so
SHIFT_MIN, SHIFT_SHARE = 3, 0.8  # `RefCheck.looks_shifted`: mismatches, and the share of them that match one base on
CHUNK_POSITIONS = 2048  # SNV positions (x strands) per engine call: bounded memory, a moving progress bar


@dataclasses.dataclass
class VariantScore:
  """One variant's result. `score` etc. are None when flagged; `ref_prob`/`alt_prob` (strand means of the model's
  probabilities at the masked position) only for SNVs; `window` is the context length in bases."""
  kind: str
  score: float | None = None
  score_forward: float | None = None
  score_reverse: float | None = None
  ref_prob: float | None = None
  alt_prob: float | None = None
  window: int | None = None
  flag: str = ""


@dataclasses.dataclass
class _Site:
  """Where a variant sits: its record and the N-free stretch [lo, hi) (contig coordinates) around its REF."""
  seg: genome.Segment
  start: int
  end: int
  lo: int
  hi: int


def _stretch(ref: genome.Reference, seg: genome.Segment, start: int, end: int, reach: int) -> tuple[int, int]:
  """The N-free stretch [lo, hi) around [start, end), looked for at most `reach` bases beyond each side."""
  a, b = max(seg.start, start - reach), min(seg.end, end + reach)
  ids = ref.fetch(seg, a, b)
  is_n = ids == tokens.N
  left = np.flatnonzero(is_n[:start - a])
  right = np.flatnonzero(is_n[end - a:])
  return (a + int(left[-1]) + 1 if len(left) else a), (end + int(right[0]) if len(right) else b)


def centred_window(pos: int, width: int, lo: int, hi: int, length: int) -> tuple[int, int]:
  """[start, end) of the window of at most `length` bases around [pos, pos + width) inside [lo, hi): centred, and
  shifted inward at the ends so that it keeps `length` bases where the stretch allows."""
  w = min(length, hi - lo)
  start = pos + width // 2 - length // 2
  start = min(max(start, lo), hi - w)
  return start, start + w


def locate(ref: genome.Reference, v: Variant, where: str, reach: int) -> _Site | None:
  """The variant's site, or None when the reference holds only regions of its contig and not this position.

  Raises UserError for a contig the reference does not have, or a position past the end of a whole contig."""
  contig = ref.contig(v.chrom)
  if contig is None:
    raise UserError(f"{where}: contig {v.chrom!r} is not in the reference (it has {genome.describe_contigs(ref)}); "
                    "pass the reference the variants were called against")
  start, end = v.pos - 1, v.pos - 1 + len(v.ref)
  seg = ref.segment(contig, start, end)
  if seg is None:
    if ref.regions_only[contig]:
      return None
    length = max(s.end for s in ref.segments[contig])
    raise UserError(f"{where}: position {v.pos} (REF {v.ref}) is past the end of contig {contig} ({length:,} bases "
                    "in the reference); pass the reference the variants were called against")
  lo, hi = _stretch(ref, seg, start, end, reach)
  return _Site(seg, start, end, lo, hi)


@dataclasses.dataclass(frozen=True)
class RefCheck:
  """How the variants' REF alleles compare with the reference: `checked` (variants inside it), `mismatched` (REF
  differs at the position as written), and of those `shifted` (REF equals the reference one base further on, as
  where every position is one too low, e.g. 0-based read as 1-based) and `shifted_back` (one base earlier: every
  position one too high)."""
  checked: int
  mismatched: int
  shifted: int
  shifted_back: int = 0

  @property
  def looks_shifted(self) -> bool:
    """More than MISMATCH_WARN of the REFs differ, at least SHIFT_MIN of them, and SHIFT_SHARE or more of those
    match one base further on, or one base earlier (by chance a quarter would, for SNVs against another sequence)."""
    return (self.mismatched >= SHIFT_MIN and self.mismatched > MISMATCH_WARN * self.checked
            and max(self.shifted, self.shifted_back) >= SHIFT_SHARE * self.mismatched)

  @property
  def shift(self) -> int:
    """+1 when the positions look one too low (REFs match one base further on), -1 when one too high, else 0."""
    if not self.looks_shifted:
      return 0
    return 1 if self.shifted >= self.shifted_back else -1


def check_refs(ref: genome.Reference, variants: Sequence[Variant], sites: Sequence[_Site | None]) -> RefCheck:
  """The `RefCheck` of `variants` at their `sites` (from `locate`; None: outside the reference, not counted)."""
  checked = mismatched = shifted = shifted_back = 0
  for v, site in zip(variants, sites):
    if site is None:
      continue
    checked += 1
    if ref.letters(site.seg, site.start, site.end).upper() != v.ref:
      mismatched += 1
      shifted += site.end < site.seg.end and ref.letters(site.seg, site.start + 1, site.end + 1).upper() == v.ref
      shifted_back += (site.start > site.seg.start
                       and ref.letters(site.seg, site.start - 1, site.end - 1).upper() == v.ref)
  return RefCheck(checked, mismatched, shifted, shifted_back)


def _strand_rows(window: np.ndarray, masked: np.ndarray, strands: str) -> list[np.ndarray]:
  """The window with `masked` (bool[w]) hidden, and its reverse complement when both strands are scored."""
  fwd = np.where(masked, tokens.MASK, window).astype(np.uint8)
  return [fwd] if strands == "forward" else [fwd, tokens.reverse_complement(fwd)]


def _pad(rows: Sequence[np.ndarray], length: int) -> np.ndarray:
  out = np.full((len(rows), length), tokens.PAD, np.uint8)
  for i, r in enumerate(rows):
    out[i, :len(r)] = r
  return out


def _base(letter: str) -> int:
  return tokens.BASES.index(letter)


def score_snvs(engine, ref: genome.Reference, items: Sequence[tuple[int, Variant, _Site]], window: int,
               strands: str, bar) -> dict[int, VariantScore]:
  """Scores of SNVs (`items`: (index, variant, site) with REF already checked), keyed by index. All ALT alleles at
  one position share its masked windows."""
  by_pos = collections.defaultdict(list)
  for i, v, site in items:
    by_pos[(site.seg.record, site.start)].append((i, v, site))
  keys = list(by_pos)
  out = {}
  n_strands = 1 if strands == "forward" else 2
  for c in range(0, len(keys), CHUNK_POSITIONS):
    part = keys[c:c + CHUNK_POSITIONS]
    rows, cols = [], []
    for key in part:
      site = by_pos[key][0][2]
      a, b = centred_window(site.start, 1, site.lo, site.hi, window)
      ids = ref.fetch(site.seg, a, b)
      masked = np.zeros(b - a, bool)
      masked[site.start - a] = True
      rows += _strand_rows(ids, masked, strands)
      cols += [site.start - a, b - site.start - 1][:n_strands]
    logp = engine.log_probs(_pad(rows, engine.seq_len))
    for k, key in enumerate(part):
      per_strand = [logp[k * n_strands + s, cols[k * n_strands + s]] for s in range(n_strands)]
      w = len(rows[k * n_strands])
      for i, v, _ in by_pos[key]:
        r, a = _base(v.ref), _base(v.alt)
        scores = [float(per_strand[0][a] - per_strand[0][r])]
        probs = [np.exp(per_strand[0][[r, a]])]
        if n_strands == 2:  # complemented alleles on the reverse strand: base index 3 - i (A<->T, C<->G)
          scores.append(float(per_strand[1][3 - a] - per_strand[1][3 - r]))
          probs.append(np.exp(per_strand[1][[3 - r, 3 - a]]))
        p = np.mean(probs, axis=0)
        out[i] = VariantScore("snv", float(np.mean(scores)), scores[0], scores[1] if n_strands == 2 else None,
                                  float(p[0]), float(p[1]), w)
      bar.update(len(by_pos[key]))
  return out


def _flank_pll(engine, seq: np.ndarray, flank: np.ndarray) -> float:
  """Sum of log p(true base) over the positions `flank` of `seq` (one window), each masked in turn."""
  rows = np.repeat(seq[None], len(flank), axis=0)
  rows[np.arange(len(flank)), flank] = tokens.MASK
  logp = engine.log_probs(_pad(rows, engine.seq_len))
  return float(logp[np.arange(len(flank)), flank, seq[flank].astype(np.int64) - tokens.A].sum())


def score_other(engine, ref: genome.Reference, v: Variant, site: _Site, window: int, strands: str) -> VariantScore:
  """MNV / indel score: PLL(alt window) - PLL(ref window) over their shared flanks, mean over strands."""
  allele = max(len(v.ref), len(v.alt))
  room = window - allele
  if room < 2:
    return VariantScore(v.kind, flag="longer_than_window")
  left_avail, right_avail = site.start - site.lo, site.hi - site.end
  fl = min(left_avail, room // 2)
  fr = min(right_avail, room - fl)
  fl = min(left_avail, room - fr)
  left = ref.fetch(site.seg, site.start - fl, site.start)
  right = ref.fetch(site.seg, site.end, site.end + fr)
  seqs = [np.concatenate([left, tokens.encode(x), right]).astype(np.uint8) for x in (v.ref, v.alt)]
  flank = [np.r_[np.arange(fl), np.arange(fl + len(x), fl + len(x) + fr)] for x in (v.ref, v.alt)]
  scores = []
  for s in range(1 if strands == "forward" else 2):
    pll = []
    for seq, fk in zip(seqs, flank):
      if s:
        seq, fk = tokens.reverse_complement(seq), len(seq) - 1 - fk
      pll.append(_flank_pll(engine, seq, fk))
    scores.append(pll[1] - pll[0])
  return VariantScore(v.kind, float(np.mean(scores)), scores[0], scores[1] if len(scores) == 2 else None,
                      window=int(fl + fr + allele))


def normalise(ref: genome.Reference, v: Variant, site: _Site, reach: int) -> tuple[Variant, _Site]:
  """The variant trimmed and left-aligned against the reference, as `bcftools norm` does (Tan et al. 2015,
  Bioinformatics 31:2202): common trailing bases are dropped (extending both alleles by the preceding reference base
  when one empties), then common leading bases while both alleles keep two or more. Every spelling of one indel in a
  repeat becomes the same variant, so it gets the same score; an MNV with shared ends may become an SNV. The new
  site's N-free stretch is looked for `reach` bases around it."""
  r, a, start = v.ref, v.alt, site.start
  while True:
    if r and a and r[-1] == a[-1]:
      r, a = r[:-1], a[:-1]
    elif r and a:
      break
    if not r or not a:
      if start <= site.seg.start:
        break
      base = ref.letters(site.seg, start - 1, start).upper()
      r, a, start = base + r, base + a, start - 1
  while len(r) > 1 and len(a) > 1 and r[0] == a[0]:
    r, a, start = r[1:], a[1:], start + 1
  if (r, a, start) == (v.ref, v.alt, site.start):
    return v, site
  lo, hi = _stretch(ref, site.seg, start, start + len(r), reach)
  return dataclasses.replace(v, pos=start + 1, ref=r, alt=a), _Site(site.seg, start, start + len(r), lo, hi)


def score_variants(engine, ref: genome.Reference, variants: Sequence[Variant], window: int | None = None,
                   strands: str = "both", indels: str = "pll", where: str = "variants",
                   progress: bool = True) -> tuple[list[VariantScore | None], dict[int, str]]:
  """A `VariantScore` per variant, in input order (None where skipped), and the reason of each skipped one by index
  ('outside_reference': a position outside the regions the reference holds; 'indel_skipped': `indels="skip"`).
  MNVs and indels are normalised first (`normalise`); `kind` is the normalised variant's.

  `window` (bases, default the engine's `seq_len`) must be 2..seq_len. Raises UserError for a bad window, strands or
  indel mode, a contig the reference lacks or a position past a contig's end (naming the variant)."""
  window = engine.seq_len if window is None else int(window)
  if not 2 <= window <= engine.seq_len:
    raise UserError(f"--window {window}: use 2..{engine.seq_len} (the model was trained on {engine.seq_len}-base "
                    "windows)")
  if strands not in STRANDS:
    raise UserError(f"--strands {strands!r}: use both or forward")
  if indels not in INDEL_MODES:
    raise UserError(f"--indels {indels!r}: use pll or skip")
  reasons: dict[int, str] = {}
  results: list[VariantScore | None] = [None] * len(variants)
  snvs, others = [], []
  for i, v in enumerate(variants):
    site = locate(ref, v, f"{where}, record {v.record + 1} ({v.chrom}:{v.pos})", window)
    if site is None:
      reasons[i] = "outside_reference"
      continue
    if ref.letters(site.seg, site.start, site.end).upper() != v.ref:
      results[i] = VariantScore(v.kind, flag="ref_mismatch")
      continue
    if v.kind != "snv":
      v, site = normalise(ref, v, site, window)
    if v.kind == "snv":
      snvs.append((i, v, site))
    elif indels == "skip":
      reasons[i] = "indel_skipped"
    else:
      others.append((i, v, site))
  with tqdm(total=len(snvs) + len(others), desc="vep", unit="variant", leave=False,
            disable=not (progress and runtime.is_main() and (snvs or others))) as bar:
    for i, score in score_snvs(engine, ref, snvs, window, strands, bar).items():
      results[i] = score
    for i, v, site in others:
      results[i] = score_other(engine, ref, v, site, window, strands)
      bar.update(1)
  return results, reasons
