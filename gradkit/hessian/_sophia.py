# SPDX-License-Identifier: Apache-2.0
"""Sophia: clipped diagonal-Newton steps from a periodically refreshed Hessian estimate.

Sophia (Liu, Li, Hall, Liang, Ma, 2023, arXiv 2305.14342, Algorithm 3) preconditions
an EMA of gradients by an EMA of a cheap diagonal-Hessian estimate, refreshed every
``k`` steps, and clips each coordinate of the resulting step:

    m_t = β₁ m_{t−1} + (1−β₁) g_t
    h_t = β₂ h_{t−k} + (1−β₂) ĥ_t    if t mod k = 1, else h_t = h_{t−1}
    θ_{t+1} = θ_t − η_t λ θ_t − η_t · clip(m_t / max(γ h_t, ε), 1).

The estimator ĥ is Hutchinson's u ⊙ (H u) (Sophia-H), Gauss-Newton-Bartlett B · ĝ ⊙ ĝ
(Sophia-G; both in :mod:`gradkit.hessian._estimators`) or any optax transform whose
"updates" output is the estimate.

Reference implementations checked against: the official PyTorch code
(``Liuhong99/Sophia``, ``SophiaG`` and ``train_sophiag.py``) and
``optax.contrib.sophia``. Differences, comparisons and measurements: ``docs/sophia.md``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from typing import Literal
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _common
from gradkit.hessian._estimators import gnb_diag_hessian
from gradkit.hessian._estimators import hutchinson_diag_hessian

EstimatorName = Literal["hutchinson", "gnb"]
Estimator = EstimatorName | optax.GradientTransformation

# Paper defaults of γ per estimator (§3.1; also levanter's GAMMA_SOPHIA_H/_G).
GAMMA_SOPHIA_H = 0.01
GAMMA_SOPHIA_G = 0.05


def _make_estimator(estimator: Estimator, key, axis_name):
    if isinstance(estimator, str):
        _common.check_choice("estimator", estimator, ("hutchinson", "gnb"))
        if estimator == "hutchinson":
            return hutchinson_diag_hessian(key, axis_name=axis_name)
        return gnb_diag_hessian(key, axis_name=axis_name)
    if not isinstance(estimator, optax.GradientTransformation):
        raise TypeError(
            "`estimator` must be 'hutchinson', 'gnb' or an optax.GradientTransformation "
            f"returning the Hessian-diagonal estimate, got {type(estimator).__name__}.")
    return optax.with_extra_args_support(estimator)


def _default_gamma(estimator: Estimator) -> float:
    return GAMMA_SOPHIA_G if estimator == "gnb" else GAMMA_SOPHIA_H


class ScaleBySophiaState(NamedTuple):
    """State for :func:`scale_by_sophia`."""

    count: chex.Array  # int32 scalar, number of updates so far.
    mu: optax.Updates  # EMA of gradients m; params' shapes, dtype `mu_dtype` (else params').
    nu: optax.Updates  # EMA h of the Hessian-diagonal estimates; params' shapes, `nu_dtype`.
    estimator_state: Any  # The estimator's state (holds its uint32 PRNG key).
    # float32 scalar, the unclipped fraction at the last step; None (no leaf) unless
    # `track_win_rate`.
    win_rate: chex.Array | None


@jax.custom_batching.custom_vmap
def _any_over_vmap(pred: jax.Array) -> jax.Array:
    """Identity outside ``jax.vmap``; under vmap, the OR of `pred` over the mapped axes.

    Keeps the refresh predicate unbatched, so ``lax.cond`` stays a real branch under
    ``vmap`` instead of becoming a select that runs the estimator at every step.
    """
    return pred


@_any_over_vmap.def_vmap
def _any_over_vmap_rule(axis_size, in_batched, pred):
    del axis_size
    if in_batched[0]:
        pred = jnp.any(pred, axis=0)
    return _any_over_vmap(pred), False  # recursion peels enclosing vmaps one by one


def scale_by_sophia(
    b1: jax.typing.ArrayLike = 0.965,
    b2: jax.typing.ArrayLike = 0.99,
    *,
    eps: jax.typing.ArrayLike = 1e-12,
    gamma: jax.typing.ArrayLike | None = None,
    clip_threshold: jax.typing.ArrayLike = 1.0,
    update_interval: int = 10,
    estimator: Estimator = "hutchinson",
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
    refresh_at_start: bool = True,
    bias_correction: bool = False,
    track_win_rate: bool = False,
    key: int | jax.Array = 0,
    axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Rescales updates by Sophia's clipped diagonal-Newton step (no lr, no decay).

    With t = ``count + 1`` the 1-based step and k = ``update_interval``:

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1) g_t \\
        h_t &= \beta_2 h_{t-1} + (1-\beta_2)\hat h_t
            \quad\text{if } t \bmod k = 1,\ \text{else } h_t = h_{t-1} \\
        u_t &= \operatorname{clip}\big(m_t / \max(\gamma h_t, \epsilon),
            -\rho, \rho\big)

    with ρ = ``clip_threshold`` (Sophia paper, Algorithm 3, lines 4-10; h ≤ 0 gives
    |u| = ρ·sign(m), a sign step). ĥ is computed at the current params, before the
    update that uses it. The estimator runs inside ``lax.cond``, so it costs nothing
    on the other k−1 steps, also under ``jax.vmap`` (the refresh predicate is OR-ed
    over the mapped axis and each member keeps its own h by a select; see
    ``docs/sophia.md``).

    Deviations (details and tests in ``docs/sophia.md``): the official code refreshes
    after steps k, 2k, … (``refresh_at_start=False`` reproduces it exactly) and
    divides by ρ·bs·h + 1e-15; ``optax.contrib.sophia`` bias-corrects m, refreshes
    after the update and defaults to ε = 1e-8. Arguments are those of
    optax's ``scale_by_sophia`` (b1, b2 positional; the rest keyword-only), with
    ``estimator`` for its ``hessian_diagonal_fn`` and ``key`` for its seed.

    Args:
      b1: EMA rate of the gradients, in [0, 1).
      b2: EMA rate of the Hessian estimates (per refresh), in [0, 1).
      eps: ε > 0, floor of the denominator.
      gamma: γ, > 0; None takes the paper's 0.01 for Hutchinson (or a custom
        estimator) and 0.05 for ``"gnb"``.
      clip_threshold: ρ > 0, per-coordinate bound of the update.
      update_interval: k ≥ 1, estimator refresh period in steps.
      estimator: ``"hutchinson"`` (Sophia-H; needs extra arg ``obj_fn``), ``"gnb"``
        (Sophia-G; needs ``logits_fn``, optional ``mask``), or any optax transform
        whose update ``(grads, state, params, **extra_args)`` returns ĥ.
      mu_dtype: dtype of m; None keeps the params' dtype (as optax).
      nu_dtype: dtype of h; None: float32 for bf16/fp16 params (and the params' dtype
        otherwise), since a bf16 EMA with β₂ = 0.99 stalls about 20% below its target.
      refresh_at_start: True (default, the paper): ĥ is first computed at t = 1.
        False (the official code's schedule): steps 1..k use h = 0, i.e.
        u = ρ·sign(m), and the estimator first runs at t = k+1.
      bias_correction: False (default; the paper and the official ``SophiaG``).
        True: the ratio uses m/(1−β₁ᵗ) and h/(1−β₂ⁿ), n the number of refreshes so
        far; the stored m and h are the same either way.
      track_win_rate: store the paper's "win rate" (fraction of coordinates with
        |m/max(γh, ε)| < ρ at the last step; healthy 0.1-0.5) in ``state.win_rate``
        (one extra reduction over all coordinates per step). False (default): the
        state's ``win_rate`` is None, no leaf. Read it with
        ``optax.tree.get(opt_state, "win_rate")``.
      key: an int or a ``jax.random`` key of the built-in estimators (ignored for a
        custom estimator).
      axis_name: pmap/shard_map axis over which the built-in estimators average,
        so replicas never diverge (gradients must be averaged by the caller, as for
        any optimizer). A custom estimator must do this itself.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; extra args are forwarded to the
      estimator. NaN/Inf gradients make m, hence that coordinate's update, NaN/Inf
      (clip keeps ±Inf at ±ρ, NaN stays NaN) for as long as m holds them; a
      non-finite ĥ poisons h the same way. Wrap the optimizer in
      ``optax.apply_if_finite`` to skip such steps. A finite 10⁶× gradient spike
      moves each coordinate by at most ρ (times the learning rate).

    Example:
      >>> import gradkit, optax, jax.numpy as jnp
      >>> opt = optax.chain(gradkit.scale_by_sophia(estimator="hutchinson"),
      ...                   optax.scale(-1e-3))
      >>> params = jnp.ones(3)
      >>> obj_fn = lambda p: jnp.sum(p ** 2)
      >>> state = opt.init(params)
      >>> u, state = opt.update(2 * params, state, params, obj_fn=obj_fn)

    References:
      Liu et al., `Sophia: A Scalable Stochastic Second-order Optimizer for Language
      Model Pre-training <https://arxiv.org/abs/2305.14342>`_, 2023 (Algorithm 3).
    """
    _common.check_interval("b1", b1, 0.0, 1.0)
    _common.check_interval("b2", b2, 0.0, 1.0)
    if gamma is None:
        gamma = _default_gamma(estimator)
    _common.check_positive("gamma", gamma)
    _common.check_positive("eps", eps)
    _common.check_positive("clip_threshold", clip_threshold)
    if _common.concrete_number(update_interval) is not None:
        _common.check_positive_int("update_interval", update_interval)
    _common.check_float_dtype("mu_dtype", mu_dtype)
    _common.check_float_dtype("nu_dtype", nu_dtype)
    hess_fn = _make_estimator(estimator, key, axis_name)
    mu_dtype = _common.canonicalize_dtype(mu_dtype)
    nu_dtype = _common.canonicalize_dtype(nu_dtype)

    def init_fn(params):
        return ScaleBySophiaState(
            count=jnp.zeros([], jnp.int32),
            mu=optax.tree.zeros_like(params, dtype=mu_dtype),
            nu=jax.tree.map(
                lambda p: jnp.zeros(p.shape, _common.nu_dtype_for(p.dtype, nu_dtype)), params),
            estimator_state=hess_fn.init(params),
            win_rate=jnp.zeros([], jnp.float32) if track_win_rate else None,
        )

    def update_fn(updates, state, params=None, **extra_args):
        if params is None:
            raise ValueError("scale_by_sophia needs `params` (the estimator uses them).")
        grads = updates
        mu = optax.tree.update_moment(grads, state.mu, b1, 1)

        do_refresh = state.count % update_interval == 0
        if not refresh_at_start:
            do_refresh = jnp.logical_and(do_refresh, state.count > 0)

        def refresh(est_state, nu):
            diag, new_est_state = hess_fn.update(grads, est_state, params, **extra_args)
            diag = jax.tree.map(lambda d, n: d.astype(n.dtype), diag, nu)
            new_nu = optax.tree.cast_like(optax.tree.update_moment(diag, nu, b2, 1), nu)
            # Only differs from the new values under vmap with members whose
            # `do_refresh` is False while another member's is True.
            keep = functools.partial(jnp.where, do_refresh)
            return jax.tree.map(keep, new_est_state, est_state), jax.tree.map(keep, new_nu, nu)

        est_state, nu = jax.lax.cond(
            _any_over_vmap(do_refresh),
            refresh,
            lambda s, n: (s, n),
            state.estimator_state,
            state.nu,
        )

        def ratio(m, h):
            return m.astype(jnp.float32) / jnp.maximum(gamma * h.astype(jnp.float32), eps)

        if bias_correction:  # computed once per step, not per leaf
            step = optax.safe_increment(state.count).astype(jnp.float32)
            refreshes = state.count // update_interval + (1 if refresh_at_start else 0)
            m_scale = 1.0 - b1**step
            h_scale = jnp.where(refreshes > 0, 1.0 - b2 ** refreshes.astype(jnp.float32), 1.0)
            ratios = jax.tree.map(lambda m, h: ratio(m / m_scale, h / h_scale), mu, nu)
        else:
            ratios = jax.tree.map(ratio, mu, nu)
        if track_win_rate:
            unclipped = sum(jnp.sum(jnp.abs(r) < clip_threshold)
                            for r in jax.tree.leaves(ratios))
            size = max(optax.tree.size(ratios), 1)
            win_rate = (unclipped / size).astype(jnp.float32)
        else:
            win_rate = None
        new_updates = jax.tree.map(
            lambda r, g: jnp.clip(r, -clip_threshold, clip_threshold).astype(g.dtype),
            ratios, grads)
        mu = optax.tree.cast(mu, mu_dtype)
        return new_updates, ScaleBySophiaState(
            count=optax.safe_increment(state.count),
            mu=mu,
            nu=nu,
            estimator_state=est_state,
            win_rate=win_rate,
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def sophia(
    learning_rate: optax.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.965,
    b2: jax.typing.ArrayLike = 0.99,
    *,
    eps: jax.typing.ArrayLike = 1e-12,
    weight_decay: optax.ScalarOrSchedule = 0.1,
    mask: Any | Callable[[optax.Params], Any] | None = None,
    gamma: jax.typing.ArrayLike | None = None,
    clip_threshold: jax.typing.ArrayLike = 1.0,
    update_interval: int = 10,
    estimator: Estimator = "hutchinson",
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
    refresh_at_start: bool = True,
    bias_correction: bool = False,
    track_win_rate: bool = False,
    key: int | jax.Array = 0,
    axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Sophia with decoupled weight decay: θ ← θ − η_t (clip(m/max(γh, ε), ρ) + λθ).

    ``optax.chain(scale_by_sophia(...), add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate))``. The weight decay is multiplied by η_t
    and not clipped (paper Algorithm 3 line 9; official ``param.mul_(1 − lr·wd)``).
    Extra args (``obj_fn`` for Hutchinson, ``logits_fn``/``mask`` for GNB) are
    forwarded to the estimator; unknown ones are ignored.

    Arguments follow ``optax.contrib.sophia`` (learning_rate, b1, b2 positional, the
    rest keyword-only; ``mask`` is its ``weight_decay_mask``, ``estimator`` its
    ``hessian_diagonal_fn``). ``weight_decay`` defaults to 0.1, the official
    ``SophiaG`` default (optax: 1e-4); γ defaults to the paper's 0.05 (G) / 0.01 (H).

    Args:
      learning_rate: scalar ≥ 0 or schedule η_t (no default, as in optax).
      b1, b2, eps, gamma, clip_threshold, update_interval, estimator, mu_dtype,
        nu_dtype, refresh_at_start, bias_correction, track_win_rate, key, axis_name:
        see :func:`scale_by_sophia`.
      weight_decay: decoupled weight decay λ (≥ 0), multiplied by η_t.
      mask: pytree or callable selecting the leaves that get weight decay.

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> opt = gradkit.sophia(learning_rate=1e-3, estimator="gnb")
      >>> state = opt.init({"w": jnp.zeros((5, 3))})

    References:
      Liu et al., `Sophia: A Scalable Stochastic Second-order Optimizer for Language
      Model Pre-training <https://arxiv.org/abs/2305.14342>`_, 2023 (Algorithm 3).
    """
    _common.check_learning_rate(learning_rate)
    _common.check_nonnegative("weight_decay", weight_decay)
    return optax.chain(
        scale_by_sophia(
            b1, b2, eps=eps, gamma=gamma, clip_threshold=clip_threshold,
            update_interval=update_interval, estimator=estimator, mu_dtype=mu_dtype,
            nu_dtype=nu_dtype, refresh_at_start=refresh_at_start,
            bias_correction=bias_correction, track_win_rate=track_win_rate, key=key,
            axis_name=axis_name),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )


def sophia_extra_args(
    apply_fn: Callable[..., Any],
    inputs: Any,
    targets: Any | None = None,
    *,
    loss_fn: Callable[[jax.Array, Any], jax.Array] | None = None,
    mask: jax.Array | None = None,
    params_key: str | None = "params",
    **apply_kwargs: Any,
) -> dict[str, Any]:
    """Builds Sophia's extra args from a Flax ``apply_fn`` and a (params-free) batch.

    Returns ``{"obj_fn": ..., "logits_fn": ..., "mask": ...}`` (``obj_fn`` only when
    ``targets`` is given, ``mask`` only when given), to pass as
    ``opt.update(grads, state, params, **extra)``; each estimator uses what it needs.

    - ``logits_fn(params) = apply_fn({params_key: params}, inputs, **apply_kwargs)``
      (or ``apply_fn(params, inputs, ...)`` when ``params_key`` is None).
    - ``obj_fn(params)`` = the mean of ``loss_fn(logits, targets)`` over kept
      positions; the default ``loss_fn`` is integer-label softmax cross-entropy.

    Example:
      >>> import flax.linen as nn, gradkit, jax, jax.numpy as jnp
      >>> model = nn.Dense(3)
      >>> x, y = jnp.ones((4, 2)), jnp.array([0, 1, 2, 0])
      >>> params = model.init(jax.random.key(0), x)["params"]
      >>> extra = gradkit.sophia_extra_args(model.apply, x, y)
      >>> loss = extra["obj_fn"](params)
    """
    if loss_fn is None:
        loss_fn = optax.softmax_cross_entropy_with_integer_labels

    def logits_fn(params):
        variables = {params_key: params} if params_key is not None else params
        return apply_fn(variables, inputs, **apply_kwargs)

    extra: dict[str, Any] = {"logits_fn": logits_fn}
    if targets is not None:

        def obj_fn(params):
            losses = loss_fn(logits_fn(params).astype(jnp.float32), targets)
            if mask is None:
                return jnp.mean(losses)
            w = jnp.broadcast_to(jnp.asarray(mask, jnp.float32), losses.shape)
            return jnp.sum(losses * w) / jnp.maximum(jnp.sum(w), 1.0)

        extra["obj_fn"] = obj_fn
    if mask is not None:
        extra["mask"] = mask
    return extra
