"""Mesh, logical rules, and the same numbers on any mesh (8 fake CPU devices in a subprocess)."""

import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from conftest import ROOT

from dnajax import cli, config, sharding
from dnajax.data import corpus as corpus_lib
from dnajax.data import masking, preparation, sources, tokens, windows
from dnajax.data import sampler as sampler_lib
from dnajax.errors import UserError
from dnajax.evaluation.engine import Engine
from dnajax.training import loop
from dnajax.training.program import TrainProgram

COMMON = [["train.steps", "5"], ["train.log_every", "1"], ["train.eval_every", "5"], ["ckpt.every", "5"]]
MESHES = {"dp8": (8, 1, 1), "dp2_fsdp2_tp2": (2, 2, 2)}


def _mesh_overrides(shape):
  return [[f"mesh.{a}", str(n)] for a, n in zip(sharding.MESH_AXES, shape)]


def _run_8(spec, timeout=600):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
  r = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "multidevice_runner.py"), json.dumps(spec)],
                     capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)
  assert r.returncode == 0, r.stderr[-3000:]
  line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")][-1]
  return json.loads(line[len("RESULT "):])


def test_mesh_shape():
  assert sharding.mesh_shape({"data": -1, "fsdp": 2, "tensor": 1}, 8) == (4, 2, 1)
  with pytest.raises(UserError, match="cannot be split"):
    sharding.mesh_shape({"data": -1, "fsdp": 3, "tensor": 1}, 8)
  with pytest.raises(UserError, match="needs 4 devices"):
    sharding.mesh_shape({"data": 2, "fsdp": 2, "tensor": 1}, 8)
  with pytest.raises(UserError, match="at most one -1"):
    sharding.mesh_shape({"data": -1, "fsdp": -1, "tensor": 1}, 8)


def test_rules_from_config():
  rules = sharding.rules_from_config({"batch": "data,fsdp", "embed": "fsdp", "kv": ""})
  assert rules == {"batch": ("data", "fsdp"), "embed": ("fsdp",), "kv": None}
  with pytest.raises(UserError, match="unknown mesh axis"):
    sharding.rules_from_config({"embed": "model"})


def test_no_recompilation_after_the_first_step(tmp_path):
  cfg = config.load("configs/tiny.py")
  program = TrainProgram(cfg)
  c = preparation.prepare(sources.synthetic_records("structured", 20_000, 2_000, 0), str(tmp_path / "c"),
                         corpus_lib.SplitSettings())
  sampler = sampler_lib.WindowSampler(c, cfg.data.seq_len, seed=0)
  state = program.init()
  for step in range(4):
    state, _ = program.step(state, program.to_global(sampler.rows(step, range(cfg.train.global_batch))))
  assert program.step._cache_size() == 1
  w = windows.split_windows(c, "val", cfg.data.seq_len, 40)
  inputs, _, _ = windows.eval_masks(w.ids, 0.15, 0)
  engine = Engine(cfg, state["params"], program.mesh, program.rules)
  for _ in range(2):
    engine.bind(state["params"]).log_probs(inputs)
  assert engine._log_probs._cache_size() == 1


