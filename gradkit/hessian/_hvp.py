# SPDX-License-Identifier: Apache-2.0
"""Forward-over-reverse Hessian-vector products shared by the estimators and diagnostics.

Sophia's Hutchinson estimator and the spectrum and sharpness diagnostics all differentiate
and reduce over devices through these functions:

- :func:`as_varying` marks replicated params as device-varying under ``shard_map`` (so
  its implicit sum of gradients of replicated inputs does not add to the explicit mean);
- :func:`local_hvp` is ``jax.jvp(jax.grad(f), (params,), (v,))`` on one device's loss;
- :func:`axis_mean` is the ``lax.pmean`` over the data axis (identity without one);
- :func:`hvp` is the public Hessian-vector product built from the three.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

LossFn = Callable[..., jax.Array]  # loss_fn(params, *extra) -> scalar


def as_varying(tree: Any, axis_name: str | None) -> Any:
    """Marks replicated leaves as device-varying over `axis_name` (shard_map only).

    Under ``shard_map`` (with its replication check on), differentiating with respect
    to a replicated input already sums the result over the axis; the estimators then
    reduce explicitly, so they first make params device-varying. Elsewhere (pmap, vmap,
    no axis) this is the identity.

    Only public API: ``jax.lax.pcast(x, axis_name, to="varying")`` (``jax.lax.pvary``
    was removed in JAX 0.10). pcast raises ``ValueError`` for a leaf that already
    varies over the axis ("Unsupported pcast from=varying") and outside ``shard_map``
    (vmap, no mapped axis); both mean there is nothing to do.
    """
    if axis_name is None:
        return tree

    def one(x):
        try:
            return jax.lax.pcast(x, axis_name, to="varying")
        except ValueError:  # already varying, or not under shard_map: nothing to do
            return x

    return jax.tree.map(one, tree)


def local_hvp(fun: Callable[[Any], jax.Array], params: Any, tangents: Any,
              axis_name: str | None = None) -> Any:
    """∇²fun(params)·tangents by forward-over-reverse, on this device's loss only.

    ``params`` and ``tangents`` are first passed through :func:`as_varying` (under
    ``shard_map`` the primal and tangent must agree on which axes they vary over); the
    result is *not* reduced over ``axis_name`` (callers reduce with :func:`axis_mean`,
    before or after combining it with the tangents).
    """
    params = as_varying(params, axis_name)
    tangents = as_varying(tangents, axis_name)
    return jax.jvp(jax.grad(fun), (params,), (tangents,))[1]


def axis_mean(tree: Any, axis_name: str | None) -> Any:
    """``lax.pmean`` of `tree` over `axis_name`; the identity when it is None."""
    if axis_name is None:
        return tree
    return jax.lax.pmean(tree, axis_name)


def check_like_params(name: str, tree: Any, params: Any) -> None:
    """Raises `ValueError` unless `tree` has the pytree structure and leaf shapes of
    `params` (a tangent, a start vector, a diagonal preconditioner)."""
    got, want = jax.tree.structure(tree), jax.tree.structure(params)
    if got != want:
        raise ValueError(
            f"`{name}` must have the same pytree structure as `params`.\n"
            f"  {name}: {got}\n  params: {want}")
    for a, p in zip(jax.tree.leaves(tree), jax.tree.leaves(params), strict=True):
        if jnp.shape(a) != jnp.shape(p):
            raise ValueError(f"`{name}` leaf of shape {jnp.shape(a)} does not match the "
                             f"params leaf of shape {jnp.shape(p)}.")


def hvp(loss_fn: LossFn, params: Any, v: Any, *extra: Any,
        axis_name: str | None = None) -> Any:
    r"""Hessian-vector product ∇²L(θ)·v of a scalar loss on pytrees (forward-over-reverse).

    .. math::

        \operatorname{hvp}(v) = \frac{d}{d\epsilon}\nabla_\theta
            L(\theta + \epsilon v, \ldots)\Big|_{\epsilon=0}
        = \nabla^2_\theta L(\theta)\, v

    computed as ``jax.jvp(jax.grad(loss), (params,), (v,))``: one forward-mode pass
    through the backward pass, a small multiple of a gradient's cost (2.3× on an MLP and
    6× on the reference GPT on our CPU, ``benchmarks/spectrum.py``), never forming the
    Hessian. Sophia's Hutchinson estimator (:func:`gradkit.hutchinson_diag_hessian`)
    runs the same code (:func:`local_hvp` and :func:`axis_mean`).

    Batched: ``loss_fn(params, *extra)`` may average over any batch held in ``extra``;
    for several vectors at once use ``jax.vmap(hvp, in_axes=(None, None, 0))``.
    Multi-device: with ``axis_name`` (a ``pmap``/``shard_map`` data axis, params and
    ``v`` replicated, ``extra`` sharded), the per-device products are ``lax.pmean``-ed,
    exactly as Sophia's estimators do, so the result is the HVP of the mean of the
    per-device losses (the global-batch loss for equal-size shards) on every device.

    Args:
      loss_fn: ``loss_fn(params, *extra) -> scalar``.
      params: the point θ (any pytree of float arrays).
      v: a pytree with the structure and shapes of ``params`` (cast to their dtypes).
      *extra: further positional arguments of ``loss_fn`` (e.g. a batch).
      axis_name: a data-parallel axis to average over, or None.

    Returns:
      ∇²L(θ)·v, a pytree like ``params``.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> loss = lambda p, x: jnp.sum((x * p["w"]) ** 2)
      >>> gradkit.hvp(loss, {"w": jnp.ones(2)}, {"w": jnp.array([1.0, 0.0])},
      ...             jnp.array([1.0, 3.0]))  # H = diag(2x²) → [2, 0]
      {'w': Array([2., 0.], dtype=float32)}

    References:
      Pearlmutter, `Fast exact multiplication by the Hessian
      <https://doi.org/10.1162/neco.1994.6.1.147>`_, 1994.
    """
    check_like_params("v", v, params)
    v = jax.tree.map(lambda t, p: jnp.asarray(t).astype(jnp.result_type(p)), v, params)
    out = local_hvp(lambda p: loss_fn(p, *extra), params, v, axis_name)
    return axis_mean(out, axis_name)
