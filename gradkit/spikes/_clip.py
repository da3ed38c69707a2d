"""Composable SPAM pieces: spike clipping, periodic state reset, post-reset warm-up.

These are the three ingredients of SPAM (Huang et al., 2025, arXiv 2501.06842) as
separate transforms, so they can be combined with any optimizer (SGD, Lion, Adam...).
:func:`gradkit.scale_by_spam` fuses them with Adam exactly as the official code does.
Implementation notes (memory passes, copies, the spike count) are in ``docs/spam.md``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import Literal
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _control
from gradkit import _validation
from gradkit._tree import path_names

_NOT_COUNTED = -1  # `num_clipped` when the spike count is off (count_every=0).


def _deprecated_alias(fn: str, old: str, new: str, old_value: Any, new_value: Any,
                      default: Any) -> Any:
    """Value of `new`, taking a deprecated `old` keyword (a DeprecationWarning) into account."""
    if old_value is None:
        return new_value
    if new_value != default:
        raise TypeError(f"{fn}() got both `{new}` and its deprecated alias `{old}`.")
    warnings.warn(f"{fn}(): `{old}` is deprecated, use `{new}` (same meaning); the alias "
                  "will be removed in the next release.", DeprecationWarning, stacklevel=3)
    return old_value


def _reset_phase(count: jax.Array, reset_interval: Any) -> tuple[jax.Array, jax.Array,
                                                                  jax.Array]:
    """Momentum-reset bookkeeping shared by every SPAM-family transform.

    Args:
      count: int32 t, the 1-based update index.
      reset_interval: ΔT (a positive integer, traced allowed), or None/0 for no resets.

    Returns:
      ``(reset, phase, has_reset)``: whether t % ΔT == 0, t % ΔT, and whether resets are
      on at all (with no resets, phase is t and reset is False).
    """
    if reset_interval is None:
        return jnp.asarray(False), count, jnp.asarray(False)
    has_reset = jnp.asarray(reset_interval) > 0
    period = jnp.maximum(jnp.asarray(reset_interval, jnp.int32), 1)
    phase = count % period
    return has_reset & (phase == 0), phase, has_reset


def _check_reset_interval(value: Any) -> None:
    """None/0 (no resets) or a positive integer; traced values pass."""
    if value is not None and _validation.concrete_number(value) is not None and value != 0:
        _validation.check_positive_int("reset_interval", value)


def _moment_dtype(param_dtype: Any, nu_dtype: Any) -> Any:
    """dtype of a second moment: ``nu_dtype``, else float32 for <32-bit float params."""
    if nu_dtype is not None:
        return nu_dtype
    param_dtype = jnp.dtype(param_dtype)
    if jnp.issubdtype(param_dtype, jnp.floating) and param_dtype.itemsize < 4:
        return jnp.dtype(jnp.float32)
    return param_dtype


def _after(x: jax.Array, *deps: jax.Array) -> jax.Array:
    """``x`` unchanged, but computed after ``deps`` (a data dependency XLA must respect).

    Moments are updated in place (donated buffers): when another fused loop still reads
    the old ν, XLA copies ν every step unless the ν update is ordered after that reader.
    ``lax.optimization_barrier`` is removed by XLA:CPU before copy insertion, so the
    order is made a real data dependency: a test that is never true, ``(bits | 1) == 0``
    on one element of each dependency, selects between ``x`` and 0. The result is
    bit-identical to ``x`` and costs one scalar load per dependency.
    """
    never = jnp.asarray(False)
    for d in deps:
        e = d.reshape(-1)[0] if d.ndim else d
        if jnp.issubdtype(e.dtype, jnp.floating):
            e = jax.lax.bitcast_convert_type(e.astype(jnp.float32), jnp.int32)
        never = never | ((e.astype(jnp.int32) | 1) == 0)
    return jnp.where(never, jnp.zeros_like(x), x)


def _popcount(mask: jax.Array) -> jax.Array:
    """Number of True entries of a boolean array, as int32.

    The mask is packed into uint32 words (32 entries per word) and the words'
    population counts are summed, so the reduction touches 1 bit per entry instead of
    the int32 mask that ``jnp.sum(mask, dtype=int32)`` materialises on XLA:CPU.
    """
    flat = mask.reshape(-1)
    n = flat.shape[0]
    full = n // 32 * 32
    total = jnp.zeros([], jnp.int32)
    if full:
        bits = flat[:full].reshape(-1, 32).astype(jnp.uint32) << jnp.arange(32, dtype=jnp.uint32)
        words = jnp.sum(bits, axis=1, dtype=jnp.uint32)  # distinct bits: sum == or
        total = jnp.sum(jax.lax.population_count(words).astype(jnp.int32))
    if full < n:
        total = total + jnp.sum(flat[full:], dtype=jnp.int32)
    return total


def _check_count_every(count_every: Any) -> int | None:
    """``count_every`` as a Python int, or None when traced (optax.inject_hyperparams)."""
    if isinstance(count_every, jax.core.Tracer):
        return None
    value = _validation.concrete_number(count_every)
    if value is None and isinstance(count_every, jax.Array):
        value = float(count_every)
    if isinstance(count_every, bool) or value is None or value != int(value) or value < 0:
        raise ValueError(
            f"`count_every` must be a non-negative integer (0: no count), got {count_every!r}.")
    return int(value)


def _count_now(count_every: int | jax.Array, count: jax.Array) -> jax.Array | bool:
    """Whether ``num_clipped`` is counted at 1-based step ``count`` (a static bool if possible)."""
    if isinstance(count_every, int):
        return count_every == 1 or (count_every > 1 and count % count_every == 0)
    every = jnp.asarray(count_every, jnp.int32)
    return (every > 0) & (count % jnp.maximum(every, 1) == 0)


def _num_clipped(count_every: int | jax.Array, count: jax.Array, previous: jax.Array,
                 count_fn: Callable[[], jax.Array]) -> jax.Array:
    """``num_clipped`` for this step under the ``count_every`` policy.

    0: never counted (−1); 1: exact count every step; k > 1: counted at the steps with
    t % k == 0 (inside a ``lax.cond``, so other steps pay nothing), the last count kept.
    A traced ``count_every`` (injected) takes the ``lax.cond`` path.
    """
    if isinstance(count_every, int) and count_every == 0:
        return jnp.full([], _NOT_COUNTED, jnp.int32)
    if isinstance(count_every, int) and count_every == 1:
        return count_fn()
    if not isinstance(count_every, int):  # traced: −1 while counting is off
        previous = jnp.where(jnp.asarray(count_every) > 0, previous, _NOT_COUNTED)
    return _control.cond(_count_now(count_every, count), count_fn, lambda: previous)


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
    clipped = jnp.where(spike, jnp.sign(g32) * jnp.sqrt(bound2), g32)
    return clipped.astype(g.dtype), spike


class ClipSpikesState(NamedTuple):
    """State for :func:`clip_spikes`."""

    count: chex.Array  # int32 scalar, gradients in ν since init (or since a reset).
    nu: optax.Updates  # EMA of clipped g², params' shapes, nu_dtype (float32 for bf16).
    num_clipped: chex.Array  # int32 scalar, entries clipped at the last counted step.


def clip_spikes(
    threshold: jax.typing.ArrayLike = 5000.0,
    b2: jax.typing.ArrayLike = 0.999,
    clip_delay: int = 20,
    eps: jax.typing.ArrayLike = 0.0,
    nu_dtype: Any | None = None,
    *,
    count_every: int = 0,
    warmup_steps: int | None = None,
) -> optax.GradientTransformation:
    r"""Spike-aware clipping with its own EMA of g², usable before any optimizer.

    .. math::

        c_t = \theta\,\nu_{t-1} + \epsilon,\qquad
        \tilde g_t = \begin{cases} \operatorname{sign}(g_t)\sqrt{c_t} &
            g_t^2 > c_t \text{ and } n_{t-1} \ge N_c \\ g_t & \text{otherwise}
        \end{cases},\qquad
        \nu_t = \beta_2\,\nu_{t-1} + (1-\beta_2)\,\tilde g_t^2,

    elementwise, where n_{t-1} is the number of gradients already accumulated in ν
    (reset to 0 with ν by :func:`with_periodic_reset`). This is SPAM's spike test (paper
    Algorithm 1 lines 6-9; official ``SPAM.py``), which uses ν from *before* this step
    with **no bias correction**, as the official code does. When this transform is
    chained before ``optax.scale_by_adam(b2=b2)``, ν equals Adam's second moment
    (both accumulate the clipped gradient), so ``optax.chain(clip_spikes(),
    optax.adam(...))`` is SPAM without reset/warm-up, up to Adam's ε convention.
    (For a clipped entry ``c_t`` itself is accumulated, which is ``g̃²`` exactly.)

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
      threshold: θ ≥ 0; spikes are entries with g² > θ·ν. ``0`` disables clipping
        (official convention); ``inf`` also disables it.
      b2: decay of the EMA of g², in [0, 1).
      clip_delay: N_c ≥ 0, gradients ν must hold before clipping starts.
      eps: ≥ 0, added to θ·ν (a floor on the clip bound so entries whose ν is still 0
        are clipped to ±√eps instead of 0). Official: 0.
      nu_dtype: dtype of ν; ``None``: float32 for bfloat16/float16 params (a bf16 EMA
        with β₂ = 0.999 stalls at a quarter of its value), else the params' dtype.
      count_every: how often ``num_clipped`` is counted: 0 (default, free) never (it
        stays −1), 1 every step (exact; one more read of g and ν per step), k > 1 at
        the steps t with t % k == 0 (the value is kept in between).
      warmup_steps: deprecated alias of ``clip_delay``.

    Returns:
      An ``optax.GradientTransformation`` whose state exposes ``num_clipped`` (int32):
      ``optax.tree_utils.tree_get(state, "num_clipped")``.

    Example:
      >>> import gradkit, optax
      >>> opt = optax.chain(gradkit.clip_spikes(), optax.lion(1e-4))

    References:
      Huang et al., `SPAM: Spike-Aware Adam with Momentum Reset for Stable LLM
      Training <https://arxiv.org/abs/2501.06842>`_, 2025 (Algorithm 1, Eq. (2)).
    """
    clip_delay = _deprecated_alias("clip_spikes", "warmup_steps", "clip_delay",
                                   warmup_steps, clip_delay, 20)
    _validation.check_nonnegative("threshold", threshold)
    _validation.check_interval("b2", b2, 0.0, 1.0)
    _validation.check_nonnegative("eps", eps)
    _validation.check_nonnegative_int("clip_delay", clip_delay)
    static_every = _check_count_every(count_every)
    count_every = count_every if static_every is None else static_every
    nu_dtype = _validation.canonicalize_dtype(nu_dtype)

    def init_fn(params):
        return ClipSpikesState(
            count=jnp.zeros([], jnp.int32),
            nu=jax.tree.map(lambda p: jnp.zeros(jnp.shape(p), _moment_dtype(p.dtype, nu_dtype)),
                            params),
            num_clipped=jnp.full([], _NOT_COUNTED, jnp.int32),
        )

    def update_fn(updates, state, params=None):
        del params
        b2_, theta, eps_ = (jnp.asarray(x, jnp.float32) for x in (b2, threshold, eps))
        count = optax.safe_increment(state.count)
        active = (state.count >= clip_delay) & (theta > 0)
        leaves, treedef = jax.tree.flatten(updates)
        nus = treedef.flatten_up_to(state.nu)

        def spike_mask(g, v):
            g32 = g.astype(jnp.float32)
            return active & (g32 * g32 > theta * v.astype(jnp.float32) + eps_)

        num_clipped = _num_clipped(
            count_every, count, state.num_clipped,
            lambda: sum((_popcount(spike_mask(g, v)) for g, v in zip(leaves, nus, strict=True)),
                        jnp.zeros([], jnp.int32)))
        outs, new_nus = [], []
        for g, v in zip(leaves, nus, strict=True):
            # The clipped output is materialised once, as the result of a lax.cond (XLA
            # would otherwise recompute it from the old ν inside every consumer, the
            # chained optimizer's loops), and the in-place ν write is ordered after it
            # and after the count (else XLA copies ν).
            out = _control.cond(active, lambda g=g, v=v: spike_clip(g, v, theta, active, eps_)[0],
                                lambda g=g: g)
            b2_v = _after(b2_, *((out,) if out.size else ()), num_clipped)
            g32 = g.astype(jnp.float32)
            g2 = g32 * g32
            bound2 = theta * v.astype(jnp.float32) + eps_
            g2 = jnp.where(active & (g2 > bound2), bound2, g2)
            new_nus.append((b2_v * v.astype(jnp.float32) + (1.0 - b2_v) * g2).astype(v.dtype))
            outs.append(out)
        return treedef.unflatten(outs), ClipSpikesState(
            count=count,
            nu=treedef.unflatten(new_nus),
            num_clipped=num_clipped,
        )

    return optax.GradientTransformation(init_fn, update_fn)


class WithPeriodicResetState(NamedTuple):
    """State for :func:`with_periodic_reset`."""

    count: chex.Array  # int32 scalar, updates so far (never reset).
    inner_state: Any  # the wrapped transformation's state.


_HYPERPARAM_STATES = (optax.InjectHyperparamsState, optax.InjectStatefulHyperparamsState)


def _moment_mask(state: Any) -> Any:
    """Bool per state leaf: True for the moments :func:`with_periodic_reset` zeroes.

    Moments are floating-point leaves, plus :func:`clip_spikes`' gradient counter
    (its clip delay restarts with its ν). Never reset: integer leaves (step counts,
    schedule counts), PRNG keys, and the hyperparameters of
    ``optax.inject_hyperparams`` (whose inner state is searched recursively).
    """

    def floating(x):
        dtype = jnp.asarray(x).dtype if not hasattr(x, "dtype") else x.dtype
        return bool(jnp.issubdtype(dtype, jnp.floating))

    def visit(node):
        if isinstance(node, _HYPERPARAM_STATES):
            off = lambda t: jax.tree.map(lambda _: False, t)  # noqa: E731
            return node._replace(
                count=off(node.count), hyperparams=off(node.hyperparams),
                hyperparams_states=off(node.hyperparams_states),
                inner_state=_moment_mask(node.inner_state))
        if isinstance(node, ClipSpikesState):
            return node._replace(count=True, nu=jax.tree.map(floating, node.nu),
                                 num_clipped=False)
        return floating(node)

    is_node = lambda x: isinstance(x, (*_HYPERPARAM_STATES, ClipSpikesState))  # noqa: E731
    return jax.tree.map(visit, state, is_leaf=is_node)


def with_periodic_reset(
    inner: optax.GradientTransformation,
    reset_interval: int | None = None,
    *,
    only: Sequence[str] | Literal["moments", "all"] = "moments",
    every: int | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Zeroes ``inner``'s moments every ``reset_interval`` updates (SPAM's momentum reset).

    At update t (1-based, counted by this wrapper and never reset) with
    t % ΔT == 0, ΔT = ``reset_interval``, the selected parts of the inner state are
    replaced by those of ``inner.init(params)`` *before* the inner update runs, as in
    the official SPAM code (``total_step + 1`` is a multiple of ΔT). So with ΔT = 500
    the 500th, 1000th, ... updates start from fresh moments.

    What is reset (``only``):

    * ``"moments"`` (default): every floating-point leaf (first/second moments, EMAs)
      and :func:`clip_spikes`' gradient counter (so its clip delay restarts with its
      ν). Integer leaves (Adam's bias-correction ``count``, schedule counts), PRNG keys
      and the hyperparameters of ``optax.inject_hyperparams`` are never reset, so a
      learning-rate schedule inside ``inner`` keeps decaying. This is the official
      SPAM reset (moments zeroed, bias-correction step kept).
    * ``"all"``: the whole state is re-initialised (Adam's bias correction restarts
      too, the "clean" reset; schedules inside ``inner`` restart).
    * a sequence of names: the state entries whose path (NamedTuple field names and
      dict keys) contains one of them, e.g. ``("mu", "nu")``.

    The fresh values come from ``inner.init(params)`` (``inner.init(updates)`` when
    ``params`` is None), cast to the current state's dtypes.

    Args:
      inner: the transformation whose state is reset.
      reset_interval: reset period ΔT, a positive integer.
      only: ``"moments"``, ``"all"``, or names selecting the parts of the state reset.
      every: deprecated alias of ``reset_interval``.

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
    reset_interval = _deprecated_alias("with_periodic_reset", "every", "reset_interval",
                                       every, reset_interval, None)
    _validation.check_positive_int("reset_interval", reset_interval)
    if isinstance(only, str):
        _validation.check_choice("only", only, ("moments", "all"))
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        return WithPeriodicResetState(
            count=jnp.zeros([], jnp.int32), inner_state=inner.init(params))

    def _fresh(template, state):
        fresh = inner.init(template)
        if only == "moments":
            selected = _moment_mask(state)
        elif only == "all":
            selected = jax.tree.map(lambda _: True, state)
        else:
            names = set(only)
            selected = jax.tree_util.tree_map_with_path(
                lambda path, _: bool(path_names(path) & names), state)

        def pick(new, old, sel):
            if not sel:
                return old
            return jnp.broadcast_to(jnp.asarray(new), jnp.shape(old)).astype(
                jnp.asarray(old).dtype)

        return jax.tree.map(pick, fresh, state, selected)

    def update_fn(updates, state, params=None, **extra_args):
        count = optax.safe_increment(state.count)
        reset, _, _ = _reset_phase(count, reset_interval)
        template = params if params is not None else updates
        inner_state = _control.cond(
            reset, lambda s: _fresh(template, s), lambda s: s, state.inner_state)
        updates, inner_state = inner.update(updates, inner_state, params, **extra_args)
        return updates, WithPeriodicResetState(count=count, inner_state=inner_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def post_reset_warmup(
    reset_interval: int | None = 500,
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
      reset_interval: ΔT, a positive integer (traced values allowed); None or 0: no
        resets, s(t) = 1.
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
    if reset_interval is not None and _validation.concrete_number(reset_interval) is not None:
        _validation.check_positive_int("reset_interval", reset_interval)
    _validation.check_nonnegative_int("warmup_steps", warmup_steps)
    _validation.check_interval("initial_scale", initial_scale, 0.0, 1.0, high_closed=True)

    def schedule(count):
        t = jnp.asarray(count, jnp.int32) + 1
        _, k, has_reset = _reset_phase(t, reset_interval)
        n = jnp.asarray(warmup_steps, jnp.float32)
        ramp = 1.0 - (1.0 - initial_scale) * 0.5 * (
            1.0 + jnp.cos(math.pi * k.astype(jnp.float32) / (n + 1.0)))
        warming = has_reset & (t > k) & (k < warmup_steps)  # t > k ⟺ t ≥ ΔT
        factor = jnp.where(warming, ramp, 1.0)
        value = base(count) if callable(base) else base
        return value * factor

    return schedule
