"""`generate`'s report: a value over nothing (stops in a frame with no whole codon) is None, an empty TSV cell."""

from dnajax import cli
from dnajax.apps import generate


def test_plausibility_of_short_sequences_has_no_values_over_nothing():
  p = generate.plausibility("ACGA", shuffles=3)
  assert p["stops_per_100_codons_frame1"] == 0.0 and p["stops_per_100_codons_frame2"] == 0.0
  assert p["stops_per_100_codons_frame3"] is None  # frame 3 of 4 bases holds no codon
  p = generate.plausibility("TA", shuffles=0)
  assert [p[f"stops_per_100_codons_frame{i}"] for i in (1, 2, 3)] == [None] * 3
  assert p["longest_orf_shuffled_mean"] is None and p["gc"] == 0.0
  _, tsv = generate.write_outputs([{"name": "g1", "sequence": "TA", "length": 2, "prefix_length": 0, **p}], None, None)
  header, row = (line.split("\t") for line in tsv.splitlines())
  cells = dict(zip(header, row))
  assert cells["stops_per_100_codons_frame1"] == "" and cells["longest_orf_shuffled_mean"] == "" and "None" not in tsv


def test_generate_two_bases_with_scores(tiny_run, tmp_path, capsys):
  report = tmp_path / "g.tsv"
  assert cli.main(["generate", "--workdir", tiny_run[0], "--length", "2", "--report", str(report)]) == 0
  capsys.readouterr()
  header, row = (line.split("\t") for line in report.read_text().splitlines())
  cells = dict(zip(header, row))
  assert float(cells["model_pll"]) < 0 and float(cells["model_pll_per_base"]) < 0
  assert cells["stops_per_100_codons_frame1"] == "" and "None" not in report.read_text()
