"""A run directory's layout, known here alone: every other module opens runs, reads and writes their files through
this one (tests/test_layers.py checks that no other module names them). It sits in the data layer, the lowest that
writes files whole or not at all (`writers`), so every layer that opens a run can use it.

A pretraining run (`dnajax train --workdir W`):
  W/config.json            the config it trains (written once it is sure to train)
  W/checkpoints/<step>/    orbax checkpoints (or `ckpt.dir`, which may be gs://...)
  W/corpus/                the prepared corpus (dnajax.data.corpus owns its files)
  W/metrics.jsonl, W/tensorboard/
A fine-tuning (`dnajax finetune --output FT`):
  FT/config.json           the base run's config with the `finetune` group
  FT/finetune.json         settings, base run (workdir, step, model), label coding, per-seed results, summary
  FT/train_sequences.txt   the training rows' sequences, one per line (`design` measures distances to them)
  FT/seed_K/               checkpoints/, best/, metrics.jsonl, tensorboard/, result.json (trees: trees.pkl)

An imported run (`dnajax import`, and the models shipped with dnajax) is a pretraining run whose one checkpoint holds
the parameters only, marked by W/imported.json: every verb reads it, training cannot resume it.
Shipped models live in the package (SHIPPED/<name>/, listed in SHIPPED/models.json); a --workdir that names no
existing path but a shipped model opens that model (`resolve`).

`kind(path)` says which a directory is; `pretraining(path)` and `finetuning(path)` open one, refusing the other kind
in one line that names the command to use.
"""

from __future__ import annotations

import json
import os

from dnajax import checkpoint
from dnajax import config as config_lib
from dnajax.data import writers
from dnajax.errors import UserError, warn

CONFIG = "config.json"
CHECKPOINTS = "checkpoints"
CORPUS = "corpus"
METRICS = "metrics.jsonl"
TENSORBOARD = "tensorboard"
FINETUNE = "finetune.json"
TRAIN_SEQUENCES = "train_sequences.txt"
RESULT = "result.json"
PRETRAINING, FINETUNING = "pretraining", "finetuning"
IMPORTED = "imported.json"  # the mark of an imported run: where it came from
SWEEP_RUN, TRAIN_LOG = "sweep_run.json", "train.log"  # a sweep's record of one of its runs, and that run's output
SHIPPED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "shipped")
SHIPPED_CATALOG = os.path.join(SHIPPED, "models.json")


def shipped_models() -> list[dict]:
  """The models shipped with dnajax (SHIPPED/models.json): one dict each with at least name, kind (cds or genome),
  trained_on, licence, command, parameters and the numbers beside their baselines; [] when none is installed."""
  if not os.path.isfile(SHIPPED_CATALOG):
    return []
  with open(SHIPPED_CATALOG) as f:
    return json.load(f)


def check_new(path: str, flag: str) -> None:
  """UserError when a run directory to be created at `path` would take a shipped model's name (a later `--workdir
  NAME` would then open it instead of the shipped model), or `path` is empty."""
  if not path:
    raise UserError(f"{flag} is empty; pass a directory")
  if not os.path.exists(path) and resolve(path) != path:
    raise UserError(f"{flag} {path}: the name of a shipped model (`dnajax models`); a run created here would hide it "
                    f"from later commands; pass another name (or ./{path} to mean this folder)")


def imported(path: str) -> bool:
  """Whether `path` is an imported run (parameters only: it can be read and fine-tuned, not resumed)."""
  return os.path.isfile(os.path.join(path, IMPORTED))


def write_imported(path: str, source: dict) -> None:
  """PATH/imported.json: `source` (the exported folder and the step it holds), the mark of an imported run."""
  writers.atomic_write_text(os.path.join(path, IMPORTED), json.dumps(source, indent=1) + "\n")


def resolve(path: str) -> str:
  """`path` itself when it exists (or names no shipped model), else the directory of the shipped model it names. A
  folder in the working directory named like a shipped model wins, said once on stderr."""
  if not path or os.sep in path or (os.altsep and os.altsep in path) or path in (".", ".."):
    return path
  shipped = os.path.join(SHIPPED, path)
  if not os.path.isfile(os.path.join(shipped, CONFIG)):
    return path
  if os.path.exists(path):
    if path not in _SHADOWED:
      _SHADOWED.add(path)
      warn(f"--workdir {path}: using the folder ./{path} here, not the shipped model of that name")
    return path
  return shipped


_SHADOWED: set[str] = set()


def kind(path: str) -> str | None:
  """"finetuning" (a directory holding finetune.json), "pretraining" (holding config.json) or None."""
  if os.path.isfile(os.path.join(path, FINETUNE)):
    return FINETUNING
  return PRETRAINING if os.path.isfile(os.path.join(path, CONFIG)) else None


def corpus_dir(path: str) -> str:
  """The prepared corpus of a pretraining run (dnajax.data.corpus reads and writes its files)."""
  return os.path.join(path, CORPUS)


def metrics_file(path: str) -> str:
  """The metrics.jsonl of a run (or of one seed folder of a fine-tuning)."""
  return os.path.join(path, METRICS)


def tensorboard_dir(path: str) -> str:
  """The TensorBoard event folder of a run (or of one seed folder)."""
  return os.path.join(path, TENSORBOARD)


def checkpoints_dir(path: str, cfg) -> str:
  """Where a pretraining run with config `cfg` keeps its checkpoints: `ckpt.dir` when set (may be gs://...), else
  PATH/checkpoints."""
  return cfg.ckpt.dir or os.path.join(path, CHECKPOINTS)


