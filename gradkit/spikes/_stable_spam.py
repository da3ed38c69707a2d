# SPDX-License-Identifier: Apache-2.0
"""Stable-SPAM: adaptive spike clipping, adaptive norm scaling, momentum reset.

Huang et al., 2025, arXiv 2502.17055, Algorithm 1; checked against the official
``TianjinYellow/StableSPAM`` ``galore_torch/stablespam.py`` and pytorch-optimizer's
``StableSPAM``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _common
from gradkit.spikes import _count
from gradkit.spikes import _reset


class ScaleByStableSpamState(NamedTuple):
    """State for :func:`scale_by_stable_spam`."""

    count: chex.Array  # int32 scalar, updates so far (global T, never reset).
    step: chex.Array  # int32 scalar, bias-correction step s (set back to 1 at resets).
    mu: optax.Updates  # First moment, params' shapes, mu_dtype (else params').
    nu: optax.Updates  # Second moment, params' shapes, nu_dtype (float32 for bf16).
    m_max: optax.Updates  # float32 scalar per leaf, EMA of max|g| (γ3).
    m_norm: optax.Updates  # float32 scalar per leaf, EMA of ‖g‖ (γ1·κ).
    v_norm: optax.Updates  # float32 scalar per leaf, EMA of ‖g‖² (γ2).
    # int32 scalar, entries clipped at the last counted step; None unless counted.
    num_clipped: chex.Array | None = None


def _momentum_scale(count, total_steps, eta_min):
    """Official ``CosineDecay(1.0, total_T, eta_min)`` at step T (clamped at total_T+1)."""
    if total_steps is None:
        return jnp.asarray(1.0, jnp.float32)
    period = jnp.asarray(total_steps, jnp.float32) + 1.0
    t = jnp.minimum(count.astype(jnp.float32), period)
    return eta_min + (1.0 - eta_min) * 0.5 * (1.0 + jnp.cos(math.pi * t / period))


def scale_by_stable_spam(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    *,
    gamma1: jax.typing.ArrayLike = 0.7,
    gamma2: jax.typing.ArrayLike = 0.9,
    gamma3: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    total_steps: int | None = None,
    eta_min: jax.typing.ArrayLike = 0.5,
    reset_interval: int | None = 1000,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
    count_interval: int | None = None,
) -> optax.GradientTransformation:
    r"""Stable-SPAM's direction: AdaClip + AdaGN + momentum reset, then Adam.

    Per leaf (tensor) at global step T (1-based), with bias-correction step s:

    .. math::

        &M_T = \gamma_3 M_{T-1} + (1-\gamma_3)\max|g|,\quad
          \hat M = M_T/(1-\gamma_3^{s}),\quad
          g \leftarrow \frac{g}{\max|g|}\,\hat M \ \text{ where } |g| > \hat M
          \quad\text{(AdaClip)}\\
        &n_T = \gamma_1\kappa_T\, n_{T-1} + (1-\gamma_1\kappa_T)\|g\|,\quad
          q_T = \gamma_2 q_{T-1} + (1-\gamma_2)\|g\|^2,\quad
          g \leftarrow \frac{g}{\|g\|}\cdot
          \frac{n_T/(1-(\gamma_1\kappa_T)^{s})}{\sqrt{q_T/(1-\gamma_2^{s})} + \epsilon}
          \quad\text{(AdaGN)}\\
        &\text{if } T \bmod \Delta T = 0:\ m, v \leftarrow 0,\ s \leftarrow 1
          \quad\text{(momentum reset)}\\
        &m \leftarrow \beta_1\kappa_T\, m + (1-\beta_1\kappa_T)\,g,\quad
          v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
          u = \frac{m/(1-(\beta_1\kappa_T)^{s})}{\sqrt{v/(1-\beta_2^{s})} + \epsilon}

    where κ_T = η_min + (1−η_min)·½(1 + cos(πT/(T_total+1))) decays from 1 to
    ``eta_min`` = 0.5 over ``total_steps`` (κ = 1 when ``total_steps`` is None). The
    bookkeeping is the official code's: s is incremented every step and set back to 1
    at a reset *after* AdaClip/AdaGN have used it, and the EMAs M, n, q are never
    reset, so right after a reset their bias corrections (with small s) inflate M̂
    (clipping pauses) and n̂, q̂ for a few steps. max|g| and ‖g‖ are per tensor; AdaGN
    is skipped for an all-zero tensor. ε = 1e-8 in both places, as the official code.
    Defaults are the official code's (γ1 0.7, γ2 0.9, γ3 0.999, η_min 0.5, ΔT 1000;
    its README runs use ΔT 500). The official code has no post-reset learning-rate
    warm-up. ``gamma1=-1`` means γ1 = β₁ (official convention).

    Differences from the official code:

    * At a reset step T we follow the paper: m and v are zeroed *before* the step-T
      update, so that update is a first Adam step (s = 1) on fresh moments. The
      official ``stablespam.py`` resets one step late: it stores new zero tensors in
      ``state["exp_avg"]``/``state["exp_avg_sq"]`` after the local names used by the
      update were bound to the old ones, so its step-T update advances and uses the
      old moments (debiased with s = 1), and the zeroed moments are first used at
      step T+1 (with s = 2).
    * Past ``total_steps`` the official cosine (period T_total+1) rises again; here κ
      stays at ``eta_min``.

    pytorch-optimizer's ``StableSPAM`` skips the whole update of an all-zero tensor and
    bias-corrects M with the global T; we follow the official code there.

    NaN/Inf: a NaN or Inf anywhere in a tensor makes max|g| and ‖g‖ non-finite, which
    poisons that tensor's EMAs M, n, q (and so every later update of that tensor).
    Wrap the optimizer in ``optax.apply_if_finite`` (tested) to skip such steps.

    Args:
      b1: β₁ in [0, 1) (multiplied by κ_T).
      b2: β₂ in [0, 1).
      gamma1: γ1 in [0, 1) (or −1 for β₁), EMA decay of ‖g‖ (multiplied by κ_T).
      gamma2: γ2 in [0, 1), EMA decay of ‖g‖².
      gamma3: γ3 in [0, 1), EMA decay of max|g| (the paper's θ).
      eps: ε ≥ 0.
      total_steps: T_total for the κ cosine, a positive integer or None (κ = 1).
      eta_min: final κ, in [0, 1].
      reset_interval: ΔT, positive integer; None (or 0) disables resets.
      mu_dtype: dtype of m; None keeps the params' dtype.
      nu_dtype: dtype of v; None: float32 for bfloat16/float16 params, else the
        params' dtype.
      count_interval: None (default): no count of AdaClip's clipped entries, the
        state's ``num_clipped`` is None; k ≥ 1: ``num_clipped`` (int32) holds the
        entries clipped at the last update T with T % k == 0 (1: every update). Static.

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import gradkit, optax
      >>> opt = optax.chain(gradkit.scale_by_stable_spam(total_steps=10_000),
      ...                   optax.scale(-1e-3))

    References:
      Huang et al., `Stable-SPAM: How to Train in 4-Bit More Stably than 16-Bit Adam
      <https://arxiv.org/abs/2502.17055>`_, 2025 (Algorithm 1).
    """
    _common.check_interval("b1", b1, 0.0, 1.0)
    _common.check_interval("b2", b2, 0.0, 1.0)
    if _common.concrete_number(gamma1) != -1.0:
        _common.check_interval("gamma1", gamma1, 0.0, 1.0)
    _common.check_interval("gamma2", gamma2, 0.0, 1.0)
    _common.check_interval("gamma3", gamma3, 0.0, 1.0)
    _common.check_nonnegative("eps", eps)
    _common.check_interval("eta_min", eta_min, 0.0, 1.0, high_closed=True)
    if total_steps is not None and not isinstance(total_steps, jax.Array):
        _common.check_positive_int("total_steps", total_steps)
    _reset.check_reset_interval(reset_interval)
    _common.check_float_dtype("mu_dtype", mu_dtype)
    _common.check_float_dtype("nu_dtype", nu_dtype)
    count_interval = _count.check_count_interval(count_interval)
    mu_dtype = _common.canonicalize_dtype(mu_dtype)
    nu_dtype = _common.canonicalize_dtype(nu_dtype)

    def init_fn(params):
        scalars = lambda: jax.tree.map(  # noqa: E731
            lambda _: jnp.zeros([], jnp.float32), params)
        return ScaleByStableSpamState(
            count=jnp.zeros([], jnp.int32),
            step=jnp.zeros([], jnp.int32),
            mu=optax.tree.zeros_like(params, dtype=mu_dtype),
            nu=jax.tree.map(
                lambda p: jnp.zeros(jnp.shape(p), _common.nu_dtype_for(p.dtype, nu_dtype)),
                params),
            m_max=scalars(),
            m_norm=scalars(),
            v_norm=scalars(),
            num_clipped=_count.initial_count(count_interval),
        )

    def update_fn(updates, state, params=None):
        del params
        _common.check_same_structure(updates, state.mu)
        # Same float32 arithmetic for Python-number and injected hyperparameters.
        b1_, b2_, gamma1_, gamma2_, gamma3_, eps_, eta_min_ = (
            jnp.asarray(x, jnp.float32)
            for x in (b1, b2, gamma1, gamma2, gamma3, eps, eta_min))
        count = optax.safe_increment(state.count)
        step = optax.safe_increment(state.step)
        kappa = _momentum_scale(count, total_steps, eta_min_)
        g1 = jnp.where(gamma1_ == -1.0, b1_, gamma1_) * kappa
        s = step.astype(jnp.float32)
        reset, _, _ = _reset.reset_phase(count, reset_interval)
        s_adam = jnp.where(reset, 1.0, s)
        beta1 = b1_ * kappa
        bc1 = 1.0 - beta1**s_adam
        bc2 = 1.0 - b2_**s_adam

        def adaclip(g, m_max):
            max_g = jnp.max(jnp.abs(g), initial=0.0)
            m_max = gamma3_ * m_max + (1.0 - gamma3_) * max_g
            m_max_hat = m_max / (1.0 - gamma3_**s)
            spike = jnp.abs(g) > m_max_hat
            return jnp.where(spike, g / max_g * m_max_hat, g), spike, m_max

        def leaf(g, m, v, m_max, m_norm, v_norm):
            g, spike, m_max = adaclip(g.astype(jnp.float32), m_max)
            sq_norm = jnp.sum(g * g)
            norm = jnp.sqrt(sq_norm)
            m_norm = g1 * m_norm + (1.0 - g1) * norm
            v_norm = gamma2_ * v_norm + (1.0 - gamma2_) * sq_norm
            m_norm_hat = m_norm / (1.0 - g1**s)
            v_norm_hat = v_norm / (1.0 - gamma2_**s)
            c = m_norm_hat / (jnp.sqrt(v_norm_hat) + eps_)
            g = jnp.where(norm > 0, g / norm * c, g)  # AdaGN, skipped for an all-zero g
            m_in = jnp.where(reset, 0.0, m.astype(jnp.float32))
            v_in = jnp.where(reset, 0.0, v.astype(jnp.float32))
            m = (beta1 * m_in + (1.0 - beta1) * g).astype(m.dtype)
            v = (b2_ * v_in + (1.0 - b2_) * g * g).astype(v.dtype)
            u = (m.astype(jnp.float32) / bc1) / (
                jnp.sqrt(v.astype(jnp.float32)) / jnp.sqrt(bc2) + eps_)
            return u, spike, m, v, m_max, m_norm, v_norm

        out = jax.tree.map(leaf, updates, state.mu, state.nu, state.m_max, state.m_norm,
                           state.v_norm)
        is_tuple = lambda x: isinstance(x, tuple)  # noqa: E731
        part = lambda i: jax.tree.map(lambda o: o[i], out, is_leaf=is_tuple)  # noqa: E731
        u = jax.tree.map(lambda u, g: u.astype(g.dtype), part(0), updates)
        return u, ScaleByStableSpamState(
            count=count,
            step=jnp.where(reset, 1, step).astype(jnp.int32),
            mu=part(2),
            nu=part(3),
            m_max=part(4),
            m_norm=part(5),
            v_norm=part(6),
            num_clipped=_count.num_clipped(count_interval, count, state.num_clipped,
                                           lambda: jax.tree.leaves(part(1))),
        )

    return optax.GradientTransformation(init_fn, update_fn)


def stable_spam(
    learning_rate: optax.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    *,
    gamma1: jax.typing.ArrayLike = 0.7,
    gamma2: jax.typing.ArrayLike = 0.9,
    gamma3: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
    total_steps: int | None = None,
    eta_min: jax.typing.ArrayLike = 0.5,
    reset_interval: int | None = 1000,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    mask: Any | Callable[[optax.Params], Any] | None = None,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
    count_interval: int | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Stable-SPAM with decoupled weight decay: x ← x − η_t (u_t + λ x).

    ``optax.chain(scale_by_stable_spam(...), optax.add_decayed_weights(weight_decay,
    mask), optax.scale_by_learning_rate(learning_rate))``. The official code multiplies
    p by (1 − η·λ) before the Adam step, which is exactly this (decay on the pre-step
    parameters, multiplied by η).

    Args:
      learning_rate: scalar or schedule η_t (the official default is 1e-3).
      b1, b2: see :func:`scale_by_stable_spam`.
      gamma1, gamma2, gamma3, eps, total_steps, eta_min, reset_interval, mu_dtype,
        nu_dtype, count_interval: see :func:`scale_by_stable_spam`.
      weight_decay: decoupled weight decay λ ≥ 0, multiplied by η_t.
      mask: pytree or callable selecting the leaves that get weight decay.

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> opt = gradkit.stable_spam(1e-3, total_steps=10_000)
      >>> state = opt.init({"w": jnp.ones((4, 3))})

    References:
      Huang et al., `Stable-SPAM: How to Train in 4-Bit More Stably than 16-Bit Adam
      <https://arxiv.org/abs/2502.17055>`_, 2025 (Algorithm 1).
    """
    _common.check_learning_rate(learning_rate)
    _common.check_nonnegative("weight_decay", weight_decay)
    return optax.chain(
        scale_by_stable_spam(
            b1, b2, gamma1=gamma1, gamma2=gamma2, gamma3=gamma3, eps=eps,
            total_steps=total_steps, eta_min=eta_min, reset_interval=reset_interval,
            mu_dtype=mu_dtype, nu_dtype=nu_dtype, count_interval=count_interval),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )
