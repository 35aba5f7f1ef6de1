import pytest
import RNA

from dnajax.bio import codons, expression
from dnajax.errors import UserError

# Met, then rare (AGG AGA), common (CTG), rare (CGA), common (CTG), rare (ATA CTA AGG), stop: runs of 2, 1 and 3.
RARE_RUNS_CDS = "ATG" + "AGGAGA" + "CTG" + "CGA" + "CTG" + "ATACTAAGG" + "TAA"


def test_gc_by_hand():
  cds = "ATGGCCAAA" + "TTT" * 15  # 54 nt: G, G, C, C in the first 9, none after
  assert expression.gc_5prime(cds) == pytest.approx(4 / 48)
  assert expression.gc_5prime(cds, 9) == pytest.approx(4 / 9)
  assert expression.gc_5prime("ATGGCA", 48) == pytest.approx(3 / 6)  # shorter than the window: all of it
  assert expression.gc3(cds) == pytest.approx(2 / 18)  # ATG, GCC: G and C; AAA and the 15 TTT: none
  assert expression.features(cds)["gc"] == pytest.approx(4 / 54)


def test_mfe_of_a_hairpin_is_vienna_fold_and_negative_and_poly_a_is_zero():
  hairpin = "GGGGAAAUCCCC"  # GGG GAA AUC CCC: a 4-bp stem closing a 4-nt loop
  mfe = expression.mfe_5prime(hairpin, window=12)
  assert mfe == RNA.fold(hairpin)[1] and mfe < -3
  assert expression.mfe_5prime(hairpin.replace("U", "T"), window=12) == mfe  # folded in its U form either way
  assert expression.mfe_5prime(hairpin + "AAA" * 10, window=12) == mfe  # only the first `window` nt are folded
  assert expression.mfe_5prime("AAA" * 20) == 0.0


def test_mfe_prepends_the_utr():
  cds, utr5 = "AUGCCCCCCAAA", "GGGGGGAAA"  # the UTR pairs with the CDS's C run
  alone, with_utr = expression.mfe_5prime(cds, window=12), expression.mfe_5prime(cds, window=12, utr5=utr5)
  assert alone == RNA.fold(cds)[1] and with_utr == RNA.fold(utr5 + cds)[1]
  assert with_utr < alone - 3
  assert expression.features(cds, window=12, utr5=utr5)["mfe_5prime"] == with_utr
  assert expression.features(cds, window=12)["mfe_5prime"] == alone


def test_rare_codons_and_runs():
  assert expression.rare_codons("e_coli") == {"AGA", "AGG", "CGA", "ATA", "CTA"}
  assert expression.rare_codon_runs(RARE_RUNS_CDS) == [2, 1, 3]
  assert expression.rare_codon_runs("ATGCTGTAA") == []
  assert expression.rare_codon_fraction(RARE_RUNS_CDS) == pytest.approx(6 / 9)  # 9 sense codons; the stop left out
  f = expression.features(RARE_RUNS_CDS)
  assert (f["rare_codon_longest_run"], f["rare_codon_runs"]) == (3.0, 2.0)
  assert expression.rare_codon_runs("AGG" * 4) == [4]  # a run that reaches the end


def test_cai_is_codons_cai():
  cds = "ATGGCTAAACTGCGTGAAAGCTAA"
  assert expression.features(cds)["cai"] == pytest.approx(codons.cai(cds, codons.codon_usage("e_coli", 11)))
  assert expression.cai("ATGTGG") == 1.0  # nothing but Met and Trp: no synonymous choice


def test_features_are_named_in_order_and_u_t_and_case_do_not_matter():
  dna = "ATGGCTAGGAGACTGCGTTTTGGGCCCAAAGAATAA"
  f = expression.features(dna)
  assert tuple(f) == expression.FEATURE_NAMES == tuple(name for name, _ in expression.FEATURES)
  assert all(isinstance(v, float) for v in f.values())
  assert expression.features(dna.replace("T", "U")) == f == expression.features(dna.lower())


@pytest.mark.parametrize("call", [
  lambda: expression.features("ATGA"),  # not whole codons
  lambda: expression.features(""),
  lambda: expression.features("ATGNNNTAA"),  # letters other than A/C/G/T/U
  lambda: expression.features("ATG TAA"),
  lambda: expression.features("ATGTAA", utr5="GGAGGN"),
  lambda: expression.features("ATGTAA", window=0),
  lambda: expression.gc_5prime("ATGTAA", 0),
  lambda: expression.features("ATGTAA", organism="mars"),
])
def test_refusals_are_one_line_user_errors(call):
  with pytest.raises(UserError) as info:
    call()
  assert "\n" not in str(info.value)
