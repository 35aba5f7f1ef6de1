"""Reference access (faidx through pysam) and variant reading, without a model."""

import gzip
import os

import pysam
import pytest

from dnajax.data import genome, variants
from dnajax.errors import UserError
from dnajax.evaluation import vep

SEQ = "ACGTTGCAAC" * 30  # 300 bases


def _fasta(path, records, width=60):
  with open(path, "w") as f:
    for name, seq in records:
      f.write(f">{name}\n" + "".join(seq[i:i + width] + "\n" for i in range(0, len(seq), width)))
  return str(path)


def test_region_records_are_placed_at_their_offset_and_names_match_with_or_without_chr(tmp_path, monkeypatch):
  monkeypatch.setenv("DNAJAX_CACHE", str(tmp_path / "cache"))
  path = _fasta(tmp_path / "r.fa", [("chr7:1001-1300", SEQ), ("2", SEQ[:100])])
  ref = genome.Reference(path, progress=False)
  assert ref.contig("7") == "chr7" and ref.contig("chr2") == "2" and ref.contig("chr3") is None
  seg = ref.segment("chr7", 1000, 1001)
  assert seg.start == 1000 and seg.end == 1300 and ref.letters(seg, 1000, 1004) == "ACGT"
  assert ref.segment("chr7", 999, 1000) is None and ref.segment("chr7", 1299, 1301) is None
  assert ref.regions_only == {"chr7": True, "2": False}
  v = variants.Variant("7", 900, ".", "A", "G", 0, 0)  # outside the region: skipped, not an error
  assert vep.locate(ref, v, "x", 10) is None
  with pytest.raises(UserError, match="past the end of contig 2"):
    vep.locate(ref, variants.Variant("chr2", 101, ".", "A", "G", 0, 0), "x", 10)
  with pytest.raises(UserError, match="contig 'chr9' is not in the reference"):
    vep.locate(ref, variants.Variant("chr9", 5, ".", "A", "G", 0, 0), "x", 10)
  ref.close()


def test_bgzip_plain_gzip_and_a_read_only_directory(tmp_path, monkeypatch):
  """bgzip is read in place (.fai and .gzi made beside it); plain gzip is decompressed once into the cache; a
  directory whose mode forbids writing gets its index in the cache and is left untouched."""
  cache = tmp_path / "cache"
  monkeypatch.setenv("DNAJAX_CACHE", str(cache))
  plain = _fasta(tmp_path / "p.fa", [("c", SEQ)])
  pysam.tabix_compress(plain, str(tmp_path / "b.fa.gz"))
  with open(plain, "rb") as src, gzip.open(tmp_path / "g.fa.gz", "wb") as dst:
    dst.write(src.read())
  assert [genome.compression(str(tmp_path / n)) for n in ("p.fa", "b.fa.gz", "g.fa.gz")] == ["plain", "bgzip", "gzip"]
  for name in ("b.fa.gz", "g.fa.gz"):
    ref = genome.Reference(str(tmp_path / name), progress=False)
    seg = ref.segment("c", 0, 1)
    assert ref.letters(seg, 0, 300) == SEQ
    ref.close()
  assert os.path.isfile(tmp_path / "b.fa.gz.fai") and os.path.isfile(tmp_path / "b.fa.gz.gzi")
  assert not os.path.exists(tmp_path / "g.fa.gz.fai") and any(f.endswith(".fa.fai") for _, _, fs in os.walk(cache)
                                                              for f in fs)
  ro = tmp_path / "ro"
  ro.mkdir()
  _fasta(ro / "r.fa", [("c", SEQ)])
  os.chmod(ro, 0o555)
  try:
    ref = genome.Reference(str(ro / "r.fa"), progress=False)
    assert ref.letters(ref.segment("c", 0, 1), 14, 18) == "TGCA" and os.listdir(ro) == ["r.fa"]
    ref.close()
  finally:
    os.chmod(ro, 0o755)


def test_unindexable_references_are_one_line_errors(tmp_path, monkeypatch):
  monkeypatch.setenv("DNAJAX_CACHE", str(tmp_path / "cache"))
  ragged = tmp_path / "ragged.fa"
  ragged.write_text(">a\nACGTACGT\nACG\nACGTACGT\n")
  with pytest.raises(UserError, match="cannot index it as FASTA"):
    genome.Reference(str(ragged), progress=False)
  with pytest.raises(UserError, match="no such file"):
    genome.Reference(str(tmp_path / "missing.fa"), progress=False)
  (tmp_path / "empty.fa").write_text("")
  with pytest.raises(UserError, match="empty file"):
    genome.Reference(str(tmp_path / "empty.fa"), progress=False)


def test_centred_window_is_shifted_inward_and_clipped():
  assert vep.centred_window(100, 1, 0, 1000, 64) == (68, 132)
  assert vep.centred_window(3, 1, 0, 1000, 64) == (0, 64)  # contig start: shifted, full length
  assert vep.centred_window(998, 1, 0, 1000, 64) == (936, 1000)
  assert vep.centred_window(50, 1, 40, 70, 64) == (40, 70)  # an N-free stretch of 30: all of it


