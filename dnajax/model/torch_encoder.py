"""dnajax's masked-nucleotide encoder in PyTorch, for the weights `dnajax export` writes (no JAX, no dnajax).

`dnajax export` copies this file beside the weights as `modeling_dnajax.py`, so an exported folder is usable with
PyTorch and safetensors alone:

    from modeling_dnajax import DnajaxEncoder
    model = DnajaxEncoder.from_exported("DIR")          # DIR: the --output of `dnajax export`
    ids = model.encode(["ACGT?ACGTTGCA"])               # int64[B, L]; '?' is the mask token
    logp = model.base_log_probs(ids)                    # float32[B, L, 4]: log p(A, C, G, T) at every position

It computes what dnajax computes, in float32 (tested against dnajax's log-probabilities to 1e-5): token embedding
(+ learned positions), pre-LayerNorm blocks (eps 1e-6) of multi-head attention with rotary position embeddings
(Su et al. 2021, rotate-half form) and padding keys masked, a GELU (tanh approximation) or SwiGLU MLP, a final
LayerNorm and the vocabulary projection. Tensor names and shapes are dnajax's, listed with their roles in model.json.
"""

from __future__ import annotations

import json
import os

import torch
from torch import nn
from torch.nn import functional as F

PAD, MASK, A, T, N = 0, 1, 2, 5, 6
_IDS = {"A": 2, "C": 3, "G": 4, "T": 5, "U": 5, "?": MASK, **{c: N for c in "RYSWKMBDHVN"}}


def _layer_norm(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
  return F.layer_norm(x, x.shape[-1:], scale, bias, eps=1e-6)


def _rope(x_BxLxNxH: torch.Tensor, base: float) -> torch.Tensor:
  L, H = x_BxLxNxH.shape[1], x_BxLxNxH.shape[-1]
  inv_freq = base ** (-torch.arange(0, H, 2, dtype=torch.float32) / H)
  angles = torch.arange(L, dtype=torch.float32)[:, None] * inv_freq[None, :]
  cos = torch.cat([torch.cos(angles)] * 2, -1)[None, :, None, :]
  sin = torch.cat([-torch.sin(angles), torch.sin(angles)], -1)[None, :, None, :]
  return x_BxLxNxH * cos + torch.roll(x_BxLxNxH, H // 2, dims=-1) * sin


class DnajaxEncoder(nn.Module):
  """The encoder of an exported dnajax run. `forward(ids int64[B, L]) -> logits float32[B, L, V]`; PAD (0) positions
  are masked out of attention as keys; L at most `window` (ValueError beyond it).

  Args: `config` the "model" object of model.json; `tensors` {name: tensor} as in model.safetensors;
  `window` the training window length (model.json "window"; None: no limit)."""

  def __init__(self, config: dict, tensors: dict[str, torch.Tensor], window: int | None = None):
    super().__init__()
    self.config, self.window = dict(config), window
    self.weights = nn.ParameterDict({k.replace(".", "__"): nn.Parameter(v.float(), requires_grad=False)
                                     for k, v in tensors.items()})

  @classmethod
  def from_exported(cls, path: str) -> DnajaxEncoder:
    """The model of the folder `dnajax export --output PATH` wrote."""
    from safetensors.torch import load_file

    with open(os.path.join(path, "model.json")) as f:
      manifest = json.load(f)
    return cls(manifest["model"], load_file(os.path.join(path, "model.safetensors")),
               manifest.get("window"))

  def _w(self, name: str) -> torch.Tensor:
    return self.weights[name.replace(".", "__")]

  @staticmethod
  def encode(sequences: list[str]) -> torch.Tensor:
    """Letters -> token ids int64[B, L] (A, C, G, T, U as T, '?' the mask token, IUPAC ambiguity codes as N), padded
    with PAD to the longest sequence. ValueError for any other character."""
    L = max((len(s) for s in sequences), default=0)
    out = torch.zeros((len(sequences), L), dtype=torch.int64)
    for i, s in enumerate(sequences):
      bad = next((ch for ch in s if ch.upper() not in _IDS), None)
      if bad is not None:
        raise ValueError(f"sequence {i}: {bad!r} is not a nucleotide letter (A, C, G, T, U, IUPAC codes, '?')")
      out[i, :len(s)] = torch.tensor([_IDS[ch.upper()] for ch in s], dtype=torch.int64)
    return out

  def hidden_states(self, ids_BxL: torch.Tensor) -> torch.Tensor:
    """The final normalised hidden states float32[B, L, D] (what dnajax's `embed` reads with --layer -1)."""
    c = self.config
    N, D = c["num_heads"], c["d_model"]
    H = D // N
    B, L = ids_BxL.shape
    if self.window and L > self.window:
      raise ValueError(f"{L} positions: the model was trained on windows of {self.window}; longer sequences give "
                       "other predictions than dnajax, which reads them in overlapping windows - split them")
    keep_Bx1x1xL = (ids_BxL != PAD)[:, None, None, :]
    x = self._w("embed")[ids_BxL]
    if c["pos_encoding"] == "learned":
      x = x + self._w("pos")[:L][None]
    for i in range(c["num_layers"]):
      p = f"layer_{i}."
      h = _layer_norm(x, self._w(p + "ln_attn.scale"), self._w(p + "ln_attn.bias"))
      q, k, v = torch.einsum("bld,dtnh->tblnh", h, self._w(p + "qkv"))
      if c["pos_encoding"] == "rope":
        q, k = _rope(q, c["rope_base"]), _rope(k, c["rope_base"])
      scores = torch.einsum("bqnh,bknh->bnqk", q * H ** -0.5, k).masked_fill(~keep_Bx1x1xL, -1e9)
      a = torch.einsum("bnqk,bknh->bqnh", torch.softmax(scores, -1), v)
      x = x + torch.einsum("blnh,nhd->bld", a, self._w(p + "out"))
      h = _layer_norm(x, self._w(p + "ln_mlp.scale"), self._w(p + "ln_mlp.bias"))
      pre = torch.einsum("bld,dkf->kblf", h, self._w(p + "w_in"))
      u = F.silu(pre[0]) * pre[1] if c["mlp"] == "swiglu" else F.gelu(pre[0], approximate="tanh")
      x = x + u @ self._w(p + "w_out")
    return _layer_norm(x, self._w("ln_final.scale"), self._w("ln_final.bias"))

  def forward(self, ids_BxL: torch.Tensor) -> torch.Tensor:
    head = self._w("embed").T if self.config["tie_embeddings"] else self._w("head")
    return self.hidden_states(ids_BxL) @ head + self._w("head_bias")

  def base_log_probs(self, ids_BxL: torch.Tensor) -> torch.Tensor:
    """log p(A, C, G, T), renormalised over the four bases, float32[B, L, 4] (dnajax's `Engine.log_probs`)."""
    with torch.no_grad():
      return torch.log_softmax(self.forward(ids_BxL)[..., A:T + 1], -1)

