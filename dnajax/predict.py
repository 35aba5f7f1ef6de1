"""`dnajax predict`: fill the '?' positions of FASTA records with the model's distribution over A/C/G/T.

Long sequences are covered by overlapping windows (half a window apart); each position takes its prediction from the
window in which it sits farthest from an edge. Every '?' is predicted from unmasked context only ('?' are MASK).
"""

from __future__ import annotations

import os

import numpy as np

from dnajax import corpus as corpus_lib, io, tokens
from dnajax.errors import UserError
from dnajax.evaluate import load_run

HEADER = "record\tposition\tA\tC\tG\tT\tpredicted"


def predict_probs(program, params, seqs: list[np.ndarray], seq_len: int, batch_size: int,
                  progress: bool = False) -> list[np.ndarray]:
  """float32[len, 4] per sequence."""
  stride = max(1, seq_len // 2)
  w = corpus_lib.tile(seqs, [np.zeros(len(s), bool) for s in seqs], seq_len, stride)
  probs = program.predict_windows(params, w.ids, batch_size, progress)
  out = [np.zeros((len(s), 4), np.float32) for s in seqs]
  best = [np.full(len(s), -1, np.int64) for s in seqs]  # distance to the nearest window edge
  for j in range(len(w.ids)):
    i, start = int(w.seq_index[j]), int(w.start[j])
    length = min(seq_len, len(seqs[i]) - start)
    col = np.arange(length)
    edge = np.minimum(col, length - 1 - col)
    pos = start + col
    better = edge > best[i][pos]
    out[i][pos[better]] = probs[j, col[better]]
    best[i][pos[better]] = edge[better]
  return out


def predict(workdir: str, input_path: str, output: str | None = None, step: int | None = None,
            fmt: str | None = None) -> tuple[str, str | None]:
  """Writes the TSV (to `output`, or returns it as text) and the filled FASTA beside it."""
  records = io.read_files([input_path], fmt, allow_query=True)
  queries = [np.flatnonzero(r.ids == tokens.MASK) for r in records]
  if not any(len(q) for q in queries):
    raise UserError(f"{input_path}: no '?' positions to fill; write ? where a base should be predicted")
  cfg, program, params, _ = load_run(workdir, step)
  probs = predict_probs(program, params, [r.ids for r in records], cfg.data.seq_len, cfg.eval.batch,
                        progress=True)
  lines, fasta = [HEADER], []
  for r, q, p in zip(records, queries, probs):
    pq = p[q].astype(np.float64)
    pq /= pq.sum(axis=1, keepdims=True)
    filled = r.ids.copy()
    best = pq.argmax(axis=1)
    filled[q] = tokens.BASE_IDS[best]
    for pos, row, k in zip(q, pq, best):
      lines.append(f"{r.name}\t{pos}\t" + "\t".join(f"{x:.8f}" for x in row) + f"\t{tokens.BASES[k]}")
    seq = tokens.decode(filled)
    fasta.append(io.fasta_entry(r.name, seq))
  tsv, fa = "\n".join(lines) + "\n", "".join(fasta)
  if output is None:
    return tsv, None
  fasta_path = os.path.splitext(output)[0] + ".fasta"
  for path, text in ((output, tsv), (fasta_path, fa)):
    io.atomic_write_text(path, text)
  return output, fasta_path