def test_vcf_alleles_are_split_counted_and_classified(tmp_path):
  vcf = tmp_path / "v.vcf"
  vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                 "chr1\t3\trs1\tg\tA,T\t.\t.\t.\n1\t5\t.\tA\t<DEL>\t.\t.\t.\nchr1\t6\tx\tC\t*,G\t.\t.\t.\n"
                 "chr1\t7\ty\tGT\tG\t.\t.\t.\nchr1\t9\t.\tA\tAC\t.\t.\t.\nchr1\t9\t.\tAC\tGT\t.\t.\t.\n"
                 "chr1\t12\t.\tAC\tG\t.\t.\t.\nchr1\t20\t.\tA\tN\t.\t.\t.\n")
  vs = variants.read_vcf(str(vcf), keep_lines=True)
  assert [(v.pos, v.id, v.ref, v.alt, v.kind, v.record, v.allele) for v in vs.variants] == [
      (3, "rs1", "G", "A", "snv", 0, 0), (3, "rs1", "G", "T", "snv", 0, 1), (6, "x", "C", "G", "snv", 2, 1),
      (7, "y", "GT", "G", "deletion", 3, 0), (9, ".", "A", "AC", "insertion", 4, 0), (9, ".", "AC", "GT", "mnv", 5, 0),
      (12, ".", "AC", "G", "indel", 6, 0)]
  assert vs.skipped == {"symbolic": 1, "star": 1, "not_acgt": 1} and vs.records == 8 and len(vs.lines) == 8
  with open(vcf, "rb") as src, gzip.open(tmp_path / "v.vcf.gz", "wb") as dst:  # plain gzip, not bgzip
    dst.write(src.read())
  pysam.tabix_compress(str(vcf), str(tmp_path / "v.bgz.vcf.gz"))
  for name in ("v.vcf.gz", "v.bgz.vcf.gz"):
    again = variants.read_vcf(str(tmp_path / name), keep_lines=True)
    assert again.variants == vs.variants and again.lines == vs.lines and again.path.endswith(name)
  assert "1 symbolic ALT" in variants.describe_skipped(vs.skipped)


def test_a_bgzip_vcf_damaged_mid_file_is_one_error(tmp_path):
  lines = "".join(f"c\t{p}\t.\tA\tG\t.\t.\t.\n" for p in range(1, 200_001))
  (tmp_path / "v.vcf").write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + lines)
  pysam.tabix_compress(str(tmp_path / "v.vcf"), str(tmp_path / "v.vcf.gz"))
  raw = bytearray((tmp_path / "v.vcf.gz").read_bytes())
  mid = len(raw) // 2
  raw[mid:mid + 64] = bytes(64)
  (tmp_path / "v.vcf.gz").write_bytes(bytes(raw))
  with pytest.raises(UserError, match="does not parse|compressed data is damaged"):
    variants.read_vcf(str(tmp_path / "v.vcf.gz"))


@pytest.mark.parametrize("text, match", [
    ("hello\nworld\n", "cannot be read as VCF: no .##fileformat=VCFv4.x. line: the file has no header lines"),
    ("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nc\t1\t.\tA\tG\t.\t.\t.\nc\tx\t.\tA\tG\n",
     "line 4 has 5 tab-separated columns"),
])
def test_bad_vcfs_are_one_line_errors(tmp_path, text, match):
  (tmp_path / "bad.vcf").write_text(text)
  with pytest.raises(UserError, match=match):
    variants.read_vcf(str(tmp_path / "bad.vcf"))


def test_variant_tables(tmp_path):
  (tmp_path / "t.tsv").write_text("#CHROM\tPos\tREF\tALT\tid\nchr1\t1,203\tA\tG,C\tv1\n\nchr2\t5\tT\tA\t\n")
  vs = variants.read_table(str(tmp_path / "t.tsv"))
  assert [(v.chrom, v.pos, v.id, v.alt) for v in vs.variants] == [("chr1", 1203, "v1", "G"), ("chr1", 1203, "v1", "C"),
                                                                  ("chr2", 5, ".", "A")]
  (tmp_path / "t.csv").write_text("chrom,pos,ref,alt\nchr1,3,A,G\n")
  assert variants.read_table(str(tmp_path / "t.csv")).variants[0].pos == 3
  (tmp_path / "bom.tsv").write_bytes(b"\xef\xbb\xbfchrom\tpos\tref\talt\n# a comment\nchr1\t3\tA\tG\t\n")
  assert [v.pos for v in variants.read_table(str(tmp_path / "bom.tsv")).variants] == [3]
  (tmp_path / "long.tsv").write_text("chrom\tpos\tref\talt\nchr1\t3\tA\tG\textra\n")
  with pytest.raises(UserError, match="line 2: 5 columns, the header has 4"):
    variants.read_table(str(tmp_path / "long.tsv"))
  (tmp_path / "v.tsv").write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\n")
  with pytest.raises(UserError, match="a VCF file; pass it with --vcf"):
    variants.read_table(str(tmp_path / "v.tsv"))
  (tmp_path / "nopos.tsv").write_text("chrom\tref\talt\nchr1\tA\tG\n")
  with pytest.raises(UserError, match="no column 'pos'"):
    variants.read_table(str(tmp_path / "nopos.tsv"))
  (tmp_path / "badpos.tsv").write_text("chrom\tpos\tref\talt\nchr1\t-3\tA\tG\n")
  with pytest.raises(UserError, match="line 2: pos '-3': positions start at 1"):
    variants.read_table(str(tmp_path / "badpos.tsv"))
  (tmp_path / "zero.tsv").write_text("chrom\tpos\tref\talt\nchr1\t0\tA\tG\n")
  with pytest.raises(UserError, match="position 0 is not a 1-based position"):
    variants.read_table(str(tmp_path / "zero.tsv"))
