"""Shared fixtures. Tests never reach the internet; ../shared/data is optional (tests using it skip cleanly)."""

import os

import pytest

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
