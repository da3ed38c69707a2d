"""Forward-over-reverse Hessian-vector products shared by the curvature tools.

Used by Sophia's Hutchinson estimator (:mod:`gradkit.curvature`) and by the spectrum
diagnostics (:mod:`gradkit.spectrum`), so both differentiate and reduce over devices the
same way:

- :func:`as_varying` marks replicated params as device-varying under ``shard_map`` (so
  its implicit sum of gradients of replicated inputs does not add to the explicit mean);
- :func:`local_hvp` is ``jax.jvp(jax.grad(f), (params,), (v,))`` on one device's loss;
- :func:`axis_mean` is the ``lax.pmean`` over the data axis (identity without one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax


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
