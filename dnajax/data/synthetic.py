"""Synthetic DNA with a known best achievable masked accuracy.

Two sources, both hidden Markov models so one exact computation serves both:
  * `iid`: uniform i.i.d. A/C/G/T (the prototype's data). No model can beat 25% masked accuracy on it.
  * `structured`: regimes (GC-rich, AT-rich and skewed background), inexact tandem repeats and planted motifs.

`posterior_predictive` runs scaled forward-backward over a window, marginalising masked positions, which gives
p(base at a masked position | every unmasked base in the window): the Bayes-optimal prediction for a model
that sees the same window. Its accuracy and cross-entropy on fixed masks (`evaluation.baselines.bayes_result`) are
the ceiling reported beside the model's. Letters: B batch, L length, S hidden states.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dnajax.data import tokens

_BASE_INDEX = {b: i for i, b in enumerate(tokens.BASES)}


@dataclasses.dataclass(frozen=True)
class HMM:
  """A hidden Markov model over A/C/G/T: stationary start, transitions, emissions (float64)."""
  start: np.ndarray  # float64[S]: stationary distribution (windows start anywhere in long records)
  trans: np.ndarray  # float64[S, S]
  emit: np.ndarray  # float64[S, 4] over A, C, G, T


def _stationary(trans: np.ndarray) -> np.ndarray:
  vals, vecs = np.linalg.eig(trans.T)
  v = np.real(vecs[:, np.argmin(np.abs(vals - 1.0))])
  v = np.abs(v)
  return v / v.sum()


def iid_hmm() -> HMM:
  """Uniform i.i.d. bases (one state)."""
  return HMM(start=np.ones(1), trans=np.ones((1, 1)), emit=np.full((1, 4), 0.25))


BACKGROUNDS = {  # A, C, G, T
    "gc_rich": (0.10, 0.40, 0.40, 0.10),
    "at_rich": (0.40, 0.10, 0.10, 0.40),
    "ca_skew": (0.35, 0.35, 0.15, 0.15),
}
REPEAT_UNITS = ("CAG", "AT", "GGAAT", "TTAGGG", "A", "AAGCT")
MOTIFS = ("TATAAT", "TTGACA", "GAATTC", "CACGTG", "GGATCC", "GCCGCCATGG")


def structured_hmm(bg_length: float = 120.0, leave_to_repeat: float = 0.45, leave_to_motif: float = 0.35,
                   repeat_length: float = 48.0, repeat_fidelity: float = 0.92, motif_fidelity: float = 0.95) -> HMM:
  """The project's structured generator (fixed design, no randomness).

  Each background regime emits i.i.d. with a skewed composition and lasts `bg_length` bases on average; on leaving
  it switches to another background, enters a tandem repeat (about `repeat_length` bases of one unit, each base
  correct with probability `repeat_fidelity`), or plants one motif. Repeats and motifs return to a random
  background.
  """
  names: list[str] = []
  emits: list[np.ndarray] = []

  def add(name: str, emit) -> int:
    names.append(name)
    emits.append(np.asarray(emit, dtype=np.float64))
    return len(names) - 1

  def letter(base: str, fidelity: float) -> np.ndarray:
    e = np.full(4, (1.0 - fidelity) / 3.0)
    e[_BASE_INDEX[base]] = fidelity
    return e

  bgs = [add(f"bg:{k}", v) for k, v in BACKGROUNDS.items()]
  repeats = [[add(f"rep:{u}:{i}", letter(b, repeat_fidelity)) for i, b in enumerate(u)] for u in REPEAT_UNITS]
  motifs = [[add(f"motif:{m}:{i}", letter(b, motif_fidelity)) for i, b in enumerate(m)] for m in MOTIFS]
  S = len(names)
  trans = np.zeros((S, S))
  leave = 1.0 / bg_length
  for b in bgs:
    trans[b, b] = 1.0 - leave
    others = [o for o in bgs if o != b]
    for o in others:
      trans[b, o] = leave * (1.0 - leave_to_repeat - leave_to_motif) / len(others)
    for unit in repeats:
      trans[b, unit[0]] = leave * leave_to_repeat / len(repeats)
    for motif in motifs:
      trans[b, motif[0]] = leave * leave_to_motif / len(motifs)
  for unit in repeats:
    for i in range(len(unit) - 1):
      trans[unit[i], unit[i + 1]] = 1.0
    exit_p = len(unit) / repeat_length  # per completed unit
    trans[unit[-1], unit[0]] = 1.0 - exit_p
    for b in bgs:
      trans[unit[-1], b] = exit_p / len(bgs)
  for motif in motifs:
    for i in range(len(motif) - 1):
      trans[motif[i], motif[i + 1]] = 1.0
    for b in bgs:
      trans[motif[-1], b] = 1.0 / len(bgs)
  assert np.allclose(trans.sum(1), 1.0)
  return HMM(start=_stationary(trans), trans=trans, emit=np.stack(emits))


def get_hmm(name: str) -> HMM:
  """The generator `name` (iid | structured); ValueError otherwise."""
  if name == "iid":
    return iid_hmm()
  if name == "structured":
    return structured_hmm()
  raise ValueError(f"unknown synthetic generator {name!r}")


def sample(hmm: HMM, num: int, length: int, rng: np.random.Generator) -> np.ndarray:
  """`num` independent sequences of `length` bases as token ids, uint8[num, length]."""
  S = len(hmm.start)
  cum_trans = np.cumsum(hmm.trans, axis=1)
  cum_emit = np.cumsum(hmm.emit, axis=1)
  state = np.minimum(np.searchsorted(np.cumsum(hmm.start), rng.random(num)), S - 1)
  out = np.empty((num, length), dtype=np.uint8)
  for i in range(length):
    if i:
      u = rng.random(num)[:, None]
      state = np.minimum((u > cum_trans[state]).sum(axis=1), S - 1)
    u = rng.random(num)[:, None]
    base = np.minimum((u > cum_emit[state]).sum(axis=1), 3)
    out[:, i] = tokens.BASE_IDS[base]
  return out


def posterior_predictive(hmm: HMM, ids_BxL: np.ndarray, observed_BxL: np.ndarray) -> np.ndarray:
  """p(base_i | all observed bases of the row) for every position, float64[B, L, 4].

  Unobserved positions (masked, or N) contribute no evidence. Scaled forward-backward, vectorised over rows.
  """
  B, L = ids_BxL.shape
  base_idx = np.clip(ids_BxL.astype(np.int64) - tokens.A, 0, 3)
  like_BxLxS = hmm.emit.T[base_idx]  # [B, L, S]
  like_BxLxS = np.where(observed_BxL[..., None], like_BxLxS, 1.0)
  alpha = np.empty((B, L, hmm.start.size))
  a = hmm.start[None, :] * like_BxLxS[:, 0]
  alpha[:, 0] = a / a.sum(1, keepdims=True)
  for i in range(1, L):
    a = (alpha[:, i - 1] @ hmm.trans) * like_BxLxS[:, i]
    alpha[:, i] = a / a.sum(1, keepdims=True)
  post = np.empty_like(alpha)
  beta = np.ones((B, hmm.start.size))
  post[:, L - 1] = alpha[:, L - 1]
  for i in range(L - 2, -1, -1):
    beta = (like_BxLxS[:, i + 1] * beta) @ hmm.trans.T
    beta /= beta.sum(1, keepdims=True)
    g = alpha[:, i] * beta
    post[:, i] = g / g.sum(1, keepdims=True)
  # At an unobserved position the state posterior is exactly the one above (its likelihood is 1).
  return post @ hmm.emit


def _emission_likelihood(hmm: HMM, ids_BxL: np.ndarray) -> np.ndarray:
  """p(base | state) at every position, float64[B, L, S]; 1 where the base is not A/C/G/T (masked, N: no evidence)."""
  ids = np.asarray(ids_BxL).astype(np.int64)
  observed = (ids >= tokens.A) & (ids <= tokens.T)
  like_BxLxS = hmm.emit.T[np.clip(ids - tokens.A, 0, 3)]
  return np.where(observed[..., None], like_BxLxS, 1.0)


def log_likelihood(hmm: HMM, ids_BxL: np.ndarray) -> np.ndarray:
  """log P(row) under `hmm` (natural log, summed over hidden paths; the first base drawn from `hmm.start`, the
  stationary distribution: a window anywhere in a long record), float64[B].

  `ids_BxL` holds token ids; positions that are not A/C/G/T (MASK, N, PAD) are marginalised (no evidence). Scaled
  forward algorithm: the log of each step's normaliser is accumulated, so windows of any length stay finite.
  """
  like_BxLxS = _emission_likelihood(hmm, ids_BxL)
  B, L, _ = like_BxLxS.shape
  total_B = np.zeros(B)
  alpha_BxS = np.broadcast_to(hmm.start, (B, hmm.start.size))
  for i in range(L):
    a = (alpha_BxS if i == 0 else alpha_BxS @ hmm.trans) * like_BxLxS[:, i]
    scale_B = a.sum(1)
    total_B += np.log(scale_B)
    alpha_BxS = a / scale_B[:, None]
  return total_B


def substitution_llr(hmm: HMM, ids_BxL: np.ndarray, pos_B: np.ndarray, alt_B: np.ndarray) -> np.ndarray:
  """The exact log-likelihood ratio of a substitution in each window, float64[B] (nats):
  log P(window with base `alt_B` at `pos_B`) - log P(window as given), by the forward algorithm (`log_likelihood`).

  `ids_BxL`: token ids of the reference windows; `pos_B`: 0-based position in each row; `alt_B`: the alternative
  base as a token id (tokens.A..tokens.T). Equal to log p(alt | rest) - log p(ref | rest), the ratio of
  `posterior_predictive` at that position with it unobserved: P(rest) cancels. NaN where the reference base at
  `pos_B` is not A/C/G/T. Other masked or N positions of the window count as unobserved in both terms.
  """
  ids = np.asarray(ids_BxL)
  rows = np.arange(len(ids))
  pos_B = np.asarray(pos_B, np.int64)
  alt = ids.copy()
  alt[rows, pos_B] = np.asarray(alt_B, ids.dtype)
  ref_ok = (ids[rows, pos_B] >= tokens.A) & (ids[rows, pos_B] <= tokens.T)
  llr = log_likelihood(hmm, alt) - log_likelihood(hmm, ids)
  return np.where(ref_ok, llr, np.nan)
