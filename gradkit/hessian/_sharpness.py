# SPDX-License-Identifier: Apache-2.0
"""Sharpness, preconditioned sharpness, stability thresholds and a periodic tracking hook.

Cohen et al. 2021 (arXiv 2103.00065): under full-batch gradient descent λ_max(H) rises to
the stability threshold 2/η (the edge of stability); Cohen et al. 2022 (arXiv 2207.14484):
under Adam the preconditioned sharpness λ_max(P⁻¹H) equilibrates at (2+2β₁)/((1−β₁)η).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _common
from gradkit.hessian._hvp import LossFn
from gradkit.hessian._sophia import ScaleBySophiaState
from gradkit.hessian._spectrum import hessian_top_eigenvalues


def edge_of_stability_threshold(learning_rate: float, b1: float = 0.0) -> float:
    r"""Stability threshold of (EMA-momentum) gradient descent on a quadratic: (2+2β₁)/((1−β₁)η).

    Gradient descent x ← x − η P⁻¹ m with EMA momentum m ← β₁ m + (1−β₁) g on a
    quadratic of (preconditioned) curvature λ diverges iff λ > (2+2β₁)/((1−β₁)η).
    β₁ = 0 gives plain GD's 2/η (Cohen et al. 2021); Adam's default β₁ = 0.9 gives
    38/η (Cohen et al. 2022, §2, for the preconditioned sharpness λ₁(P⁻¹H)). For
    heavy-ball momentum written v ← βv + g (PyTorch SGD) the threshold is (2+2β)/η
    instead (pass ``learning_rate = η/(1−β)`` to use this function for it).

    Args:
      learning_rate: η > 0.
      b1: EMA momentum β₁ in [0, 1).

    Returns:
      The threshold, a float.

    Example:
      >>> import gradkit
      >>> gradkit.edge_of_stability_threshold(0.01, b1=0.9)  # 38/η
      3800.0...

    References:
      Cohen et al., `Gradient Descent on Neural Networks Typically Occurs at the Edge of
      Stability <https://arxiv.org/abs/2103.00065>`_, 2021 (§2: 2/η).

      Cohen et al., `Adaptive Gradient Methods at the Edge of Stability
      <https://arxiv.org/abs/2207.14484>`_, 2022 (§2: (2+2β₁)/((1−β₁)η) = 38/η).
    """
    _common.check_positive("learning_rate", learning_rate)
    _common.check_interval("b1", b1, 0.0, 1.0)
    return (2.0 + 2.0 * b1) / ((1.0 - b1) * learning_rate)


def adam_preconditioner(
    opt_state: Any,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
) -> Any:
    r"""Adam's diagonal preconditioner P read from an optax Adam/AdamW state.

    optax's Adam step after t updates is u = m̂/(√ν̂ + ε) with m̂ = m/(1−β₁ᵗ),
    ν̂ = ν/(1−β₂ᵗ); written as u = P⁻¹ m with the raw EMA m,

    .. math::

        P = (1-\beta_1^t)\,\big(\sqrt{\nu/(1-\beta_2^t) + \epsilon_{root}} + \epsilon\big),

    Cohen et al. 2022's definition, whose preconditioned sharpness λ₁(P⁻¹H) is compared
    with (2+2β₁)/((1−β₁)η) (:func:`edge_of_stability_threshold`). Uses the state's ν and
    count t (the preconditioner of the last step; the next step's ν differs by one EMA
    update). Before the first update (t = 0) ν = 0 and P is meaningless (t is taken as 1).

    Args:
      opt_state: a state holding exactly one ``optax.ScaleByAdamState`` (from
        ``optax.adam``/``adamw``/``scale_by_adam``, possibly inside chains/wrappers).
      b1, b2, eps, eps_root: the optimizer's hyperparameters.

    Returns:
      A pytree like the params of positive entries P.

    Example:
      >>> import gradkit, optax, jax.numpy as jnp
      >>> opt = optax.adam(1e-3)
      >>> p = jnp.ones(3)
      >>> _, state = opt.update(p, opt.init(p), p)
      >>> P = gradkit.adam_preconditioner(state)  # (1−0.9)·(|g| + 1e-8) = 0.1

    References:
      Cohen et al., `Adaptive Gradient Methods at the Edge of Stability
      <https://arxiv.org/abs/2207.14484>`_, 2022 (§2, the Adam preconditioner).
    """
    adam = _common.find_state(opt_state, optax.ScaleByAdamState, "adam_preconditioner")
    t = jnp.maximum(adam.count, 1).astype(jnp.float32)
    c1, c2 = 1.0 - b1**t, 1.0 - b2**t
    return jax.tree.map(
        lambda nu: c1 * (jnp.sqrt(nu.astype(jnp.float32) / c2 + eps_root) + eps), adam.nu)


def sophia_preconditioner(opt_state: Any, *, gamma: float = 0.01, eps: float = 1e-12) -> Any:
    r"""Sophia's diagonal preconditioner P = max(γh, ε) read from a gradkit Sophia state.

    Sophia's unclipped coordinates move by m/max(γh, ε) = P⁻¹m (raw EMA m, β₁ = 0.965),
    so λ₁(P⁻¹H) against (2+2β₁)/((1−β₁)η) is its edge-of-stability diagnostic; clipped
    coordinates move by ±ρη whatever the curvature, so this is only indicative while the
    win rate is well below 1.

    Args:
      opt_state: a state holding exactly one :class:`gradkit.ScaleBySophiaState`.
      gamma, eps: Sophia's γ and ε.

    Returns:
      A pytree like the params of positive entries P.

    References:
      Liu et al., `Sophia <https://arxiv.org/abs/2305.14342>`_, 2023 (Algorithm 3).
    """
    sophia = _common.find_state(opt_state, ScaleBySophiaState, "sophia_preconditioner")
    return jax.tree.map(lambda h: jnp.maximum(gamma * h.astype(jnp.float32), eps), sophia.nu)


def sharpness(
    loss_fn: LossFn,
    params: Any,
    *extra: Any,
    preconditioner: Any | None = None,
    num_iterations: int = 20,
    key: int | jax.Array = 0,
    axis_name: str | None = None,
) -> jax.Array:
    r"""λ_max(∇²L(θ)) (or the preconditioned λ_max(P⁻¹∇²L(θ))) by Lanczos.

    ``hessian_top_eigenvalues(loss_fn, params, *extra, k=1, method="lanczos", ...)``
    with 20 Lanczos steps by default (enough for an isolated top eigenvalue; increase
    it when the top of the spectrum is crowded).

    Args:
      loss_fn: ``loss_fn(params, *extra) -> scalar`` (the full-batch loss for the edge
        of stability).
      params: the point θ.
      *extra: further positional arguments of ``loss_fn``.
      preconditioner: None, or P as from :func:`adam_preconditioner`.
      num_iterations: Lanczos steps.
      key: an int or a ``jax.random`` key for the start vector.
      axis_name: data-parallel axis (see :func:`gradkit.hvp`).

    Returns:
      A float scalar.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> s = gradkit.sharpness(lambda p: 2.0 * jnp.sum(p ** 2), jnp.ones(3))  # 4

    References:
      Cohen et al., `Gradient Descent on Neural Networks Typically Occurs at the Edge of
      Stability <https://arxiv.org/abs/2103.00065>`_, 2021; Cohen et al., `Adaptive
      Gradient Methods at the Edge of Stability <https://arxiv.org/abs/2207.14484>`_, 2022.
    """
    values, _ = hessian_top_eigenvalues(loss_fn, params, *extra, k=1,
                                        num_iterations=num_iterations, key=key,
                                        preconditioner=preconditioner, axis_name=axis_name)
    return values[0]


def preconditioned_sharpness(loss_fn: LossFn, params: Any, preconditioner: Any, *extra: Any,
                             **kwargs: Any) -> jax.Array:
    r"""λ_max(P⁻¹∇²L(θ)): :func:`sharpness` with a required diagonal preconditioner P.

    .. math::

        \lambda_1(P^{-1}H) = \lambda_1(P^{-1/2} H P^{-1/2}),

    the quantity that equilibrates at (2+2β₁)/((1−β₁)η) under full-batch Adam
    (:func:`edge_of_stability_threshold`; P from :func:`adam_preconditioner`).

    Args:
      loss_fn: ``loss_fn(params, *extra) -> scalar``.
      params: the point θ.
      preconditioner: a pytree like ``params`` of positive entries P.
      *extra: further positional arguments of ``loss_fn``.
      **kwargs: ``num_iterations``, ``key``, ``axis_name`` of :func:`sharpness`.

    Returns:
      A float scalar.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> s = gradkit.preconditioned_sharpness(lambda p: jnp.sum(p ** 2), jnp.ones(2),
      ...                                      jnp.array([1.0, 4.0]))  # max(2/1, 2/4) = 2

    References:
      Cohen et al., `Adaptive Gradient Methods at the Edge of Stability
      <https://arxiv.org/abs/2207.14484>`_, 2022 (§2, preconditioned sharpness).
    """
    return sharpness(loss_fn, params, *extra, preconditioner=preconditioner, **kwargs)


class TrackSharpnessState(NamedTuple):
    """State for :func:`track_sharpness`."""

    count: chex.Array  # int32 scalar, number of updates so far.
    sharpness: chex.Array  # float32 scalar, λ_max(H) at the last measurement (NaN before).
    # float32 scalar, λ_max(P⁻¹H) at the last measurement (NaN at t = 0); None (no leaf)
    # without a `preconditioner_fn`.
    preconditioned_sharpness: chex.Array | None
    key: chex.Array  # uint32[2] raw PRNG key data for the Lanczos start vectors.
    inner_state: Any  # the wrapped optimizer's state.


def track_sharpness(
    inner: optax.GradientTransformation,
    sharpness_interval: int,
    *,
    num_iterations: int = 20,
    preconditioner_fn: Callable[[Any], Any] | None = None,
    key: int | jax.Array = 0,
    axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Wraps any optax optimizer to measure the sharpness every k steps.

    At updates t = 0, k, 2k, … (k = ``sharpness_interval``; t = the state's ``count``
    before the update) it computes, at the current params (before this step's update),
    λ_max(H) by :func:`sharpness` on the extra arg ``obj_fn(params)`` and, when
    ``preconditioner_fn`` is given, λ_max(P⁻¹H) with P = ``preconditioner_fn(inner
    state)`` (e.g. :func:`adam_preconditioner`; NaN at t = 0, before any update;
    without ``preconditioner_fn`` the state's ``preconditioned_sharpness`` is None).
    Both are kept in the state until the next measurement, so a training loop logs
    them with ``optax.tree_utils.tree_get(state, "sharpness")`` at no cost. The
    measurement runs inside ``lax.cond``: the other steps cost one comparison. The
    wrapped optimizer's update is unchanged (it also receives ``obj_fn`` and the other
    extra args).

    Args:
      inner: the optimizer to wrap.
      sharpness_interval: k ≥ 1, steps between measurements.
      num_iterations: Lanczos steps per measurement.
      preconditioner_fn: optional ``inner_state -> P``.
      key: an int or a ``jax.random`` key for the Lanczos start vectors (split at every
        measurement).
      axis_name: data-parallel axis (see :func:`gradkit.hvp`).

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose update needs the keyword extra
      arg ``obj_fn(params) -> scalar``.

    Example:
      >>> import gradkit, optax, jax.numpy as jnp
      >>> opt = gradkit.track_sharpness(optax.sgd(0.1), sharpness_interval=10)
      >>> p = jnp.ones(3)
      >>> obj_fn = lambda p: jnp.sum(p ** 2)
      >>> u, state = opt.update(2 * p, opt.init(p), p, obj_fn=obj_fn)
      >>> float(state.sharpness)  # λ_max = 2
      2.0...

    References:
      Cohen et al., `Gradient Descent on Neural Networks Typically Occurs at the Edge of
      Stability <https://arxiv.org/abs/2103.00065>`_, 2021 (sharpness tracked during
      training).
    """
    _common.check_positive_int("sharpness_interval", sharpness_interval)
    _common.check_positive_int("num_iterations", num_iterations)
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        nan = jnp.full([], jnp.nan, jnp.float32)
        return TrackSharpnessState(
            count=jnp.zeros([], jnp.int32), sharpness=nan,
            preconditioned_sharpness=None if preconditioner_fn is None else nan,
            key=_common.key_data(key), inner_state=inner.init(params))

    def update_fn(updates, state, params=None, *, obj_fn=None, **extra_args):
        if obj_fn is None:
            raise ValueError("track_sharpness needs the keyword extra arg `obj_fn`: call "
                             "`opt.update(grads, state, params, obj_fn=...)`.")
        if params is None:
            raise ValueError("track_sharpness needs `params`.")
        next_key, sub = jax.random.split(jax.random.wrap_key_data(state.key))

        def measure(_):
            k1, k2 = jax.random.split(sub)
            lam = sharpness(obj_fn, params, num_iterations=num_iterations, key=k1,
                            axis_name=axis_name).astype(jnp.float32)
            if preconditioner_fn is None:
                return lam, None
            p = preconditioner_fn(state.inner_state)
            plam = sharpness(obj_fn, params, preconditioner=p, num_iterations=num_iterations,
                             key=k2, axis_name=axis_name).astype(jnp.float32)
            return lam, jnp.where(state.count > 0, plam, jnp.nan)

        lam, plam = jax.lax.cond(
            state.count % sharpness_interval == 0, measure,
            lambda _: (state.sharpness, state.preconditioned_sharpness), None)
        new_updates, inner_state = inner.update(updates, state.inner_state, params,
                                                obj_fn=obj_fn, **extra_args)
        return new_updates, TrackSharpnessState(
            count=optax.safe_increment(state.count), sharpness=lam,
            preconditioned_sharpness=plam, key=jax.random.key_data(next_key),
            inner_state=inner_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
