"""Property-based tests of the readers and `prepare`: every generated file gives a correct corpus or one clean
error line, never a traceback and never a half-written corpus (benchmarks/fuzz_inputs.py runs 10,000+)."""

import tempfile

from hypothesis import HealthCheck, given, settings

from benchmarks.fuzz_strategies import check, files
from dnajax import cli

SETTINGS = dict(deadline=None, database=None, suppress_health_check=list(HealthCheck), derandomize=True)


@settings(max_examples=400, **SETTINGS)
@given(files())
def test_readers_and_prepare_never_crash(case):
  with tempfile.TemporaryDirectory() as d:
    check(*case, d)


@settings(max_examples=25, **SETTINGS)
@given(files())
def test_prepare_cli_is_one_line_or_a_corpus(case):
  import contextlib
  import io
  import os

  name, data = case
  with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, name)
    with open(path, "wb") as f:
      f.write(data)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
      code = cli.main(["prepare", "--input", path, "--output", os.path.join(d, "c"), "--min-len", "8"])
    assert code in (0, 2)
    if code == 2:
      lines = err.getvalue().strip().splitlines()
      assert len(lines) == 1 and lines[0].startswith("dnajax: error: ")
      assert not os.path.exists(os.path.join(d, "c"))
    else:
      assert os.path.isfile(os.path.join(d, "c", "index.json"))
