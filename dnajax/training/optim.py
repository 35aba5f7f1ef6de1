"""The optimiser: AdamW with linear warm-up and cosine decay, global-norm clipping; no decay on vectors."""

from __future__ import annotations

import jax
import optax


def schedule(lr: float, warmup_steps: int, total_steps: int, end_fraction: float = 0.1) -> optax.Schedule:
  """Learning rate per step: linear warm-up from 0 to `lr`, then cosine decay (Loshchilov and Hutter 2017) to
  `lr * end_fraction` at `total_steps`."""
  warmup_steps = max(0, min(warmup_steps, total_steps - 1))
  return optax.warmup_cosine_decay_schedule(0.0, lr, warmup_steps, max(total_steps, warmup_steps + 1),
                                            end_value=lr * end_fraction)


def make_optimizer(opt_cfg, total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """(AdamW (Loshchilov and Hutter 2019) with global-norm clipping when `opt.clip_norm` > 0 and weight decay on
  matrices only, its learning-rate schedule) from the `opt` config group."""
  sched = schedule(opt_cfg.learning_rate, opt_cfg.warmup_steps, total_steps, opt_cfg.end_lr_fraction)
  decay_mask = lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)
  parts = []
  if opt_cfg.clip_norm and opt_cfg.clip_norm > 0:
    parts.append(optax.clip_by_global_norm(opt_cfg.clip_norm))
  parts.append(optax.adamw(sched, b1=opt_cfg.b1, b2=opt_cfg.b2, eps=1e-8, weight_decay=opt_cfg.weight_decay,
                           mask=decay_mask))
  return optax.chain(*parts), sched
