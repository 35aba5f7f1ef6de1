"""Consequences of every SNV of a coding sequence, checked by hand on small cases."""

import collections

import pytest

from dnajax.bio import coding_variants
from dnajax.errors import UserError

# ATG AAA GCT TGG TAA: Met Lys Ala Trp stop
CDS = "ATGAAAGCTTGGTAA"


def _by_change(cds, code=11):
  return {(v.offset, v.alt): v.consequence for v in coding_variants.coding_snvs(cds, code)}


def test_every_substitution_once_in_order():
  snvs = coding_variants.coding_snvs(CDS)
  assert len(snvs) == 3 * len(CDS)
  assert [(v.offset, v.alt) for v in snvs[:3]] == [(0, "C"), (0, "G"), (0, "T")]
  assert all(v.ref == CDS[v.offset] != v.alt for v in snvs)
  assert {v.consequence for v in snvs} <= set(coding_variants.CONSEQUENCES)


def test_start_codon_changes_are_start_lost():
  c = _by_change(CDS)
  assert c[(2, "A")] == "start_lost"  # ATG -> ATA, though ATA is an alternative start codon of table 11
  assert c[(0, "G")] == "start_lost"  # ATG -> GTG as well
  assert all(c[(o, a)] == "start_lost" for o in range(3) for a in "ACGT" if a != CDS[o])
  assert _by_change("GCTAAATAA")[(0, "C")] == "missense"  # no start codon: the first codon is an ordinary one


def test_synonymous_missense_and_nonsense():
  c = _by_change(CDS)
  assert c[(5, "G")] == "synonymous"  # AAA -> AAG, Lys
  assert c[(5, "C")] == "missense"  # AAA -> AAC, Asn
  assert c[(3, "T")] == "nonsense"  # AAA -> TAA
  assert c[(8, "A")] == c[(8, "C")] == c[(8, "G")] == "synonymous"  # GCN: fourfold degenerate Ala
  assert c[(11, "A")] == "nonsense" and c[(10, "A")] == "nonsense"  # TGG -> TGA, TAG
  assert c[(11, "T")] == "missense"  # TGG -> TGT, Cys


def test_terminal_stop_codon():
  c = _by_change(CDS)  # TAA at offsets 12-14
  assert c[(13, "G")] == "synonymous" and c[(14, "G")] == "synonymous"  # TAA -> TGA, TAG: still a stop
  assert c[(12, "C")] == "stop_lost" and c[(14, "C")] == "stop_lost"  # CAA Gln, TAC Tyr
  assert c[(13, "C")] == "stop_lost"  # TCA Ser


def test_counts_and_genetic_code():
  counts = collections.Counter(v.consequence for v in coding_variants.coding_snvs(CDS))
  # by codon: AAA (Lys) 1 synonymous, 7 missense, 1 nonsense; GCT (Ala) 3 + 6 missense; TGG (Trp) 7 missense and
  # 2 nonsense; TAA 2 synonymous (TAG, TGA) and 7 stop_lost
  assert counts == {"start_lost": 9, "synonymous": 1 + 3 + 2, "missense": 7 + 6 + 7, "nonsense": 1 + 2,
                    "stop_lost": 7}
  # TGA is Trp in table 4 (mycoplasma): TGG -> TGA is synonymous there, and TAA -> TGA loses the stop
  c4 = _by_change(CDS, 4)
  assert c4[(11, "A")] == "synonymous" and c4[(13, "G")] == "stop_lost"
  assert _by_change("atgaaataa")[(5, "G")] == "synonymous"  # lower case is read


@pytest.mark.parametrize("bad", ["", "ATGAA", "ATGNAATAA", "ATGTAAGCTTAA"])
def test_refuses_what_is_not_a_clean_cds(bad):
  with pytest.raises(UserError):
    coding_variants.coding_snvs(bad)
  with pytest.raises(UserError):
    coding_variants.coding_snvs(CDS, 99)
