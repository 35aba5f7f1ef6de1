import json

import pytest

from dnajax import config
from dnajax.errors import UserError


def test_overrides_and_types():
  c = config.load("configs/default.py", [("model.num_layers", "2"), ("opt.learning_rate", "1e-3"),
                                         ("data.reverse_complement", "true"), ("data.sources", "a.fa,b.fa")])
  assert c.model.num_layers == 2 and c.opt.learning_rate == 1e-3 and c.data.reverse_complement is True
  assert c.data.sources == ("a.fa", "b.fa")


@pytest.mark.parametrize("key,value,needle", [("model.num_layer", "2", "unknown config key"),
                                              ("modl.num_layers", "2", "unknown config group"),
                                              ("model.num_layers", "two", "expected an integer")])
def test_bad_overrides(key, value, needle):
  with pytest.raises(UserError, match=needle):
    config.load("configs/default.py", [(key, value)])


def test_every_config_loads_and_round_trips():
  for name in ("default", "tiny", "seed", "small", "base", "large"):
    c = config.load(name)
    assert config.from_json(config.to_json(c)).to_dict() == c.to_dict()


def test_seed_config_is_the_prototype():
  c = config.load("configs/seed.py")
  assert (c.model.d_model, c.model.num_heads, c.model.num_layers, c.model.dropout) == (32, 4, 2, 0.02)
  assert (c.data.mask_rate, c.data.val_fraction, c.data.seq_len, c.train.global_batch) == (0.3, 0.2, 128, 64)
  assert c.opt.learning_rate == 1e-3 and c.data.sources == ("synthetic:iid",)


def test_missing_config_file():
  with pytest.raises(UserError, match="no such file"):
    config.load("configs/nope.py")


def test_older_saved_configs_gain_new_keys():
  saved = config.load("configs/tiny.py").to_dict()
  del saved["mesh"]["rules"], saved["model"]["remat"]
  c = config.from_json(json.dumps(saved))
  assert c.mesh.rules.embed == "fsdp" and c.model.remat == "none" and c.model.d_model == 32


def test_shipped_configs_by_name_from_any_directory(tmp_path, monkeypatch):
  """configs/ installs as dnajax.configs: `--config cpu` and `--config configs/cpu.py` work anywhere, and the
  distribution claims no top-level `configs` package."""
  import importlib.metadata

  monkeypatch.chdir(tmp_path)
  assert {"default", "tiny", "cpu", "cds", "small"} <= set(config.shipped())
  assert config.load("cpu").to_dict() == config.load("configs/cpu.py").to_dict()
  top = importlib.metadata.distribution("dnajax").read_text("top_level.txt").split()
  assert top == ["dnajax"]
  with pytest.raises(UserError, match="no such shipped config"):
    config.load("nope")
