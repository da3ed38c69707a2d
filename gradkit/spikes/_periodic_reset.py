# SPDX-License-Identifier: Apache-2.0
"""SPAM's momentum reset for any optax transformation's state.

Huang et al., 2025, arXiv 2501.06842, Algorithm 1 lines 3-5; checked against the
official ``TianjinYellow/SPAM-Optimizer`` ``galore_torch/SPAM.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from typing import Literal
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _common
from gradkit.spikes import _reset
from gradkit.spikes._clip_spikes import ClipSpikesState


class WithPeriodicResetState(NamedTuple):
    """State for :func:`with_periodic_reset`."""

    count: chex.Array  # int32 scalar, updates so far (never reset).
    inner_state: Any  # the wrapped transformation's state.


_HYPERPARAM_STATES = (optax.InjectHyperparamsState, optax.InjectStatefulHyperparamsState)


def _moment_mask(state: Any) -> Any:
    """Bool per state leaf: True for the moments :func:`with_periodic_reset` zeroes.

    Moments are floating-point leaves, plus :func:`gradkit.clip_spikes`' gradient
    counter (its clip delay restarts with its ν). Never reset: integer leaves (step
    counts, schedule counts, spike counts), PRNG keys, and the hyperparameters of
    ``optax.inject_hyperparams`` (whose inner state is searched recursively).
    """

    def floating(x):
        dtype = x.dtype if hasattr(x, "dtype") else jnp.asarray(x).dtype
        return bool(jnp.issubdtype(dtype, jnp.floating))

    def off(tree):
        return jax.tree.map(lambda _: False, tree)

    def visit(node):
        if isinstance(node, _HYPERPARAM_STATES):
            return node._replace(
                count=off(node.count), hyperparams=off(node.hyperparams),
                hyperparams_states=off(node.hyperparams_states),
                inner_state=_moment_mask(node.inner_state))
        if isinstance(node, ClipSpikesState):
            return node._replace(count=True, nu=jax.tree.map(floating, node.nu),
                                 num_clipped=off(node.num_clipped))
        return floating(node)

    is_node = lambda x: isinstance(x, (*_HYPERPARAM_STATES, ClipSpikesState))  # noqa: E731
    return jax.tree.map(visit, state, is_leaf=is_node)


def with_periodic_reset(
    inner: optax.GradientTransformation,
    reset_interval: int,
    *,
    only: Sequence[str] | Literal["moments", "all"] = "moments",
) -> optax.GradientTransformationExtraArgs:
    r"""Zeroes ``inner``'s moments every ``reset_interval`` updates (SPAM's momentum reset).

    At update t (1-based, counted by this wrapper and never reset) with
    t % ΔT == 0, ΔT = ``reset_interval``, the selected parts of the inner state are
    replaced by those of ``inner.init(params)`` *before* the inner update runs, as in
    the official SPAM code (``total_step + 1`` is a multiple of ΔT). So with ΔT = 500
    the 500th, 1000th, ... updates start from fresh moments.

    What is reset (``only``):

    * ``"moments"`` (default): every floating-point leaf (first/second moments, EMAs)
      and :func:`gradkit.clip_spikes`' gradient counter (so its clip delay restarts with
      its ν). Integer leaves (Adam's bias-correction ``count``, schedule counts), PRNG
      keys and the hyperparameters of ``optax.inject_hyperparams`` are never reset, so
      a learning-rate schedule inside ``inner`` keeps decaying. This is the official
      SPAM reset (moments zeroed, bias-correction step kept).
    * ``"all"``: the whole state is re-initialised (Adam's bias correction restarts
      too; schedules inside ``inner`` restart).
    * a sequence of names: the state entries whose path (NamedTuple field names and
      dict keys) contains one of them, e.g. ``("mu", "nu")``.

    The fresh values come from ``inner.init(params)`` (``inner.init(updates)`` when
    ``params`` is None), cast to the current state's dtypes.

    Args:
      inner: the transformation whose state is reset.
      reset_interval: reset period ΔT, a positive integer.
      only: ``"moments"``, ``"all"``, or names selecting the parts of the state reset.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` (extra args are passed to ``inner``).

    Example:
      >>> import gradkit, optax
      >>> opt = gradkit.with_periodic_reset(
      ...     optax.chain(gradkit.clip_spikes(), optax.adam(1e-3)), reset_interval=500)

    References:
      Huang et al., `SPAM: Spike-Aware Adam with Momentum Reset for Stable LLM
      Training <https://arxiv.org/abs/2501.06842>`_, 2025 (Algorithm 1, lines 3-5).
    """
    _common.check_positive_int("reset_interval", reset_interval)
    if isinstance(only, str):
        _common.check_choice("only", only, ("moments", "all"))
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        return WithPeriodicResetState(
            count=jnp.zeros([], jnp.int32), inner_state=inner.init(params))

    def fresh(template, state):
        new = inner.init(template)
        if only == "moments":
            selected = _moment_mask(state)
        elif only == "all":
            selected = jax.tree.map(lambda _: True, state)
        else:
            names = set(only)
            selected = jax.tree_util.tree_map_with_path(
                lambda path, _: bool(_common.path_names(path) & names), state)

        def pick(new, old, sel):
            if not sel:
                return old
            return jnp.broadcast_to(jnp.asarray(new), jnp.shape(old)).astype(
                jnp.asarray(old).dtype)

        return jax.tree.map(pick, new, state, selected)

    def update_fn(updates, state, params=None, **extra_args):
        count = optax.safe_increment(state.count)
        reset, _, _ = _reset.reset_phase(count, reset_interval)
        template = params if params is not None else updates
        inner_state = jax.lax.cond(
            reset, lambda s: fresh(template, s), lambda s: s, state.inner_state)
        updates, inner_state = inner.update(updates, inner_state, params, **extra_args)
        return updates, WithPeriodicResetState(count=count, inner_state=inner_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
