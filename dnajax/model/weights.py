"""Trained encoder weights in a portable form: safetensors plus a JSON manifest, read back into a run directory.

`dnajax export --workdir W --output DIR` writes
  DIR/model.safetensors  every parameter of the masked-nucleotide encoder, float32, under its dnajax name
                         ("layer_0.qkv"), in dnajax's own shapes (safetensors: Hugging Face's format, no pickle);
  DIR/model.json         format and version, the model's hyperparameters, the token vocabulary, the window length,
                         each tensor's role, shape and dtype, the run it came from, and the whole run config;
  DIR/modeling_dnajax.py the same encoder in PyTorch (`dnajax.model.torch_encoder`, no JAX needed) that loads DIR.
`dnajax import --input DIR --workdir W` turns such a folder back into a run directory (config.json and one
checkpoint holding the parameters only, no optimizer state) that every verb taking --workdir reads as it reads the
run that was exported: export -> import -> export gives the same tensors, bit for bit. The package's shipped models
are run directories made this way (`dnajax.data.rundir.SHIPPED`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import tempfile

import jax
import numpy as np

from dnajax import checkpoint, sharding
from dnajax import config as config_lib
from dnajax.data import rundir, tokens, writers
from dnajax.errors import UserError
from dnajax.model import encoder

FORMAT, FORMAT_VERSION = "dnajax-encoder", 1
WEIGHTS, MANIFEST, TORCH_MODULE = "model.safetensors", "model.json", "modeling_dnajax.py"
SINGLE_DEVICE = {"data": 1, "fsdp": 1, "tensor": 1}

# Role of each tensor, by name pattern ({i}: block index). Shapes use D d_model, V vocabulary, N heads, H head dim,
# F d_ff, K 1 (GELU) or 2 (SwiGLU: gate, up), P max_len.
ROLES = (
    (r"embed", "token embedding [V, D]; row = token id (see `vocabulary`)"),
    (r"pos", "learned position embedding [P, D], added to the token embedding (pos_encoding=learned only)"),
    (r"layer_(\d+)\.ln_attn\.scale", "block {i}: layer-norm scale before attention [D] (eps 1e-6)"),
    (r"layer_(\d+)\.ln_attn\.bias", "block {i}: layer-norm bias before attention [D]"),
    (r"layer_(\d+)\.qkv", "block {i}: query/key/value projection [D, 3 (q, k, v), N, H]; no bias; RoPE (rotate-half, "
                          "base rope_base) on q and k after it; scores scaled by H^-0.5; PAD keys masked"),
    (r"layer_(\d+)\.out", "block {i}: attention output projection [N, H, D]; no bias; residual add"),
    (r"layer_(\d+)\.ln_mlp\.scale", "block {i}: layer-norm scale before the MLP [D] (eps 1e-6)"),
    (r"layer_(\d+)\.ln_mlp\.bias", "block {i}: layer-norm bias before the MLP [D]"),
    (r"layer_(\d+)\.w_in", "block {i}: MLP input projection [D, K, F]; K=1: GELU (tanh approximation); K=2: "
                           "SiLU(x W[:, 0]) * (x W[:, 1]) (SwiGLU); no bias"),
    (r"layer_(\d+)\.w_out", "block {i}: MLP output projection [F, D]; no bias; residual add"),
    (r"ln_final\.scale", "final layer-norm scale [D] (eps 1e-6)"),
    (r"ln_final\.bias", "final layer-norm bias [D]"),
    (r"head", "output projection [D, V] (absent when tie_embeddings: the transposed token embedding is used)"),
    (r"head_bias", "output bias [V]; log p(A, C, G, T) = log_softmax over the logits of ids A..T"),
)


def role(name: str) -> str:
  """The role of tensor `name` (as in model.safetensors); ValueError for a name the encoder does not have."""
  for pattern, text in ROLES:
    m = re.fullmatch(pattern, name)
    if m:
      return text.format(i=m.group(1)) if m.groups() else text
  raise ValueError(f"tensor {name!r} is not a parameter of dnajax's encoder")


def flatten(params: dict, prefix: str = "") -> dict[str, np.ndarray]:
  """{"layer_0.qkv": float32 array} of a nested parameter dict (the checkpoints' "params" tree)."""
  out = {}
  for key, value in params.items():
    name = f"{prefix}{key}"
    if isinstance(value, dict):
      out.update(flatten(value, name + "."))
    else:
      out[name] = np.asarray(jax.device_get(value), np.float32)
  return out


def unflatten(tensors: dict[str, np.ndarray]) -> dict:
  """The nested parameter dict of `flatten`'s output."""
  out: dict = {}
  for name, value in tensors.items():
    *parents, leaf = name.split(".")
    node = out
    for p in parents:
      node = node.setdefault(p, {})
    node[leaf] = value
  return out


def read_params(workdir: str, step: int | None = None) -> tuple[object, int, dict[str, np.ndarray]]:
  """(run config, checkpoint step, {name: float32 array}) of a pretraining run's parameters (default: the latest
  step), gathered to this host. UserError as `rundir.pretraining` and the checkpoint's restore."""
  cfg = rundir.pretraining(workdir)
  mcfg = encoder.config_from(cfg.model.to_dict())
  mesh = sharding.make_mesh(SINGLE_DEVICE, jax.local_devices()[:1])
  ckpt = rundir.checkpointer(workdir, cfg)
  try:
    step = ckpt.resolve_step(step)
    params = ckpt.restore_params(step, encoder.sharded_abstract_params(
        mcfg, mesh, sharding.rules_from_config(cfg.mesh.rules)))
  finally:
    ckpt.close()
  return cfg, step, flatten(params)


def manifest(cfg, step: int, tensors: dict[str, np.ndarray], source: str) -> dict:
  """model.json's content for the parameters `tensors` of the run with config `cfg` at `step`."""
  return {
      "format": FORMAT, "format_version": FORMAT_VERSION,
      "model": dataclasses.asdict(encoder.config_from(cfg.model.to_dict())),
      "vocabulary": {"size": tokens.VOCAB_SIZE, "ids": {"PAD": tokens.PAD, "MASK": tokens.MASK, "A": tokens.A,
                                                        "C": tokens.C, "G": tokens.G, "T": tokens.T, "N": tokens.N},
                     "letters": "".join(tokens.ID_TO_CHAR), "U": "read as T", "IUPAC ambiguity codes": "read as N"},
      "window": int(cfg.data.seq_len), "coding_sequences": bool(cfg.data.cds),
      "source": {"workdir": source, "step": int(step)},
      "tensors": {n: {"shape": list(a.shape), "dtype": "float32", "role": role(n)} for n, a in sorted(tensors.items())},
      "run_config": json.loads(config_lib.to_json(cfg)),
  }


def num_parameters(info: dict) -> int:
  """The number of scalars in the tensors a manifest (model.json) lists."""
  return sum(math.prod(t["shape"]) for t in info["tensors"].values())


def export(workdir: str, output: str, step: int | None = None) -> dict:
  """Write OUTPUT/model.safetensors, model.json and modeling_dnajax.py for the pretraining run at `workdir`, all or
  none; returns the manifest. UserError for a run that cannot be read or an output that cannot be written."""
  from safetensors.numpy import save

  cfg, step, tensors = read_params(workdir, step)
  info = manifest(cfg, step, tensors, workdir)
  with open(os.path.join(os.path.dirname(__file__), "torch_encoder.py")) as f:
    torch_module = f.read()
  writers.write_all([("--output", os.path.join(output, WEIGHTS), save(tensors, metadata={"format": FORMAT})),
                     ("--output", os.path.join(output, MANIFEST), json.dumps(info, indent=1) + "\n"),
                     ("--output", os.path.join(output, TORCH_MODULE), torch_module)])
  return info


def _manifest_problem(info) -> str | None:
  """What is wrong with a parsed model.json (None when its keys have the types this version reads)."""
  if not isinstance(info, dict) or info.get("format") != FORMAT:
    found = info.get("format") if isinstance(info, dict) else None
    return f"not a dnajax export (format {found!r}, not {FORMAT!r})"
  version = info.get("format_version")
  if not isinstance(version, int) or isinstance(version, bool):
    return f"format_version {version!r} is not an integer"
  if version > FORMAT_VERSION:
    return f"format version {version}, newer than this dnajax reads ({FORMAT_VERSION}); upgrade dnajax"
  for key in ("model", "tensors", "run_config"):
    if not isinstance(info.get(key), dict):
      return f"no {key!r} object"
  if not isinstance(info["run_config"].get("model"), dict):
    return "run_config has no 'model' object"
  differ = [k for k in checkpoint.SHAPE_KEYS if info["model"].get(k) != info["run_config"]["model"].get(k)]
  if differ:
    k = differ[0]
    return f"model.{k} is {info['model'].get(k)!r} but run_config.model.{k} is {info['run_config']['model'].get(k)!r}"
  return None


def read_export(path: str) -> tuple[dict, dict[str, np.ndarray]]:
  """(manifest, {name: float32 array}) of an exported folder, checked against the encoder its manifest describes:
  every tensor present with its shape, float32 and finite, none extra. UserError naming the file and what is
  wrong."""
  from safetensors import SafetensorError
  from safetensors.numpy import load_file

  if not os.path.isdir(path):
    raise UserError(f"{path}: {'does not exist' if not os.path.exists(path) else 'not a folder'}; pass the --output "
                    "folder of `dnajax export`")
  for name in (MANIFEST, WEIGHTS):
    if not os.path.isfile(os.path.join(path, name)):
      raise UserError(f"{path}: no {name}; pass the --output folder of `dnajax export`")
  manifest_file, weights_file = os.path.join(path, MANIFEST), os.path.join(path, WEIGHTS)
  try:
    with open(manifest_file) as f:
      info = json.load(f)
  except (OSError, ValueError) as e:
    raise UserError(f"{manifest_file}: cannot be read ({str(e).splitlines()[0][:160]}); export the run again") from None
  problem = _manifest_problem(info)
  if problem:
    raise UserError(f"{manifest_file}: {problem}; pass the --output folder of `dnajax export`")
  try:
    tensors = load_file(weights_file)
  except (OSError, ValueError, SafetensorError) as e:
    raise UserError(f"{weights_file}: cannot be read ({str(e).splitlines()[0][:160]}); export the run again") from None
  mcfg = encoder.config_from(info["run_config"]["model"])
  want = checkpoint.param_shapes(jax.eval_shape(lambda: encoder.init_params(mcfg, 0)))
  have = {n.replace(".", "/"): tuple(a.shape) for n, a in tensors.items()}
  for name in sorted(want.keys() | have.keys()):
    if want.get(name) != have.get(name):
      raise UserError(f"{weights_file}: tensor {name.replace('/', '.')} is "
                      f"{'absent' if name not in have else f'of shape {have[name]}'}, the model in {MANIFEST} needs "
                      f"{'none' if name not in want else f'shape {want[name]}'}; export the run again")
  for name, a in sorted(tensors.items()):
    if a.dtype != np.float32 or not np.isfinite(a).all():
      what = f"of dtype {a.dtype}, not float32" if a.dtype != np.float32 else "holds NaN or infinite values"
      raise UserError(f"{weights_file}: tensor {name} {what}; export the run again")
  return info, tensors


def import_run(path: str, workdir: str) -> dict:
  """A run directory at `workdir` (config.json and one parameters-only checkpoint at the exported step) from the
  exported folder `path`, written whole (in a temporary sibling renamed at the end) or not at all; returns the
  manifest. UserError for an unreadable export or a `workdir` that already exists and is not empty."""
  rundir.check_new(workdir, "--workdir")
  info, tensors = read_export(path)
  if os.path.exists(workdir) and (not os.path.isdir(workdir) or os.listdir(workdir)):
    raise UserError(f"{workdir}: already exists{'' if os.path.isdir(workdir) else ' (a file)'}; import into a new "
                    "--workdir")
  cfg = config_lib.from_json(json.dumps(info["run_config"]))
  cfg.ckpt.dir = ""  # the checkpoint lives in the new run directory
  source = info.get("source") if isinstance(info.get("source"), dict) else {}
  step = int(source.get("step", 0)) if str(source.get("step", 0)).isdigit() else 0
  parent = os.path.dirname(os.path.abspath(workdir))
  try:
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(workdir))}.", dir=parent)
  except OSError as e:
    raise UserError(f"--workdir {workdir}: cannot be created ({e.strerror}); pass a directory you can write") from None
  try:
    rundir.write_config(tmp, cfg)
    ckpt = rundir.checkpointer(tmp, cfg, create=True)
    meta = {"step": step, "config": json.loads(config_lib.to_json(cfg))}
    rundir.write_imported(tmp, {"exported_from": source, "format": FORMAT,
                                "format_version": info.get("format_version")})
    ckpt.save(step, {"params": jax.tree.map(jax.numpy.asarray, unflatten(tensors))}, meta, force=True)
    ckpt.close()
    if os.path.isdir(workdir):
      os.rmdir(workdir)  # empty (checked above)
    os.rename(tmp, workdir)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return info
