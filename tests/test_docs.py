"""The documentation: the site builds strictly (MkDocs), every `dnajax` command shown in it parses with today's CLI,
and each tutorial and the Python API page run as written (on the shipped models and ../shared/data)."""

import os
import re
import shlex
import subprocess
import sys

import pytest
from conftest import ROOT

from dnajax import cli
from dnajax.data import rundir

DOCS = os.path.join(ROOT, "docs")
TUTORIALS = os.path.join(DOCS, "tutorials")
SHARED = os.path.join(os.path.dirname(ROOT), "shared")
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def _pages() -> list[str]:
  return sorted(os.path.join(d, f) for d, _, fs in os.walk(DOCS) for f in fs if f.endswith(".md")) + [
      os.path.join(ROOT, "README.md")]


def blocks(path: str, language: str) -> list[str]:
  """The fenced code blocks of a Markdown file in `language`, in order."""
  return [body for lang, body in BLOCK.findall(open(path).read()) if lang == language]


def commands(script: str) -> list[list[str]]:
  """The `dnajax ...` command lines of a shell block (continuation lines joined), split as the shell would."""
  out = []
  for line in script.replace("\\\n", " ").splitlines():
    line = line.split(" #")[0].strip()
    for part in re.split(r"\s*(?:&&|\|\||;|\||>>?|<)\s*", line):
      if part.startswith(("dnajax ", ".venv/bin/dnajax ")):
        out.append(shlex.split(part)[1:])
  return out


def test_the_site_builds_without_warnings(tmp_path):
  pytest.importorskip("mkdocs")
  run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                       cwd=ROOT, capture_output=True, text=True)
  assert run.returncode == 0, run.stderr[-3000:]
  assert "WARNING" not in run.stderr, run.stderr[-3000:]


def test_every_verb_has_a_page_and_every_shown_command_parses():
  for verb in cli.VERBS:
    assert os.path.isfile(os.path.join(DOCS, "verbs", f"{verb}.md")), verb
  bad = []
  for page in _pages():
    for script in blocks(page, "bash") + blocks(page, "shell"):
      for argv in commands(script):
        rest, _ = cli.split_overrides(argv)
        verb = next((a for a in rest if not a.startswith("-")), None)
        try:
          cli._parser(verb if verb in cli.VERBS else None).parse_args(rest)
        except (SystemExit, Exception) as e:  # noqa: BLE001 - any failure is reported with the command
          bad.append(f"{os.path.relpath(page, ROOT)}: dnajax {shlex.join(argv)}: {e}")
  assert not bad, "\n".join(bad)


def _tutorial_env(tmp_path) -> dict:
  """A working directory laid out like the repository root (configs/ and launch/ linked, ../shared beside it) but
  outside it, so outputs land in `tmp_path`; the venv's dnajax first on PATH."""
  (tmp_path / "shared").symlink_to(SHARED)
  (tmp_path / "work").mkdir()
  for name in ("configs", "launch"):
    (tmp_path / "work" / name).symlink_to(os.path.join(ROOT, name))
  env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
  return env


TUTORIAL_PAGES = sorted(f for f in os.listdir(TUTORIALS)) if os.path.isdir(TUTORIALS) else []


@pytest.mark.slow
@pytest.mark.parametrize("page", TUTORIAL_PAGES)
def test_each_tutorial_runs_as_written(page, tmp_path):
  if not os.path.isdir(SHARED) or not rundir.shipped_models():
    pytest.skip("needs ../shared/data and the shipped models")
  env = _tutorial_env(tmp_path)
  script = "set -euo pipefail\n" + "\n".join(blocks(os.path.join(TUTORIALS, page), "bash"))
  run = subprocess.run(["bash", "-c", script], cwd=tmp_path / "work", env=env, capture_output=True, text=True,
                       timeout=900)
  assert run.returncode == 0, f"{page}:\n{run.stdout[-2000:]}\n{run.stderr[-3000:]}"


def test_the_python_api_example_runs(tmp_path):
  if not os.path.isdir(SHARED) or not rundir.shipped_models():
    pytest.skip("needs ../shared/data and the shipped models")
  env = _tutorial_env(tmp_path)
  for code in blocks(os.path.join(DOCS, "api.md"), "python"):
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path / "work", env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
