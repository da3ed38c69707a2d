# SPDX-License-Identifier: Apache-2.0
"""Spike-aware clipping with its own EMA of g², usable before any optimizer.

SPAM's spike test (Huang et al., 2025, arXiv 2501.06842, Algorithm 1 lines 6-9), checked
against the official ``TianjinYellow/SPAM-Optimizer`` ``galore_torch/SPAM.py``.
"""

from __future__ import annotations

from typing import Any
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _common
from gradkit.spikes import _count


class ClipSpikesState(NamedTuple):
    """State for :func:`clip_spikes`."""

    count: chex.Array  # int32 scalar, gradients in ν since init (or since a reset).
    nu: optax.Updates  # EMA of clipped g², params' shapes, nu_dtype (float32 for bf16).
    # int32 scalar, entries clipped at the last counted step; None unless counted.
    num_clipped: chex.Array | None = None


def clip_spikes(
    b2: jax.typing.ArrayLike = 0.999,
    *,
    threshold: jax.typing.ArrayLike = 5000.0,
    clip_delay: int = 20,
    eps: jax.typing.ArrayLike = 0.0,
    nu_dtype: Any | None = None,
    count_interval: int | None = None,
) -> optax.GradientTransformation:
    r"""Spike-aware clipping with its own EMA of g², usable before any optimizer.

    .. math::

        c_t = \theta\,\nu_{t-1} + \epsilon,\qquad
        \tilde g_t = \begin{cases} \operatorname{sign}(g_t)\sqrt{c_t} &
            g_t^2 > c_t \text{ and } n_{t-1} \ge N_c \\ g_t & \text{otherwise}
        \end{cases},\qquad
        \nu_t = \beta_2\,\nu_{t-1} + (1-\beta_2)\,\tilde g_t^2,

    elementwise, where n_{t-1} is the number of gradients already accumulated in ν
    (reset to 0 with ν by :func:`gradkit.with_periodic_reset`). This is SPAM's spike
    test (paper Algorithm 1 lines 6-9; official ``SPAM.py``), which uses ν from *before*
    this step with **no bias correction**, as the official code does. When this
    transform is chained before ``optax.scale_by_adam(b2=b2)``, ν equals Adam's second
    moment (both accumulate the clipped gradient), so ``optax.chain(clip_spikes(),
    optax.adam(...))`` is SPAM without reset/warm-up, up to Adam's ε convention.

    Clip delay N_c = ``clip_delay``: no clipping until ν holds N_c gradients. The
    official code clips when ``t % ΔT ≥ 20`` with t the 1-based global step; after a
    reset that is exactly "20 gradients accumulated", but at the very start of training
    it clips one step earlier (19 accumulated). :func:`gradkit.scale_by_spam` reproduces
    that exactly.

    NaN/Inf: ``±inf`` entries are clipped to ``±√c`` once clipping is active (so they
    reach the optimizer finite); NaN entries are never clipped and propagate into the
    output and into ν (after which that entry is never clipped again). Wrap the whole
    optimizer in ``optax.apply_if_finite`` to skip such steps.

    Args:
      b2: decay of the EMA of g², in [0, 1).
      threshold: θ ≥ 0; spikes are entries with g² > θ·ν. ``0`` disables clipping
        (official convention); ``inf`` also disables it.
      clip_delay: N_c ≥ 0, gradients ν must hold before clipping starts.
      eps: ≥ 0, added to θ·ν (a floor on the clip bound so entries whose ν is still 0
        are clipped to ±√eps instead of 0). Official: 0.
      nu_dtype: dtype of ν; ``None``: float32 for bfloat16/float16 params (a bf16 EMA
        with β₂ = 0.999 stalls at a quarter of its value), else the params' dtype.
      count_interval: None (default): no spike count, the state's ``num_clipped`` is
        None; k ≥ 1: ``num_clipped`` (int32) holds the entries clipped at the last
        update t with t % k == 0 (1: every update, exact). Static.

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import gradkit, optax
      >>> opt = optax.chain(gradkit.clip_spikes(), optax.lion(1e-4))

    References:
      Huang et al., `SPAM: Spike-Aware Adam with Momentum Reset for Stable LLM
      Training <https://arxiv.org/abs/2501.06842>`_, 2025 (Algorithm 1, Eq. (2)).
    """
    _common.check_interval("b2", b2, 0.0, 1.0)
    _common.check_nonnegative("threshold", threshold)
    _common.check_nonnegative_int("clip_delay", clip_delay)
    _common.check_nonnegative("eps", eps)
    _common.check_float_dtype("nu_dtype", nu_dtype)
    count_interval = _count.check_count_interval(count_interval)
    nu_dtype = _common.canonicalize_dtype(nu_dtype)

    def init_fn(params):
        return ClipSpikesState(
            count=jnp.zeros([], jnp.int32),
            nu=jax.tree.map(
                lambda p: jnp.zeros(jnp.shape(p), _common.nu_dtype_for(p.dtype, nu_dtype)),
                params),
            num_clipped=_count.initial_count(count_interval),
        )

    def update_fn(updates, state, params=None):
        del params
        _common.check_same_structure(updates, state.nu)
        b2_, theta, eps_ = (jnp.asarray(x, jnp.float32) for x in (b2, threshold, eps))
        count = optax.safe_increment(state.count)
        active = (state.count >= clip_delay) & (theta > 0)

        def clip(g, v):
            g = g.astype(jnp.float32)
            bound2 = theta * v.astype(jnp.float32) + eps_
            spike = active & (g * g > bound2)
            return jnp.where(spike, jnp.sign(g) * jnp.sqrt(bound2), g), spike

        clipped = jax.tree.map(clip, updates, state.nu)
        is_pair = lambda x: isinstance(x, tuple)  # noqa: E731
        g_clipped = jax.tree.map(lambda c: c[0], clipped, is_leaf=is_pair)
        spikes = jax.tree.map(lambda c: c[1], clipped, is_leaf=is_pair)
        nu = jax.tree.map(
            lambda v, g: (b2_ * v.astype(jnp.float32) + (1.0 - b2_) * g * g).astype(v.dtype),
            state.nu, g_clipped)
        out = jax.tree.map(lambda c, g: c.astype(g.dtype), g_clipped, updates)
        return out, ClipSpikesState(
            count=count,
            nu=nu,
            num_clipped=_count.num_clipped(count_interval, count, state.num_clipped,
                                           lambda: jax.tree.leaves(spikes)),
        )

    return optax.GradientTransformation(init_fn, update_fn)
