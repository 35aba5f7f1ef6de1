"""The package's shape stays true: imports flow one way between layers, no app imports another app, no import
cycle (imports inside functions count), and no module or function grows past its size limit."""

import ast
import os

import pytest
from conftest import ROOT

PACKAGE = os.path.join(ROOT, "dnajax")
# Layer of each sub-package (dnajax.<name>); the base modules directly under dnajax/ are layer 0. A module may import
# from its own sub-package and from lower layers only; two sub-packages on one layer may not import each other.
# (dnajax.configs, the shipped config files, belongs to the base.)
LAYERS = {"data": 1, "bio": 1, "model": 2, "evaluation": 3, "training": 4, "design": 4, "apps": 5}
CLI_LAYER = 6
# dnajax.api (the Python API) sits beside the apps, as their peer: both call evaluation/, training/, design/. The
# package root `dnajax` only forwards `dnajax.open` to it (lazily), so it is the top layer.
API_LAYER, ROOT_LAYER = 5, 7
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 450, 90


def _modules() -> dict[str, str]:
  """dnajax module name -> file path, for every module of the package (configs/ is installed as dnajax.configs)."""
  out = {}
  for base, prefix in ((PACKAGE, "dnajax"), (os.path.join(ROOT, "configs"), "dnajax.configs")):
    for d, _, files in os.walk(base):
      for f in files:
        if f.endswith(".py"):
          rel = os.path.relpath(os.path.join(d, f), base)[:-3].replace(os.sep, ".")
          name = prefix if rel == "__init__" else f"{prefix}.{rel.removesuffix('.__init__')}"
          out[name] = os.path.join(d, f)
  return out


MODULES = _modules()


def _imports(path: str) -> set[str]:
  """dnajax modules imported anywhere in the file (module level or inside functions)."""
  out = set()
  for node in ast.walk(ast.parse(open(path).read())):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
               for a in node.names]
    else:
      continue
    out |= {n for n in names if n.split(".")[0] == "dnajax"}
  return out


def _layer(module: str) -> tuple[int, str]:
  parts = module.split(".")
  if len(parts) > 2 and parts[1] in LAYERS:
    return LAYERS[parts[1]], parts[1]
  if module == "dnajax.cli":
    return CLI_LAYER, "cli"
  if module == "dnajax.api":
    return API_LAYER, "api"
  if module == "dnajax":
    return ROOT_LAYER, "root"
  return 0, "base"


GRAPH = {m: _imports(p) - {m} for m, p in MODULES.items()}


def test_every_import_points_to_a_lower_layer_or_its_own_package():
  bad = []
  for m, targets in GRAPH.items():
    (lm, pm) = _layer(m)
    for t in targets:
      (lt, pt) = _layer(t)
      if lt > lm or (lt == lm and pt != pm):
        bad.append(f"{m} (layer {lm}, {pm}) imports {t} (layer {lt}, {pt})")
  assert not bad, "\n".join(bad)


def test_no_app_imports_another_app():
  bad = [(m, t) for m, ts in GRAPH.items() if m.startswith("dnajax.apps.") for t in ts
         if t.startswith("dnajax.apps.") and t != m]
  assert not bad


def test_no_import_cycles():
  state: dict[str, int] = {}

  def visit(m, path):
    state[m] = 1
    for t in sorted(GRAPH.get(m, ())):
      if t not in MODULES:
        continue
      if state.get(t) == 1:
        pytest.fail("import cycle: " + " -> ".join(path[path.index(t):] + [t]))
      if t not in state:
        visit(t, path + [t])
    state[m] = 2

  for m in sorted(MODULES):
    if m not in state:
      visit(m, [m])


def test_at_least_four_subpackages_and_every_verb_has_an_app():
  from dnajax import cli

  assert sum(1 for p in LAYERS if os.path.isdir(os.path.join(PACKAGE, p))) >= 4
  for verb in cli.VERBS:
    assert f"dnajax.apps.{cli.MODULES.get(verb, verb)}" in MODULES, verb


def test_module_and_function_sizes():
  paths = [p for m, p in MODULES.items() if not m.startswith("dnajax.configs")]
  paths += [os.path.join(ROOT, "benchmarks", f) for f in os.listdir(os.path.join(ROOT, "benchmarks"))
            if f.endswith(".py")]
  bad = []
  for path in paths:
    text = open(path).read()
    if text.count("\n") > MAX_MODULE_LINES:
      bad.append(f"{path}: {text.count(chr(10))} lines")
    for node in ast.walk(ast.parse(text)):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        n = node.end_lineno - node.lineno + 1
        if n > MAX_FUNCTION_LINES:
          bad.append(f"{path}:{node.lineno}: {node.name} is {n} lines")
  assert not bad, "\n".join(bad)


# The files and folders of a run directory: only dnajax.data.rundir names them (the checkpoint module's own default
# folder aside: a base module below the data layer, which rundir always overrides).
RUN_FILES = {"config.json", "finetune.json", "train_sequences.txt", "result.json", "metrics.jsonl", "checkpoints",
             "tensorboard", "imported.json", "sweep_run.json", "train.log"}
RUN_OWNER = "dnajax.data.rundir"


def names_run_files(path: str, allowed=()) -> list[str]:
  """'line: name' of every string constant of the file that is a run-directory file name (docstrings never are)."""
  return [f"{node.lineno}: {node.value}" for node in ast.walk(ast.parse(open(path).read()))
          if isinstance(node, ast.Constant) and node.value in RUN_FILES - set(allowed)]


def test_only_the_run_directory_module_names_its_files():
  bad = [f"{m} line {hit}" for m, p in MODULES.items() if m != RUN_OWNER
         for hit in names_run_files(p, ("checkpoints",) if m == "dnajax.checkpoint" else ())]
  bench = os.path.join(ROOT, "benchmarks")
  bad += [f"benchmarks/{f} line {hit}" for f in os.listdir(bench) if f.endswith(".py")
          for hit in names_run_files(os.path.join(bench, f))]
  assert not bad, "\n".join(bad)


def test_the_run_directory_rule_fails_when_broken(tmp_path):
  offender = tmp_path / "offender.py"
  offender.write_text('"""Docstrings may say config.json."""\nimport os\n\npath = os.path.join("w", "config.json")\n')
  assert names_run_files(str(offender)) == ["4: config.json"]


# Where a function is jitted: a model graph only in the programs (training) and the engine core (inference); the two
# others jit no model (a finiteness reduction over any tree, a matmul that measures the CPU's peak).
JIT_MODULES = {"dnajax.training.program", "dnajax.training.finetune_program", "dnajax.evaluation.engine",
               "dnajax.training.guards", "dnajax.apps.bench"}


def jit_calls(path: str) -> list[int]:
  """Lines where the file jits a function (jax.jit / nnx.jit, called or as a decorator)."""
  return [node.lineno for node in ast.walk(ast.parse(open(path).read()))
          if isinstance(node, ast.Attribute) and node.attr == "jit" and isinstance(node.value, ast.Name)
          and node.value.id in ("jax", "nnx")]


def test_model_graphs_are_jitted_only_in_the_programs_and_the_engine():
  bad = [f"{m} line {line}" for m, p in MODULES.items() if m not in JIT_MODULES for line in jit_calls(p)]
  assert not bad, "\n".join(bad)


def test_the_jit_rule_fails_when_broken(tmp_path):
  offender = tmp_path / "offender.py"
  offender.write_text("import jax\n\nf = jax.jit(lambda x: x)\n")
  assert jit_calls(str(offender)) == [3]
