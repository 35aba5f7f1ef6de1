"""Hypothesis strategies for sequence files, and the property every generated file must satisfy.

Shared by tests/data/test_fuzz.py (a few hundred cases per run) and benchmarks/fuzz_inputs.py (10,000+ cases)."""

import gzip
import os

import numpy as np
from hypothesis import strategies as st

from dnajax.data import corpus, preparation, readers, tokens
from dnajax.errors import UserError

DNA = "ACGT"
LETTERS = DNA + "acgtNnRYKMSWBDHVryuU?*-.XEFILPQZJO0123 \t"  # DNA, IUPAC, RNA, protein, junk
GENBANK = """LOCUS       X1                       {n} bp    DNA     linear   UNK 01-JAN-2000
DEFINITION  fuzz.
ACCESSION   X1
VERSION     X1.1
FEATURES             Location/Qualifiers
     source          1..{n}
     CDS             {cds}
                     /codon_start=1
ORIGIN
{origin}
//
"""


@st.composite
def sequences(draw):
  # Mostly valid nucleotide text (so most files reach `prepare`), and every kind of invalid input now and then.
  kind = draw(st.sampled_from(["dna"] * 10 + ["mixed_case"] * 4 + ["iupac"] * 2 + ["rna"] * 2
                              + ["protein", "any", "empty", "long"]))
  if kind == "empty":
    return ""
  if kind == "long":
    return draw(st.sampled_from(DNA)) * draw(st.integers(1000, 200_000))
  alphabet = {"dna": DNA, "mixed_case": DNA + DNA.lower(), "iupac": DNA + "NRYKMSWBDHV",
              "rna": "ACGU", "protein": "ACDEFGHIKLMNPQRSTVWY", "any": LETTERS}[kind]
  return draw(st.text(alphabet=alphabet, min_size=1, max_size=600))


def _wrap(seq: str, width: int, eol: str) -> str:
  if width <= 0:
    return seq + eol
  return "".join(seq[i:i + width] + eol for i in range(0, len(seq), width)) or eol


@st.composite
def fasta_text(draw):
  eol = draw(st.sampled_from(["\n", "\n", "\r\n", "\r"]))
  parts = []
  if draw(st.booleans()) and draw(st.integers(0, 9)) == 0:
    parts.append(draw(st.text(max_size=40)) + eol)  # junk before the first header
  for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 2, 3, 5]))):
    # Headers: printable ASCII mostly; now and then anything (valid UTF-8 is kept, other bytes rejected as non-text).
    header_chars = st.characters(min_codepoint=32, max_codepoint=126) if draw(st.integers(0, 9)) else \
        st.characters(blacklist_characters="\r\n")
    header = ">" + draw(st.text(alphabet=header_chars, max_size=30))
    parts.append(header + eol + _wrap(draw(sequences()), draw(st.sampled_from([0, 1, 60, 80, 10_000])), eol))
  if draw(st.integers(0, 9)) == 0:
    parts.append(">" + eol)  # a bare '>'
  return "".join(parts)


@st.composite
def genbank_text(draw):
  seq = draw(st.text(alphabet=DNA + "acgtn", min_size=1, max_size=400))
  n = len(seq)
  a = draw(st.integers(1, n))
  b = draw(st.integers(a, n + 5))
  cds = draw(st.sampled_from([f"{a}..{b}", f"complement({a}..{b})", f"join({a}..{a},{b}..{b})", "<1..>2", "??"]))
  origin = "\n".join(f"{i + 1:>9} " + " ".join(seq[j:j + 10] for j in range(i, min(i + 60, n), 10))
                     for i in range(0, n, 60))
  text = GENBANK.format(n=n, cds=cds, origin=origin)
  if draw(st.booleans()):  # truncated anywhere
    text = text[:draw(st.integers(0, len(text)))]
  return text


@st.composite
def files(draw):
  """(file name, bytes)."""
  kind = draw(st.sampled_from(["fasta", "fasta", "fasta", "genbank", "bytes"]))
  if kind == "bytes":
    data = draw(st.binary(max_size=2000))
    name = draw(st.sampled_from(["x.fa", "x.gb", "x.fa.gz", "x.txt"]))
  else:
    data = (draw(fasta_text()) if kind == "fasta" else draw(genbank_text())).encode("utf-8", "replace")
    name = "x.fa" if kind == "fasta" else "x.gb"
    if draw(st.integers(0, 4)) == 0:
      data = gzip.compress(data)
      name += ".gz"
      if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
  return name, data


def check(name: str, data: bytes, directory: str) -> str:
  """Read + prepare one file. Returns 'ok', 'rejected:read' or 'rejected:prepare'; any other exception is a bug.
  Rejections must be one line, and a rejected prepare must leave nothing behind."""
  path = os.path.join(directory, name)
  with open(path, "wb") as f:
    f.write(data)
  try:
    records = readers.read_file(path)
  except UserError as e:
    assert "\n" not in str(e) and str(e), repr(str(e))
    return "rejected:read"
  for r in records:
    assert len(r.ids) > 0 and r.ids.dtype == np.uint8 and len(r.soft_masked) == len(r.ids)
    assert np.isin(r.ids, [tokens.A, tokens.C, tokens.G, tokens.T, tokens.N]).all()
    if r.codon_position is not None:
      assert len(r.codon_position) == len(r.ids) and r.codon_position.max() <= 3
  out = os.path.join(directory, "corpus")
  before = set(os.listdir(directory))
  try:
    c = preparation.prepare(records, out, corpus.SplitSettings(val_fraction=0.2, min_len=8), force=True)
  except UserError as e:
    assert "\n" not in str(e)
    assert set(os.listdir(directory)) <= before, "a rejected prepare left files behind"
    return "rejected:prepare"
  assert [p for p in os.listdir(directory) if p.startswith(".corpus-")] == []
  total = sum(s["length"] for s in c.segments)
  assert total == c.index["total_bases"] == len(c.tokens) > 0
  assert sum(len(r.ids) for r in records) >= total
  return "ok"
