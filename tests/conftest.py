"""Shared fixtures. Tests never reach the internet; ../shared/data is optional (tests using it skip cleanly)."""

import atexit
import os
import shutil
import tempfile

import pytest

# One persistent XLA compilation cache for the whole session (this process and the subprocesses it starts): the tiny
# models are compiled again and again by separate runs; the compiled programs are the same, so later compiles are
# cache hits. Set before any test imports jax; removed at exit. It changes no result, only the suite's time.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _CACHE = tempfile.mkdtemp(prefix="dnajax-test-xla-cache-")
  os.environ.update(JAX_COMPILATION_CACHE_DIR=_CACHE, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

# `make test` runs one worker per CPU (pytest-xdist). OpenMP threads (scikit-learn's boosted trees) that spin while
# they wait slow the other worker down several-fold; passive waiting changes no result.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def pytest_collection_modifyitems(items):
  """The tests marked slow (tens of seconds each) run first, so that under `make test`'s workers the long ones start
  early and the short ones fill in at the end; the order within each group is kept."""
  items.sort(key=lambda item: item.get_closest_marker("slow") is None)


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data")


def shared_file(name: str) -> str:
  path = os.path.join(SHARED_DATA, name)
  if not os.path.isfile(path):
    pytest.skip(f"{path} not present")
  return path


def write(path, text, mode="w"):
  with open(path, mode) as f:
    f.write(text)
  return str(path)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
  """A tiny model trained once on the structured synthetic data: (workdir, final metrics)."""
  from dnajax import config
  from dnajax.training import loop

  workdir = str(tmp_path_factory.mktemp("tiny_run"))
  cfg = config.load("configs/tiny.py", [("train.steps", "60"), ("train.eval_every", "60"), ("ckpt.every", "30")])
  final = loop.train_and_evaluate(cfg, workdir, show_progress=False)
  return workdir, final


def refused(capsys, *argv):
  """Run the CLI; assert exit code 2 and one line on stderr, nothing on stdout; return that line."""
  from dnajax import cli

  code = cli.main(list(argv))
  out, err = capsys.readouterr()
  lines = err.strip().splitlines()
  assert code == 2 and len(lines) == 1 and lines[0].startswith("dnajax: error: "), (code, err)
  assert "Traceback" not in err and not out.strip(), out
  return lines[0]