@pytest.mark.slow
def test_same_losses_on_every_mesh_and_checkpoint_reshards(tmp_path, capsys):
  one = str(tmp_path / "one")
  cfg = config.load("configs/tiny.py", [tuple(x) for x in COMMON])
  loop.train_and_evaluate(cfg, one, show_progress=False)
  reference = [x["train/mlm_cross_entropy"] for x in map(json.loads, open(os.path.join(one, "metrics.jsonl")))
               if x["split"] == "train"]
  spec = {"train": {name: {"workdir": str(tmp_path / name), "common": COMMON,
                           "legs": [{"overrides": _mesh_overrides(shape)}]} for name, shape in MESHES.items()}}
  # Saved under (8,1,1) at step 3, restored under (2,2,2): the losses carry on as if nothing happened.
  spec["train"]["resharded"] = {"workdir": str(tmp_path / "resharded"), "common": COMMON,
                                "legs": [{"overrides": _mesh_overrides((8, 1, 1)), "stop_at": 3},
                                         {"overrides": _mesh_overrides((2, 2, 2))}]}
  # A weighted mixture of two files with repeats down-weighted: on 8 devices, stopped and resumed, as on 1 here.
  rng = np.random.default_rng(6)
  files = []
  for name, letters, n in (("big.fa", "AC", 60_000), ("small.fa", "GT", 4_000)):
    s = np.frombuffer(letters.encode(), np.uint8)[rng.integers(0, 2, n)].copy()
    s[n // 3:n // 2] |= 0x20  # a soft-masked run
    files.append(str(tmp_path / name))
    with open(files[-1], "w") as f:
      f.write(f">{name}\n{s.tobytes().decode()}\n")
  mixture = COMMON + [["data.sources", ",".join(files)], ["data.weights", "0.7,0.3"], ["data.softmask_weight", "0.1"]]
  spec["train"]["mixture"] = {"workdir": str(tmp_path / "mix8"), "common": mixture,
                              "legs": [{"overrides": _mesh_overrides((8, 1, 1)), "stop_at": 3},
                                       {"overrides": _mesh_overrides((8, 1, 1))}]}
  # The (2,2,2) checkpoint evaluated through the CLI on the 8 devices there and on the 1 device here.
  fa = str(tmp_path / "x.fa")
  seq = "".join(np.random.default_rng(4).choice(list("ACGT"), 1500))
  with open(fa, "w") as f:
    f.write(f">a\n{seq}\n>b\n{seq[:211]}\n")
  evaluate = ["evaluate", "--workdir", str(tmp_path / "dp2_fsdp2_tp2"), "--input", fa, "--json"]
  vcf = str(tmp_path / "v.vcf")
  with open(vcf, "w") as f:  # SNVs, one at each edge, three ALTs at one position, and a 3-base deletion
    f.write("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
    for pos in (1, 2, 400, 777, 1499, 1500):
      alts = ",".join(b for b in "ACGT" if b != seq[pos - 1]) if pos == 400 else "ACGT"["GTAC".index(seq[pos - 1])]
      f.write(f"a\t{pos}\t.\t{seq[pos - 1]}\t{alts}\t.\t.\t.\n")
    f.write(f"a\t900\tdel\t{seq[899:902]}\t{seq[899]}\t.\t.\t.\n")
  vep = ["vep", "--workdir", str(tmp_path / "dp2_fsdp2_tp2"), "--reference", fa, "--vcf", vcf, "--output"]
  spec["cli"] = {"eight": evaluate, "vep": vep + [str(tmp_path / "vep8.tsv")]}
  # The training masks of one batch, drawn on each mesh with the batch sharded as the train step has it.
  spec["ids"] = np.random.default_rng(5).integers(tokens.PAD, tokens.N + 1, (16, 64)).tolist()
  spec["masks"] = {f"masks_{name}": _mesh_overrides(shape) for name, shape in MESHES.items()}
  out = _run_8(spec)
  here = jax.device_get(masking.mask_for_training(np.asarray(spec["ids"], np.uint8), 0, 5, 0.15))
  assert here["weights"].sum() > 0
  for name in spec["masks"]:
    for k, v in here.items():
      np.testing.assert_array_equal(np.asarray(out[name][k], v.dtype), v, err_msg=f"{name} {k}")
  assert len(reference) == 5
  for name in list(MESHES) + ["resharded"]:
    np.testing.assert_allclose(out[name], reference, rtol=1e-5, err_msg=name)
  mix = str(tmp_path / "mix1")
  loop.train_and_evaluate(config.load("configs/tiny.py", [tuple(x) for x in mixture]), mix, show_progress=False)
  np.testing.assert_allclose(out["mixture"], [x["train/mlm_cross_entropy"] for x in map(json.loads, open(
      os.path.join(mix, "metrics.jsonl"))) if x["split"] == "train"], rtol=1e-5)
  val8, val1 = ([x for x in map(json.loads, open(os.path.join(w, "metrics.jsonl"))) if x["split"] == "val"][-1]
                for w in (str(tmp_path / "mix8"), mix))
  for key in ("val/sources/big.fa/loss", "val/sources/small.fa/loss"):
    assert val8[key] == pytest.approx(val1[key], rel=1e-5)
  assert out["eight"]["code"] == 0, out["eight"]["stderr"]
  eight = json.loads(out["eight"]["stdout"])
  capsys.readouterr()
  assert cli.main(evaluate) == 0
  one = json.loads(capsys.readouterr().out)
  assert (eight["devices"], one["devices"]) == (8, 1) and eight["num_masked"] == one["num_masked"]
  for key in ("masked_accuracy", "loss"):
    np.testing.assert_allclose(one[key], eight[key], rtol=1e-5)
  # (Sums plus a padded last batch: the numbers do not depend on the device count.)
  assert eight["masked_accuracy"] == one["masked_accuracy"] and abs(eight["loss"] - one["loss"]) < 1e-6
  assert one["reverse_complement"]["agreement"] == pytest.approx(eight["reverse_complement"]["agreement"], rel=1e-5)
  # Variant effect scores: the same on 8 devices and on 1 (SNVs to 1e-5; the deletion's PLL difference to 1e-4).
  assert out["vep"]["code"] == 0, out["vep"]["stderr"]
  assert cli.main(vep + [str(tmp_path / "vep1.tsv")]) == 0
  eight, one = ([line.split("\t") for line in open(tmp_path / f"vep{n}.tsv").read().splitlines()[1:]] for n in (8, 1))
  assert len(eight) == len(one) == 9 and [r[:5] for r in eight] == [r[:5] for r in one]
  np.testing.assert_allclose([float(r[5]) for r in eight[:-1]], [float(r[5]) for r in one[:-1]], rtol=1e-5, atol=1e-6)
  assert abs(float(eight[-1][5]) - float(one[-1][5])) < 1e-4 and eight[-1][6] == "deletion"


def test_bad_mesh_configs_fail_before_compiling(tmp_path):
  base = ["train", "--config", "configs/tiny.py", "--workdir", str(tmp_path / "w")]
  out = _run_8({"cli": {
      "not_dividing": base + ["--config.mesh.fsdp=3"],
      "batch": base + ["--config.mesh.data=8", "--config.train.global_batch=12"],
      "heads": base + ["--config.mesh.data=1", "--config.mesh.tensor=8"],
      "rules": base + ["--config.mesh.rules.embed=model"],
      "dry_run_fsdp_tp": ["train", "--config", "configs/fsdp_tp.py", "--workdir", str(tmp_path / "d"), "--dry-run"],
  }})
  assert out["dry_run_fsdp_tp"]["code"] == 0, out["dry_run_fsdp_tp"]
  for name, needle in (("not_dividing", "cannot be split"), ("batch", "not divisible by the 8 batch shards"),
                       ("heads", "heads dimension (2) is not divisible by mesh axes tensor=8"),
                       ("rules", "unknown mesh axis")):
    r = out[name]
    assert r["code"] == 2 and r["stderr"].count("\n") == 1 and needle in r["stderr"], (name, r)
  assert not (tmp_path / "w").exists()


def test_launch_scripts_parse():
  for name in ("local_multiprocess.sh", "tpu_vm.sh", "slurm_gpu.sbatch"):
    r = subprocess.run(["bash", "-n", os.path.join(ROOT, "launch", name)], capture_output=True, text=True)
    assert r.returncode == 0, (name, r.stderr)
    r = subprocess.run(["bash", os.path.join(ROOT, "launch", name)], capture_output=True, text=True,
                       env=dict(os.environ, PATH=os.environ["PATH"]))
    assert r.returncode == 2, (name, r.stderr)  # no arguments: usage, exit 2


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_match_one_and_resume(tmp_path):
  """The launch script itself: 2 processes x 4 CPU devices joined by jax.distributed on 127.0.0.1."""
  eight = _run_8({"train": {"dp8": {"workdir": str(tmp_path / "dp8"), "common": COMMON,
                                    "legs": [{"overrides": _mesh_overrides((8, 1, 1))}]}}})["dp8"]
  w = str(tmp_path / "mp")
  script = os.path.join(ROOT, "launch", "local_multiprocess.sh")
  args = ["train", "--config", "configs/tiny.py", "--workdir", w, "--no-progress"] + \
      [f"--config.{k}={v}" for k, v in COMMON]
  env = dict(os.environ, DNAJAX=os.path.join(os.path.dirname(sys.executable), "dnajax"))
  for extra in (["--stop-at", "3"], []):
    r = subprocess.run(["bash", script, "2", "--devices-per-process", "4", "--port", str(_free_port())] + args + extra,
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
  assert "resumed from checkpoint step 3" in r.stderr
  records = map(json.loads, open(os.path.join(w, "metrics.jsonl")))
  losses = [x["train/mlm_cross_entropy"] for x in records if x["split"] == "train"]
  np.testing.assert_allclose(losses, eight, rtol=1e-5)
