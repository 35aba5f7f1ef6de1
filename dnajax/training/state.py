"""The train state: a plain dict {step, params, opt_state} of arrays - what orbax saves and any mesh restores -
created directly sharded (abstract shapes -> shardings from the logical axis names -> jit with out_shardings), so
full parameters are never built on one device first."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from dnajax import sharding
from dnajax.model import encoder


def create_state(mcfg: encoder.ModelConfig, tx: optax.GradientTransformation, seed: int) -> dict:
  """{"step": int32 scalar 0, "params": float32 pure dict, "opt_state": the optimizer's state for them}."""
  params = encoder.init_params(mcfg, seed)
  return {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params)}


def state_shardings(mcfg: encoder.ModelConfig, tx: optax.GradientTransformation, mesh, rules, seed: int = 0):
  """(abstract state with shardings, its NamedShardings): parameters by their logical axes, optimizer moments like
  their parameters, everything else replicated. Raises UserError when a parameter dimension does not divide over
  its mesh axes."""
  params = encoder.sharded_abstract_params(mcfg, mesh, rules)
  param_sh = jax.tree.map(lambda a: a.sharding, params)
  abstract = jax.eval_shape(functools.partial(create_state, mcfg, tx, seed))
  repl = sharding.replicated(mesh)
  opt_sh = optax.tree_map_params(tx, lambda _, s: s, abstract["opt_state"], param_sh,
                                 transform_non_params=lambda _: repl)
  shardings = {"step": repl, "params": param_sh, "opt_state": opt_sh}
  abstract = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
  return abstract, shardings
