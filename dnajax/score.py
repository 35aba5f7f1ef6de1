"""`dnajax score`: pseudo-log-likelihood (PLL) of whole sequences under a trained model, for ranking variants.

Each position (or each codon: its three bases together) is masked in turn, in a window of the model's length centred
on it, and the model's log-probability of the true base is read; the PLL is their sum (natural log). Masked copies
are batched, so a sequence of n bases costs n forward passes of one window (n / 3 with `unit="codon"`).
"""

from __future__ import annotations

import numpy as np

from dnajax import io, tokens
from dnajax.errors import UserError

UNITS = {"base": 1, "codon": 3}


def _rows(seq: np.ndarray, seq_len: int, width: int):
  """(window start, masked positions within the sequence) per scored unit; units holding no A/C/G/T are skipped."""
  n = len(seq)
  for a in range(0, n, width):
    pos = np.arange(a, min(a + width, n))
    pos = pos[(seq[pos] >= tokens.A) & (seq[pos] <= tokens.T)]
    if len(pos):
      start = int(np.clip(a + width // 2 - seq_len // 2, 0, max(0, n - seq_len)))
      yield start, pos


def position_log_probs(program, params, seq: np.ndarray, seq_len: int, batch_size: int, unit: str = "base",
                       chunk_rows: int = 2048) -> np.ndarray:
  """log p(true base | the rest, with its unit masked) at every position; NaN where not scored (N)."""
  out = np.full(len(seq), np.nan)
  rows = list(_rows(seq, seq_len, UNITS[unit]))
  for c in range(0, len(rows), chunk_rows):
    part = rows[c:c + chunk_rows]
    inputs = np.full((len(part), seq_len), tokens.PAD, np.uint8)
    for r, (start, pos) in enumerate(part):
      window = seq[start:start + seq_len]
      inputs[r, :len(window)] = window
      inputs[r, pos - start] = tokens.MASK
    probs = program.predict_windows(params, inputs, batch_size)
    for r, (start, pos) in enumerate(part):
      true = seq[pos].astype(np.int64) - tokens.A
      out[pos] = np.log(np.maximum(probs[r, pos - start, true], 1e-30))
  return out


def score(workdir: str, inputs: list[str], unit: str = "base", step: int | None = None, fmt: str | None = None,
          per_position: bool = False, progress: bool = True) -> dict:
  from tqdm import tqdm

  from dnajax import evaluate

  if unit not in UNITS:
    raise UserError(f"--unit {unit!r}: use base or codon")
  records = io.read_files(inputs, fmt)  # a bad file fails before any model work
  cfg, program, params, step = evaluate.load_run(workdir, step)
  results = []
  for r in tqdm(records, desc="score", unit="seq", disable=not progress or len(records) < 2):
    lp = position_log_probs(program, params, r.ids, cfg.data.seq_len, cfg.eval.batch, unit)
    scored = ~np.isnan(lp)
    total = float(lp[scored].sum())
    item = {"name": r.name, "length": int(len(r.ids)), "scored_bases": int(scored.sum()), "pll": total,
            "pll_per_base": total / max(int(scored.sum()), 1)}
    if per_position:
      item["log_probs"] = [None if np.isnan(x) else float(x) for x in lp]
    results.append(item)
  return {"checkpoint_step": step, "unit": unit, "sequences": results}


def format_tsv(r: dict) -> str:
  lines = ["name\tlength\tscored_bases\tpll\tpll_per_base"]
  for s in r["sequences"]:
    lines.append(f"{s['name']}\t{s['length']}\t{s['scored_bases']}\t{s['pll']:.4f}\t{s['pll_per_base']:.5f}")
  return "\n".join(lines) + "\n"