def read_config(path: str):
  """The ConfigDict saved in a run directory's config.json; None when it has none. UserError when unreadable."""
  file = os.path.join(path, CONFIG)
  if not os.path.isfile(file):
    return None
  with open(file) as f:
    return config_lib.from_json(f.read())


def write_config(path: str, cfg) -> None:
  """PATH/config.json, written whole or not at all (callers write from the main process only)."""
  writers.atomic_write_text(os.path.join(path, CONFIG), config_lib.to_json(cfg))


def reference(path: str) -> str:
  """How to record a run so that it opens again later from anywhere: a shipped model's name as it is, else the
  absolute path."""
  return path if resolve(path) != path else os.path.abspath(path)


def pretraining(path: str, flag: str = "--workdir"):
  """The config of the pretraining run at `path` (a directory, or the name of a shipped model: `resolve`). UserError
  for a fine-tuning directory (naming its base run and `predict`) or a directory that is not a run."""
  if kind(path) == FINETUNING:
    try:
      base = read_info(path)["base"]["workdir"]
    except (UserError, KeyError, TypeError):
      base = "the run it started from"
    raise UserError(f"{path}: a fine-tuning directory; this command takes a pretraining run's {flag} ({base}); a "
                    f"fine-tuned model is applied with `dnajax predict --workdir {path}`")
  cfg = read_config(resolve(path))
  if cfg is None:
    what = ("does not exist" if not os.path.exists(path) else "a file, not a run directory"
            if not os.path.isdir(path) else f"not a dnajax workdir (no {CONFIG})")
    names = ", ".join(m["name"] for m in shipped_models())
    raise UserError(f"{path}: {what}; pass the {flag} of a training run"
                    + (f" or a shipped model ({names}; `dnajax models`)" if names else ""))
  return cfg


def read_info(path: str) -> dict:
  """The parsed finetune.json of a fine-tuning directory; UserError when `path` is a file, or finetune.json is
  missing or unreadable."""
  if os.path.exists(path) and not os.path.isdir(path):
    raise UserError(f"{path}: a file, not a fine-tuning directory; pass the --output directory of `dnajax finetune`")
  file = os.path.join(path, FINETUNE)
  try:
    with open(file) as f:
      return json.load(f)
  except FileNotFoundError:
    raise UserError(f"{path}: not a fine-tuning directory (no {FINETUNE}); pass the --output of `dnajax "
                    "finetune`") from None
  except (OSError, ValueError) as e:
    raise UserError(f"{file}: cannot be read ({e}); the fine-tuning directory is damaged") from None


def finetuning(path: str):
  """(config, finetune.json) of the fine-tuning directory at `path`; UserError as `read_info`."""
  info = read_info(path)
  return read_config(path), info


def write_info(path: str, text: str) -> None:
  """PATH/finetune.json (`text`: its JSON, from render.to_json), written whole or not at all."""
  writers.atomic_write_text(os.path.join(path, FINETUNE), text)


def write_training_sequences(path: str, seqs: list[str]) -> None:
  """PATH/train_sequences.txt: one sequence per line, in the training table's order."""
  writers.atomic_write_text(os.path.join(path, TRAIN_SEQUENCES), "".join(s + "\n" for s in seqs))


def read_training_sequences(path: str) -> list[str] | None:
  """The sequences a fine-tuning was trained on (upper-case letters, training-table order), or None for a directory
  written before they were kept."""
  file = os.path.join(path, TRAIN_SEQUENCES)
  if not os.path.isfile(file):
    return None
  with open(file) as f:
    return [line.strip() for line in f if line.strip()]


def seed_dir(path: str, seed: int) -> str:
  """The folder of one seed of a fine-tuning."""
  return os.path.join(path, f"seed_{seed}")


def read_result(seed_path: str) -> dict | None:
  """The result.json of a finished seed folder, or None when the seed has not finished."""
  file = os.path.join(seed_path, RESULT)
  if not os.path.isfile(file):
    return None
  with open(file) as f:
    return json.load(f)


def write_result(seed_path: str, text: str) -> None:
  """SEED/result.json (`text`: its JSON, from render.to_json), written whole or not at all: the mark of a finished
  seed."""
  writers.atomic_write_text(os.path.join(seed_path, RESULT), text)


def checkpointer(path: str, cfg=None, *, best: bool = False, create: bool = False,
                 async_save: bool = False) -> checkpoint.Checkpointer:
  """The checkpoints of a pretraining run (`cfg` its config: ckpt.keep and ckpt.dir) or, without `cfg`, of one seed
  folder of a fine-tuning (its latest checkpoint, or with `best` its best validation one). UserError when `create` is
  False and they do not exist."""
  if cfg is not None:
    path = path if create else resolve(path)
    return checkpoint.Checkpointer(path, keep=cfg.ckpt.keep, async_save=async_save, create=create,
                                   directory=checkpoints_dir(path, cfg))
  return checkpoint.Checkpointer(path, keep=1, async_save=async_save, create=create,
                                 directory=os.path.join(path, "best" if best else CHECKPOINTS))


def read_sweep_run(path: str) -> dict:
  """The sweep's record of the run at `path` ({"wall_seconds": summed over its attempts, "attempts": n}); empty
  for a run the sweep has not started."""
  file = os.path.join(path, SWEEP_RUN)
  if not os.path.isfile(file):
    return {}
  with open(file) as f:
    return json.load(f)


def write_sweep_run(path: str, record: dict) -> None:
  """PATH/sweep_run.json, written whole or not at all."""
  writers.atomic_write_text(os.path.join(path, SWEEP_RUN), json.dumps(record, indent=1) + "\n")


def train_log(path: str) -> str:
  """The file a sweep sends one run's `dnajax train` output to."""
  return os.path.join(path, TRAIN_LOG)
