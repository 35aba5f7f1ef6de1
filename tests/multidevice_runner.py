"""Run in a subprocess with fake CPU devices (XLA_FLAGS set by the caller): several tiny training runs or CLI
calls in one process, results printed as one JSON line. Used by test_sharding.py."""

import contextlib
import io
import json
import os
import sys

import jax
import numpy as np

from dnajax import cli, config, sharding
from dnajax.data import masking
from dnajax.training import loop


def losses(workdir):
  records = map(json.loads, open(os.path.join(workdir, "metrics.jsonl")))
  return [x["train/mlm_cross_entropy"] for x in records if x["split"] == "train"]


def main():
  spec = json.loads(sys.argv[1])
  out = {}
  for name, run in spec.get("train", {}).items():  # trained first: "cli" may evaluate these runs
    for leg in run["legs"]:  # each leg: overrides and an optional stop_at, in the same workdir
      cfg = config.load("configs/tiny.py", [tuple(kv) for kv in run["common"] + leg["overrides"]])
      loop.train_and_evaluate(cfg, run["workdir"], show_progress=False, stop_at=leg.get("stop_at"))
    out[name] = losses(run["workdir"])
  for name, overrides in spec.get("masks", {}).items():  # the train step's masks of one batch, sharded on a mesh
    cfg = config.load("configs/tiny.py", [tuple(kv) for kv in overrides])
    mesh, rules = sharding.make_mesh(cfg.mesh), sharding.rules_from_config(cfg.mesh.rules)
    draw = sharding.traced_with_rules(lambda ids: masking.mask_for_training(ids, 0, 5, 0.15), mesh, rules)
    got = jax.jit(draw, in_shardings=sharding.batch_sharding(mesh, 2, rules))(np.asarray(spec["ids"], np.uint8))
    out[name] = {k: np.asarray(v).tolist() for k, v in got.items()}
  for name, argv in spec.get("cli", {}).items():
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
      code = cli.main(argv)
    out[name] = {"code": code, "stderr": err.getvalue(), "stdout": std.getvalue()}
  print("RESULT " + json.dumps(out))


if __name__ == "__main__":
  main()
