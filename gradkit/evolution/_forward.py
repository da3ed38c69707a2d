# SPDX-License-Identifier: Apache-2.0
"""EGGROLL perturbed forward of Flax linen models, without materialising W + σE_i.

"Evolution Strategies at the Hyperscale" (EGGROLL, 2025, arXiv 2511.16652): with
E_i = A_i B_iᵀ/√r (W an m×n kernel, x a row vector), x(W + σE_i) = xW + (σ/√r)(xA_i)B_iᵀ,
so vmapped over members the x·W products become one shared GEMM plus cheap rank-r
products per member (the paper's batched low-rank forward, like multi-LoRA serving). Every
``nn.Dense`` and ``nn.Embed`` (lookup and ``attend``) is intercepted with
``nn.intercept_methods``; other layers fall back to materialising their perturbed weights
(exact, but a full matrix per member).
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gradkit import _common
from gradkit.evolution import _config
from gradkit.evolution import _noise
from gradkit.evolution import _perturb
from gradkit.evolution import _stored_noise
from gradkit.evolution._config import EggrollKey
from gradkit.evolution._noise import LowRankFactors

_ParamPath = tuple[str, ...]


def _dict_path(path) -> _ParamPath | None:
    names = []
    for entry in path:
        if not isinstance(entry, jax.tree_util.DictKey):
            return None
        names.append(str(entry.key))
    return tuple(names)


def _known_layer(module: nn.Module, method: str) -> str | None:
    """The name of the param a known layer's method uses as a matrix (or None)."""
    if isinstance(module, nn.Dense) and method == "__call__":
        return "kernel"
    if isinstance(module, nn.Embed) and method in ("__call__", "attend"):
        return "embedding"
    return None


def intercepted_paths(model, params, lowrank_paths, args, kwargs, method, variables):
    """Runs an abstract pass to list the low-rank leaves used only by known layers."""
    handled = set()

    def spy(next_fun, a, kw, context):
        mod = context.module
        name = _known_layer(mod, context.method_name)
        if name is not None:
            handled.add((*mod.path, name))
        return next_fun(*a, **kw)

    def run(p):
        with nn.intercept_methods(spy):
            return model.apply({**variables, "params": p}, *args, method=method, **kwargs)

    jax.eval_shape(run, params)
    return {p for p in lowrank_paths if p in handled}


def eggroll_apply_member(
    model: nn.Module, params: Any, key: EggrollKey, member: jax.Array, *args: Any,
    noise: list | None = None, variables: dict | None = None, method: Any = None,
    **kwargs: Any,
) -> Any:
    """Evaluates a Flax linen model at member i's perturbation without materialising it.

    ``nn.Dense`` layers compute ``x·W + b + (σ s_i/√r)·(x·A)·Bᵀ`` and ``nn.Embed``
    looks up ``W[t] + (σ s_i/√r)·A[t]·Bᵀ`` (``attend`` likewise), with the unperturbed W.
    Dense-noise leaves (biases, scales) are materialised (they are small); low-rank
    leaves of layers this function does not know (Conv, DenseGeneral, custom modules)
    are materialised as W + σE too, which is exact but costs a full matrix per member.
    Vmapping this over members turns every x·W into one shared GEMM.

    Args:
      model: a linen module.
      params: the ``"params"`` collection (the tree the optimizer updates).
      key: the step's :class:`EggrollKey` (:func:`eggroll_current_key`), carrying σ and
        the transform's settings.
      member: member index (traced under vmap).
      *args, **kwargs: the model's inputs.
      noise: optional pre-generated :func:`eggroll_sample_noise` of the population;
        otherwise the member's factors are generated here, inside the forward.
      variables: other collections (e.g. ``batch_stats``), unperturbed.
      method: the model method to apply (default ``__call__``).

    Returns:
      The model's output for member i; equals ``model.apply({"params":
      eggroll_perturb(params, key, member)}, ...)`` to float tolerance (tested).
    """
    key = _config.check_key(key, "eggroll_apply_member")
    index, sign = _config.noise_index_and_sign(member, key.config.antithetic)
    rows = _noise.member_rows(params, key, index, noise)
    return _apply_rows(model, params, key, rows, sign, args, kwargs, variables, method)


