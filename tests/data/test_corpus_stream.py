"""Streaming `prepare`: the same corpus bytes and index as the in-memory reference, whatever the block sizes, the
number of worker processes or the split mode; reuse, refusal and nothing left behind on errors."""

import gzip
import json
import os

import numpy as np
import pytest
from conftest import shared_file

from dnajax import cli
from dnajax.data import corpus, preparation, readers, staging, tokens
from dnajax.data import text as text_lib
from dnajax.errors import UserError


def _reference(paths, settings):
  """What prepare wrote before it streamed: every record read whole, cut at N runs, split, written back to back.
  Returns (tokens bytes, softmask bytes, segments, split mode)."""
  records = readers.read_files(paths)
  pieces, offset = [], 0
  for rec in records:
    is_n = rec.ids == tokens.N
    cuts = [(0, len(rec.ids))]
    if settings.n_run > 0 and is_n.any():
      edges = np.flatnonzero(np.diff(np.concatenate([[0], is_n.astype(np.int8), [0]])))
      runs = [(s, e) for s, e in zip(edges[0::2], edges[1::2]) if e - s >= settings.n_run]
      cuts, cur = [], 0
      for s, e in runs:
        cuts.append((cur, int(s)))
        cur = int(e)
      cuts.append((cur, len(rec.ids)))
    kept = []
    for a, b in cuts:
      if b - a >= settings.min_len:
        kept.append((a, b, offset))
        offset += b - a
    pieces.append(kept)
  segments, mode = corpus.assign_split(pieces, settings)
  ids = np.concatenate([r.ids for r in records])
  soft = np.concatenate([r.soft_masked for r in records]).astype(np.uint8)
  starts = np.cumsum([0] + [len(r.ids) for r in records])
  tok, sm, out = [], [], []
  for r, a, b, _, split in segments:
    tok.append(ids[starts[r] + a:starts[r] + b])
    sm.append(soft[starts[r] + a:starts[r] + b])
    out.append({"name": records[r].name, "record": r, "start": a, "length": b - a, "split": split,
                "source": records[r].source})
  return np.concatenate(tok).tobytes(), np.concatenate(sm).tobytes(), out, mode


def _genome(path, rng, n_records, length, gz=False):
  """A FASTA with soft-masked runs, N runs of every length around the cut points, IUPAC codes, odd line widths."""
  text = []
  for r in range(n_records):
    n = int(rng.integers(length // 3, length))
    s = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, n)].copy()
    for _ in range(6):
      a = int(rng.integers(0, n))
      s[a:a + int(rng.integers(1, 200))] |= 0x20
    for _ in range(8):
      a = int(rng.integers(0, n))
      s[a:a + int(rng.integers(1, 30))] = ord(rng.choice(["N", "n"]))
    s[int(rng.integers(0, n))] = ord("R")
    width = int(rng.integers(7, 80))
    text.append(f">r{r} x\n" + "\n".join(s[i:i + width].tobytes().decode() for i in range(0, n, width)) + "\n")
  data = "".join(text).encode()
  with open(path, "wb") as f:
    f.write(gzip.compress(data) if gz else data)
  return path


SETTINGS = [corpus.SplitSettings(0.1), corpus.SplitSettings(0.2, "blocks", 10, 40),
            corpus.SplitSettings(0.3, "records", 5, 100, 3), corpus.SplitSettings(0.0, "auto", 0, 1),
            corpus.SplitSettings(0.25, "blocks", 1, 8)]


