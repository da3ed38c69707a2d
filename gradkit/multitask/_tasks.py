"""Shared helpers for transforms over stacked gradients (a leading task/sample axis)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def _describe(tree: Any) -> str:
    return ", ".join(f"{jax.tree_util.keystr(path)}: {tuple(leaf.shape)}"
                     for path, leaf in jax.tree_util.tree_leaves_with_path(tree))


def as_stacked(updates: Any, params: Any | None, what: str = "task") -> Any:
    """Returns `updates` with a leading `what` axis on every leaf.

    Accepts the stacked form (every leaf has a leading axis of the same size K), or,
    when `params` is given, a tuple/list of K trees each structured like `params`, which
    are stacked. Raises `ValueError` naming the mismatch otherwise.
    """
    if params is not None and isinstance(updates, (tuple, list)):
        p_def = jax.tree.structure(params)
        if jax.tree.structure(updates) != p_def:
            if len(updates) == 0:
                raise ValueError(f"`updates` is an empty sequence: need at least one {what}.")
            for i, tree in enumerate(updates):
                if jax.tree.structure(tree) != p_def:
                    raise ValueError(
                        f"`updates[{i}]` is not structured like `params`; pass one gradient "
                        f"tree per {what} (each like params) or one tree whose leaves have a "
                        f"leading {what} axis.\n  got: {jax.tree.structure(tree)}\n"
                        f"  expected: {p_def}")
            updates = jax.tree.map(lambda *xs: jnp.stack(xs), *updates)
    leaves = jax.tree.leaves(updates)
    if not leaves:
        raise ValueError("`updates` has no leaves.")
    for leaf in leaves:
        if jnp.ndim(leaf) < 1:
            raise ValueError(
                f"every leaf of `updates` needs a leading {what} axis; got a scalar leaf "
                f"(leaf shapes: {_describe(updates)}).")
    sizes = {leaf.shape[0] for leaf in leaves}
    if len(sizes) != 1:
        raise ValueError(
            f"mismatched {what} axes: the leaves of `updates` have leading sizes "
            f"{sorted(sizes)}; every leaf must have the same number of {what}s "
            f"(leaf shapes: {_describe(updates)}).")
    if params is not None:
        if jax.tree.structure(updates) != jax.tree.structure(params):
            raise ValueError(
                "`updates` (with its leading axis) must have the pytree structure of "
                f"`params`.\n  updates: {jax.tree.structure(updates)}\n"
                f"  params: {jax.tree.structure(params)}")
        for (path, u), p in zip(jax.tree_util.tree_leaves_with_path(updates),
                                jax.tree.leaves(params), strict=True):
            if tuple(u.shape[1:]) != tuple(jnp.shape(p)):
                raise ValueError(
                    f"leaf {jax.tree_util.keystr(path)} of `updates` has shape "
                    f"{tuple(u.shape)}; expected ({what}s, *{tuple(jnp.shape(p))}) to match "
                    "`params`.")
    return updates


def num_stacked(updates: Any) -> int:
    return int(jax.tree.leaves(updates)[0].shape[0])


def gram(a: Any, b: Any | None = None) -> jax.Array:
    """K×L matrix of inner products ⟨a_i, b_j⟩ over all leaves (float32 or wider)."""
    b = a if b is None else b
    total = None
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        dt = jnp.promote_types(jnp.promote_types(x.dtype, y.dtype), jnp.float32)
        xf = x.reshape(x.shape[0], -1).astype(dt)
        yf = y.reshape(y.shape[0], -1).astype(dt)
        g = jnp.dot(xf, yf.T, precision=jax.lax.Precision.HIGHEST)
        total = g if total is None else total + g
    return total


def combine(coeffs: jax.Array, stacked: Any) -> Any:
    """Σ_k coeffs[..., k] · stacked[k] per leaf, in each leaf's dtype.

    `coeffs` of shape (K,) gives one tree; of shape (L, K) a tree with a leading L axis.
    """
    def one(x):
        dt = jnp.promote_types(x.dtype, jnp.float32)
        flat = x.reshape(x.shape[0], -1).astype(dt)
        out = jnp.dot(coeffs.astype(dt), flat, precision=jax.lax.Precision.HIGHEST)
        return out.reshape(coeffs.shape[:-1] + x.shape[1:]).astype(x.dtype)

    return jax.tree.map(one, stacked)