def _apply_rows(model, params, key, rows, sign, args, kwargs, variables, method):
    """The model at W + σ·sign·E for the given noise rows (one noise index)."""
    config = key.config
    variables = {} if variables is None else dict(variables)
    paths, leaves, kind_leaves, treedef = _config.flat_leaves(params, config.kinds)
    dict_paths = [_dict_path(p) for p in paths]
    lowrank = {dp for dp, kd in zip(dict_paths, kind_leaves, strict=True) if kd == "lowrank" and dp}
    handled = intercepted_paths(model, params, lowrank, args, kwargs, method, variables)

    factors: dict[_ParamPath, LowRankFactors] = {}
    new = []
    for dp, leaf, kind, row in zip(dict_paths, leaves, kind_leaves, rows, strict=True):
        if kind == "frozen":
            new.append(leaf)
        elif kind == "lowrank" and dp in handled:
            factors[dp] = row
            new.append(leaf)
        else:
            new.append(_perturb.perturbed_leaf(leaf, row, kind, key.sigma * sign, config.rank))
    member_params = jax.tree.unflatten(treedef, new)
    scale = key.sigma * sign / math.sqrt(config.rank)

    def interceptor(next_fun, a, kw, context):
        mod = context.module
        name = _known_layer(mod, context.method_name)
        if name is None:
            return next_fun(*a, **kw)
        f = factors.get((*mod.path, name))
        out = next_fun(*a, **kw)
        if f is None:
            return out
        x = a[0] if a else next(iter(kw.values()))
        if isinstance(mod, nn.Dense):
            low = ((x.astype(jnp.float32) @ f.a) @ f.b.T) * scale
        elif context.method_name == "attend":
            low = ((x.astype(jnp.float32) @ f.b) @ f.a.T) * scale
        else:  # Embed lookup.
            low = (jnp.take(f.a, x, axis=0) @ f.b.T) * scale
        return (out + low).astype(out.dtype)

    with nn.intercept_methods(interceptor):
        return model.apply({**variables, "params": member_params}, *args, method=method,
                           **kwargs)


def _pairs(x, num):
    return x.reshape(num, 2, *x.shape[1:])


def eggroll_population_apply(
    model: nn.Module, params: Any, key: EggrollKey, *args: Any, population_size: int,
    in_axes: Any = None, noise: list | None = None, variables: dict | None = None,
    method: Any = None,
) -> Any:
    """:func:`eggroll_apply_member` vmapped over all members (leading output axis N).

    The K = N/2 (antithetic) or N noise indices are generated once, vectorised, inside
    this function (so inside the caller's ``jax.jit``) and kept in memory for all the
    members that use them, unless `noise` is given.

    Args:
      model, params, key, variables, method: as in :func:`eggroll_apply_member`.
      *args: the model's inputs.
      population_size: N, the members evaluated (indices 0 … N−1).
      in_axes: ``None`` (every member sees the same `args`) or 0 (args have a leading
        population axis), or a tuple per positional arg as for ``jax.vmap``.
      noise: ``None`` draws the noise here; or pass a :func:`eggroll_sample_noise`
        result generated beforehand (e.g. outside the jitted forward).

    Returns:
      The model's outputs for members 0 … N−1, stacked on a leading axis.
    """
    key = _config.check_key(key, "eggroll_population_apply")
    population_size = _common.static_int("population_size", population_size)
    if noise is None:
        noise = _stored_noise.stored_noise(params, key, population_size)
    num = _config.num_noise(population_size, key.config.antithetic)
    rows_given = {t.shape[0] for t in jax.tree.leaves(noise)}
    if rows_given - {num}:
        raise ValueError(f"`noise` must have {num} rows (noise indices) for population_size="
                         f"{population_size}, got {sorted(rows_given)}.")
    axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
    if len(axes) != len(args):
        raise ValueError(f"`in_axes` has {len(axes)} entries for {len(args)} inputs.")

    def member_rows(rows, sign, *a):
        return _apply_rows(model, params, key, rows, sign, a, {}, variables, method)

    if not key.config.antithetic:
        return jax.vmap(member_rows, in_axes=(0, 0, *axes))(
            noise, jnp.ones([population_size], jnp.float32), *args)
    # Antithetic pairs: vmap over the K noise indices, then over the two signs sharing
    # that index's factors; no per-member copy of the noise rows.
    pair_args = [a if ax is None else _pairs(jnp.moveaxis(a, ax, 0), num)
                 for a, ax in zip(args, axes, strict=True)]
    pair_axes = tuple(None if ax is None else 0 for ax in axes)

    def pair(rows, *a):
        return jax.vmap(member_rows, in_axes=(None, 0, *pair_axes))(
            rows, jnp.asarray([1.0, -1.0], jnp.float32), *a)

    out = jax.vmap(pair, in_axes=(0, *pair_axes))(noise, *pair_args)
    return jax.tree.map(lambda t: t.reshape(population_size, *t.shape[2:]), out)