@pytest.mark.parametrize("block", [None, 7, 64])
def test_streaming_matches_the_in_memory_reference(tmp_path, monkeypatch, block):
  rng = np.random.default_rng(block or 0)
  paths = [_genome(str(tmp_path / "a.fa"), rng, 9, 3000), _genome(str(tmp_path / "b.fa.gz"), rng, 3, 5000, gz=True)]
  if block:  # pieces of a few bases: every N run, soft-masked run and segment straddles piece boundaries
    monkeypatch.setattr(text_lib, "TEXT_BLOCK", block)
    monkeypatch.setattr(staging.Output, "FLUSH", block * 3)
  for k, settings in enumerate(SETTINGS):
    for files in (paths[:1], paths):
      tok, sm, segments, mode = _reference(files, settings)
      c = preparation.prepare_files(files, str(tmp_path / f"c{k}-{len(files)}"), settings)
      assert bytes(c.tokens) == tok and bytes(c.softmask) == sm
      assert [{key: s[key] for key in segments[0]} for s in c.segments] == segments
      assert c.index["split_mode"] == mode and c.index["total_bases"] == len(tok)
      assert [s["offset"] for s in c.segments] == list(np.cumsum([0] + [s["length"] for s in segments])[:-1])


def test_workers_give_the_same_corpus_and_list_the_sources(tmp_path, monkeypatch):
  monkeypatch.setattr(preparation, "PARALLEL_MIN_BYTES", 0)  # small files in worker processes all the same
  rng = np.random.default_rng(5)
  paths = [_genome(str(tmp_path / f"{n}.fa"), rng, 4, 4000) for n in ("a", "b", "c")]
  one = preparation.prepare_files(paths, str(tmp_path / "one"), SETTINGS[0])
  two = preparation.prepare_files(paths, str(tmp_path / "two"), SETTINGS[0], workers=2)
  assert bytes(one.tokens) == bytes(two.tokens) and bytes(one.softmask) == bytes(two.softmask)
  assert one.segments == two.segments and one.index["sources"] == two.index["sources"]
  for src, path in zip(one.index["sources"], paths):
    mine = [s for s in one.segments if s["source"] == path]
    assert src["path"] == os.path.abspath(path) and src["records"] == 4
    assert src["train_bases"] + src["val_bases"] == sum(s["length"] for s in mine) > 0


def test_reuse_refusal_and_nothing_left_on_errors(tmp_path, monkeypatch):
  monkeypatch.setattr(preparation, "PARALLEL_MIN_BYTES", 0)
  rng = np.random.default_rng(2)
  good = _genome(str(tmp_path / "g.fa"), rng, 6, 2000)
  out = tmp_path / "c"
  c = preparation.prepare_files([good], str(out), SETTINGS[0])
  stamp = os.stat(out / "tokens.u8").st_mtime_ns
  assert preparation.prepare_files([good], str(out), SETTINGS[0]).index == c.index  # the same: reused, not rewritten
  assert os.stat(out / "tokens.u8").st_mtime_ns == stamp
  with pytest.raises(UserError, match="already holds a different corpus"):
    preparation.prepare_files([good], str(out), SETTINGS[1])
  bad = tmp_path / "p.fa"
  bad.write_text(">ok\n" + "ACGT" * 100 + "\n>protein\nMKVLEFIQPLLAAGMKVLEFIQ\n")
  for workers in (1, 2):
    with pytest.raises(UserError, match="record protein: position 3: letter .L. .* protein FASTA"):
      preparation.prepare_files([good, str(bad)], str(tmp_path / "new"), SETTINGS[0], workers=workers)
    assert sorted(os.listdir(tmp_path)) == ["c", "g.fa", "p.fa"]  # no output, no temporary directory


def test_cli_prepare_streams_shared_genomes(tmp_path, capsys):
  paths = [shared_file("D.melanogaster.fa.gz"), shared_file("C.elegans.fa.gz")]
  out = tmp_path / "wf"
  assert cli.main(["prepare", "--input", *paths, "--output", str(out), "--split", "records", "--val-fraction",
                   "0.2", "--workers", "2"]) == 0
  assert "segments from 14 records" in capsys.readouterr().out
  tok, sm, segments, _ = _reference(paths, corpus.SplitSettings(0.2, "records"))
  c = corpus.Corpus(str(out))
  assert bytes(c.tokens) == tok and bytes(c.softmask) == sm and len(c.segments) == len(segments)
  index = json.loads((out / "index.json").read_text())
  assert [s["records"] for s in index["sources"]] == [7, 7]
