"""Composable SPAM pieces: spike clipping, periodic state reset, post-reset warm-up.

These are the three ingredients of SPAM (Huang et al., 2025, arXiv 2501.06842) as
separate transforms, so they can be combined with any optimizer (SGD, Lion, Adam...).
:func:`gradkit.scale_by_spam` fuses them with Adam exactly as the official code does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _validation


def _count_true(tree: Any) -> jax.Array:
    """Total number of True entries over a pytree of boolean arrays, as int32."""
    leaves = jax.tree.leaves(tree)
    total = jnp.zeros([], jnp.int32)
    for leaf in leaves:
        total = total + jnp.sum(leaf, dtype=jnp.int32)
    return total


def spike_clip(
    g: jax.Array, nu: jax.Array, threshold: Any, active: Any, eps: Any = 0.0
) -> tuple[jax.Array, jax.Array]:
    """SPAM's spike-aware clip of one array (Huang et al. 2025, Algorithm 1, lines 6-9).

    Where ``g² > θ·ν + eps`` (and ``active``), returns ``sign(g)·√(θ·ν + eps)``, else ``g``.
    ``threshold`` ≤ 0 disables clipping (the official code's ``threshold=0``).

    Returns:
      The clipped array (in ``g``'s dtype) and the boolean spike mask.
    """
    g32 = g.astype(jnp.float32)
    bound2 = threshold * nu.astype(jnp.float32) + eps
    spike = active & (threshold > 0) & (g32 * g32 > bound2)
    bound = jnp.sqrt(jnp.where(spike, bound2, 0.0))
    clipped = jnp.where(spike, jnp.sign(g32) * bound, g32)
    return clipped.astype(g.dtype), spike


class ClipSpikesState(NamedTuple):
    """State for :func:`clip_spikes`."""

    count: chex.Array  # int32 scalar, updates seen since init (or since a reset).
    nu: optax.Updates  # EMA of clipped g², same tree/shapes/dtypes as params.
    num_clipped: chex.Array  # int32 scalar, entries clipped at the last step.


def clip_spikes(
    threshold: jax.typing.ArrayLike = 5000.0,
    b2: jax.typing.ArrayLike = 0.999,
    warmup_steps: int = 20,
    eps: jax.typing.ArrayLike = 0.0,
) -> optax.GradientTransformation:
    r"""Spike-aware clipping with its own EMA of g², usable before any optimizer.

    .. math::

        c_t = \theta\,\nu_{t-1} + \epsilon,\qquad
        \tilde g_t = \begin{cases} \operatorname{sign}(g_t)\sqrt{c_t} &
            g_t^2 > c_t \text{ and } n_{t-1} \ge N_w \\ g_t & \text{otherwise}
        \end{cases},\qquad
        \nu_t = \beta_2\,\nu_{t-1} + (1-\beta_2)\,\tilde g_t^2,

    elementwise, where n_{t-1} is the number of gradients already accumulated in ν
    (reset to 0 by :func:`with_periodic_reset`). This is SPAM's spike test (paper
    Algorithm 1 lines 6-9; official ``SPAM.py``), which uses ν from *before* this step
    with **no bias correction**, as the official code does. When this transform is
    chained before ``optax.scale_by_adam(b2=b2)``, ν equals Adam's second moment
    (both accumulate the clipped gradient), so ``optax.chain(clip_spikes(),
    optax.adam(...))`` is SPAM without reset/warm-up, up to Adam's ε convention.

    Warm-up: no clipping until ν holds ``warmup_steps`` gradients (ν is tiny before
    that; un-debiased, ν after n steps is only (1−β₂ⁿ) of the gradient's mean square,
    so the effective threshold starts ≈ θ·(1−β₂ⁿ)). The official code clips when
    ``t % ΔT ≥ 20`` with t the 1-based global step; after a reset that is exactly
    "20 gradients accumulated", but at the very start of training it clips one step
    earlier (19 accumulated). :func:`gradkit.scale_by_spam` reproduces that exactly.

    NaN/Inf: ``±inf`` entries are clipped to ``±√c`` once clipping is active (so they
    reach the optimizer finite); NaN entries are never clipped and propagate into the
    output and into ν (after which that entry is never clipped again). Wrap the whole
    optimizer in ``optax.apply_if_finite`` to skip such steps.

    Args:
      threshold: θ > 0; spikes are entries with g² > θ·ν. ``0`` disables clipping
        (official convention); ``inf`` also disables it.
      b2: decay of the EMA of g², in [0, 1).
      warmup_steps: gradients ν must hold before clipping starts, ≥ 0.
      eps: ≥ 0, added to θ·ν (a floor on the clip bound so entries whose ν is still 0
        are clipped to ±√eps instead of 0). Official: 0.

    Returns:
      An ``optax.GradientTransformation`` whose state exposes ``num_clipped`` (int32,
      entries clipped at the last step): ``optax.tree_utils.tree_get(state,
      "num_clipped")``.

    Example:
      >>> import gradkit, optax
      >>> opt = optax.chain(gradkit.clip_spikes(), optax.lion(1e-4))

    References:
      Huang et al., `SPAM: Spike-Aware Adam with Momentum Reset for Stable LLM
      Training <https://arxiv.org/abs/2501.06842>`_, 2025 (Algorithm 1, Eq. (2)).
    """
    _validation.check_nonnegative("threshold", threshold)
    _validation.check_interval("b2", b2, 0.0, 1.0)
    _validation.check_nonnegative("eps", eps)
    if not (isinstance(warmup_steps, int) and not isinstance(warmup_steps, bool)):
        if _validation.concrete_number(warmup_steps) is not None:
            raise ValueError(
                f"`warmup_steps` must be a non-negative integer, got {warmup_steps!r}.")
    elif warmup_steps < 0:
        raise ValueError(f"`warmup_steps` must be a non-negative integer, got {warmup_steps!r}.")

    def init_fn(params):
        return ClipSpikesState(
            count=jnp.zeros([], jnp.int32),
            nu=optax.tree.zeros_like(params),
            num_clipped=jnp.zeros([], jnp.int32),
        )

    def update_fn(updates, state, params=None):
        del params
        b2_, theta, eps_ = (jnp.asarray(x, jnp.float32) for x in (b2, threshold, eps))
        active = state.count >= warmup_steps
        pairs = jax.tree.map(
            lambda g, v: spike_clip(g, v, theta, active, eps_), updates, state.nu)
        is_pair = lambda x: isinstance(x, tuple)  # noqa: E731
        new_updates = jax.tree.map(lambda p: p[0], pairs, is_leaf=is_pair)
        spikes = jax.tree.map(lambda p: p[1], pairs, is_leaf=is_pair)
        nu = jax.tree.map(
            lambda g, v: (b2_ * v.astype(jnp.float32)
                          + (1.0 - b2_) * jnp.square(g.astype(jnp.float32))).astype(v.dtype),
            new_updates, state.nu)
        return new_updates, ClipSpikesState(
            count=optax.safe_increment(state.count),
            nu=nu,
            num_clipped=_count_true(spikes),
        )

    return optax.GradientTransformation(init_fn, update_fn)


class WithPeriodicResetState(NamedTuple):
    """State for :func:`with_periodic_reset`."""

    count: chex.Array  # int32 scalar, updates so far (never reset).
    inner_state: Any  # the wrapped transformation's state.


def _path_names(path) -> set[str]:
    names = set()
    for entry in path:
        for attr in ("name", "key"):
            value = getattr(entry, attr, None)
            if isinstance(value, str):
                names.add(value)
    return names


def with_periodic_reset(
    inner: optax.GradientTransformation,
    every: int,
    *,
    only: Sequence[str] | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Re-initialises ``inner``'s state every ``every`` updates (SPAM's momentum reset).

    At update t (1-based, counted by this wrapper and never reset) with
    ``t % every == 0``, the inner state is replaced by ``inner.init(params)`` *before*
    the inner update runs, as in the official SPAM code (``total_step + 1`` is a
    multiple of ΔT). So with ``every=500`` the 500th, 1000th, ... updates start from
    fresh moments. Works with any transformation, chains and
    ``optax.inject_hyperparams`` (whose injected hyperparameters are re-initialised
    to their construction values unless excluded with ``only``).

    ``only`` restricts the reset to state entries whose path (NamedTuple field names
    and dict keys) contains one of the given names: ``only=("mu", "nu")`` zeroes Adam's
    moments but keeps its bias-correction ``count`` (and any schedule counts), which is
    what the official SPAM code does. By default the whole state is re-initialised
    (then Adam's bias correction restarts too, the "clean" reset).

    The fresh state is built with ``inner.init(params)`` (or ``inner.init(updates)``
    when ``params`` is None), then cast to the current state's dtypes.

    Args:
      inner: the transformation whose state is reset.
      every: reset period ΔT, a positive integer.
      only: optional names selecting which parts of the state are reset.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` (extra args are passed to ``inner``).

    Example:
      >>> import gradkit, optax
      >>> opt = gradkit.with_periodic_reset(
      ...     optax.chain(gradkit.clip_spikes(), optax.adam(1e-3)), every=500)

    References:
      Huang et al., `SPAM: Spike-Aware Adam with Momentum Reset for Stable LLM
      Training <https://arxiv.org/abs/2501.06842>`_, 2025 (Algorithm 1, lines 3-5).
    """
    _validation.check_positive_int("every", every)
    inner = optax.with_extra_args_support(inner)
    only_names = None if only is None else set(only)

    def init_fn(params):
        return WithPeriodicResetState(
            count=jnp.zeros([], jnp.int32), inner_state=inner.init(params))

    def _fresh(template, state):
        fresh = inner.init(template)

        def pick(path, new, old):
            if only_names is not None and not (_path_names(path) & only_names):
                return old
            return jnp.broadcast_to(jnp.asarray(new), jnp.shape(old)).astype(
                jnp.asarray(old).dtype)

        return jax.tree_util.tree_map_with_path(pick, fresh, state)

    def update_fn(updates, state, params=None, **extra_args):
        count = optax.safe_increment(state.count)
        reset = count % every == 0
        template = params if params is not None else updates
        inner_state = jax.lax.cond(
            reset, lambda s: _fresh(template, s), lambda s: s, state.inner_state)
        updates, inner_state = inner.update(updates, inner_state, params, **extra_args)
        return updates, WithPeriodicResetState(count=count, inner_state=inner_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def post_reset_warmup(
    reset_interval: int = 500,
    warmup_steps: int = 150,
    base: optax.ScalarOrSchedule = 1.0,
    initial_scale: float = 0.01,
) -> optax.Schedule:
    r"""SPAM's cosine warm-up after every momentum reset, times a base schedule.

    With t = count + 1 the 1-based update index (optax schedules receive the number
    of updates already made), ΔT = ``reset_interval``, N = ``warmup_steps`` and
    k = t mod ΔT:

    .. math::

        s(t) = \begin{cases}
          1 - (1 - s_0)\,\tfrac{1}{2}\bigl(1 + \cos\tfrac{\pi k}{N+1}\bigr)
             & t \ge \Delta T,\ k < N \\
          1 & \text{otherwise} \end{cases}

    and the schedule returns ``base(count) · s(t)``. s₀ = ``initial_scale`` = 0.01 is
    the official ``1 − CosineDecay(0.99, N)``: the official code evaluates
    ``CosineAnnealingLR`` (period N+1) in closed form at k, so the update at a reset
    step (k = 0) is scaled by exactly 0.01 and the scale reaches 1 at k = N. There is
    no warm-up at the start of training (the official ``current_step`` starts at N+1).
    pytorch-optimizer's ``SPAM`` steps the scheduler once more and so evaluates at
    k + 1 (a one-step shift).

    Use it as a learning-rate schedule with any optimizer reset by
    :func:`with_periodic_reset` (same ΔT), or as ``optax.scale_by_schedule(...)``
    right after the optimizer's direction so decoupled weight decay is not warmed up
    (as :func:`gradkit.spam` does, like the official code).

    Args:
      reset_interval: ΔT, a positive integer (traced values allowed).
      warmup_steps: N ≥ 0; 0 disables the warm-up.
      base: a scalar or schedule multiplied by the warm-up factor.
      initial_scale: s₀ in [0, 1], the factor at the reset step.

    Returns:
      An ``optax.Schedule``.

    Example:
      >>> import gradkit, optax
      >>> lr = gradkit.post_reset_warmup(500, 150, optax.cosine_decay_schedule(1e-3, 10_000))

    References:
      Huang et al., `SPAM: Spike-Aware Adam with Momentum Reset for Stable LLM
      Training <https://arxiv.org/abs/2501.06842>`_, 2025 (§3, "momentum reset").
    """
    if _validation.concrete_number(reset_interval) is not None:
        _validation.check_positive_int("reset_interval", reset_interval)
    if _validation.concrete_number(warmup_steps) is not None:
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) or (
                warmup_steps < 0):
            raise ValueError(
                f"`warmup_steps` must be a non-negative integer, got {warmup_steps!r}.")
    _validation.check_interval("initial_scale", initial_scale, 0.0, 1.0, high_closed=True)

    def schedule(count):
        t = jnp.asarray(count, jnp.int32) + 1
        k = t % reset_interval
        n = jnp.asarray(warmup_steps, jnp.float32)
        ramp = 1.0 - (1.0 - initial_scale) * 0.5 * (
            1.0 + jnp.cos(math.pi * k.astype(jnp.float32) / (n + 1.0)))
        factor = jnp.where((t >= reset_interval) & (k < warmup_steps), ramp, 1.0)
        value = base(count) if callable(base) else base
        return value * factor

    return schedule

