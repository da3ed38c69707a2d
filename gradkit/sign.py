# SPDX-License-Identifier: Apache-2.0
"""Sign momentum: Lion and the Lion-K family.

Lion (Chen et al., 2023, arXiv 2302.06675, Algorithm 2) was found by program
search; Lion-K (Chen, Liu, Liang, Liu, 2023, arXiv 2310.05898, Eq. (2)) shows it is
one member of a family obtained by replacing ``sign`` with the gradient ∇K of any
convex function K. With decoupled weight decay λ, Lion-K solves

    min_x f(x) + K*(λx) / λ,

where K* is the convex conjugate of K. For K = ‖·‖₁ (Lion), K* is the indicator of
the unit ℓ∞ ball, i.e. Lion solves ``min f(x) s.t. ‖x‖∞ ≤ 1/λ``.

Checked against ``optax.lion`` (identical to float32 round-off; see tests) and the
Lion paper's Algorithm 2 pseudo-code (``google/automl`` ``lion_pytorch.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import Literal
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _common

KappaName = Literal["sign", "identity", "huber", "tanh", "relativistic"]
Kappa = KappaName | Callable[[jax.Array], jax.Array]

KAPPA_NAMES: tuple[str, ...] = ("sign", "identity", "huber", "tanh", "relativistic")


def kappa_fn(kappa: Kappa, a: float = 1.0) -> Callable[[jax.Array], jax.Array]:
    """Returns the elementwise ∇K for a named kappa (or `kappa` itself if callable).

    ========================  ==============================  ==========================
    ``kappa``                 ∇K(x)                           K(x) (per coordinate)
    ========================  ==============================  ==========================
    ``"sign"`` (Lion)         sign(x)                         |x|
    ``"identity"``            x                               x²/2
    ``"huber"``               clip(x, -a, a)/a                Huber: x²/(2a) or |x|-a/2
    ``"tanh"``                tanh(a·x)                       log cosh(a·x)/a
    ``"relativistic"``        x/√(x²+a²)                      √(x²+a²)
    ========================  ==============================  ==========================

    Constraint / regulariser that Lion-K then enforces with weight decay λ (from
    K*, Lion-K paper §3): ``sign`` ‖x‖∞ ≤ 1/λ; ``identity`` (λ/2)‖x‖² (plain
    momentum SGD with L2 decay); ``huber`` ‖x‖∞ ≤ 1/λ plus (aλ/2)‖x‖²; ``tanh``
    ‖x‖∞ ≤ 1/λ plus a binary-entropy penalty; ``relativistic`` ‖x‖∞ ≤ 1/λ plus
    the barrier −(a/λ)Σ√(1−λ²x²).
    """
    if callable(kappa):
        return kappa
    _common.check_choice("kappa", kappa, KAPPA_NAMES)
    _common.check_positive("a", a)
    if kappa == "sign":
        return jnp.sign
    if kappa == "identity":
        return lambda x: x
    if kappa == "huber":
        return lambda x: jnp.clip(x, -a, a) / a
    if kappa == "tanh":
        return lambda x: jnp.tanh(a * x)
    return lambda x: x * jax.lax.rsqrt(x * x + a * a)  # relativistic


def _check_kappa_preserves_shape(fn: Callable[[jax.Array], jax.Array]) -> None:
    """Raises `TypeError` if a callable kappa is not elementwise (shape-preserving)."""
    probe = jax.ShapeDtypeStruct((3, 2), jnp.float32)
    try:
        out = jax.eval_shape(fn, probe)
    except Exception as e:
        raise TypeError(
            f"`kappa` must be an elementwise function of one array; calling it on a "
            f"float32[3, 2] array failed with: {e}"
        ) from e
    if not hasattr(out, "shape") or out.shape != probe.shape:
        got = getattr(out, "shape", type(out).__name__)
        raise TypeError(
            f"`kappa` must preserve its input's shape (it is applied elementwise); "
            f"it mapped shape (3, 2) to {got}."
        )


class ScaleByLionKState(NamedTuple):
    """State for :func:`scale_by_lion_k`."""

    count: chex.Array  # int32 scalar, number of updates so far.
    mu: optax.Updates  # Same tree/shapes as params, dtype `mu_dtype` (else params').


def scale_by_lion_k(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.99,
    *,
    kappa: Kappa = "sign",
    a: float = 1.0,
    mu_dtype: Any | None = None,
) -> optax.GradientTransformation:
    r"""Rescales updates with the Lion-K rule (sign momentum for ``kappa="sign"``).

    .. math::

        c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\qquad
        u_t = \nabla K(c_t),\qquad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t.

    This is Lion-K's Eq. (2) (and Lion's Algorithm 2, lines 5-8) without the
    learning rate and weight decay, which :func:`lion_k` adds. The official Lion
    code and ``optax.scale_by_lion`` compute the same; we follow them exactly,
    including the order of operations, so :func:`lion` equals ``optax.lion``.

    Overlap with ``optax.scale_by_lion(mode=...)`` (optax 0.2.8; equal, tested):
    ``kappa="tanh", a=β`` is ``mode="smooth", smooth_beta=β``, and
    ``kappa="huber", a=1`` is ``mode="refined"`` (linear inside [−1, 1], sign
    outside). optax has no ``identity``/``relativistic`` kappa, no Huber width
    ``a ≠ 1`` and no custom ∇K.

    Args:
      b1: interpolation between momentum and gradient for the update, in [0, 1).
      b2: decay of the momentum EMA, in [0, 1).
      kappa: one of ``"sign"``, ``"identity"``, ``"huber"``, ``"tanh"``,
        ``"relativistic"`` (see :func:`kappa_fn` for K and the implied
        constraint) or a callable elementwise ∇K that preserves shape.
      a: scale of the ``huber``, ``tanh`` and ``relativistic`` kappas, > 0.
      mu_dtype: dtype of the momentum; ``None`` keeps the params' dtype.

    Returns:
      An ``optax.GradientTransformation``. NaN/Inf in a gradient propagate into
      that coordinate's update and momentum (as in optax); wrap the optimizer in
      ``optax.apply_if_finite`` to skip such steps. A huge finite spike moves each
      coordinate by at most one step for ``sign`` (the update is bounded by 1 in
      ℓ∞ for every named kappa except ``identity``), but stays in the momentum
      for ~1/(1−b2) steps. Updates whose pytree structure differs from the
      params' raise a ``ValueError`` at the first call.

    Example:
      >>> import gradkit, optax
      >>> opt = optax.chain(gradkit.scale_by_lion_k(kappa="tanh", a=10.0),
      ...                   optax.scale(-1e-4))

    References:
      Chen et al., `Symbolic Discovery of Optimization Algorithms
      <https://arxiv.org/abs/2302.06675>`_, 2023 (Algorithm 2).

      Chen, Liu, Liang, Liu, `Lion Secretly Solves Constrained Optimization: As
      Lyapunov Predicts <https://arxiv.org/abs/2310.05898>`_, 2023 (Eq. (2), §3).
    """
    _common.check_interval("b1", b1, 0.0, 1.0)
    _common.check_interval("b2", b2, 0.0, 1.0)
    grad_k = kappa_fn(kappa, a)
    if callable(kappa):
        _check_kappa_preserves_shape(grad_k)
    mu_dtype = _common.canonicalize_dtype(mu_dtype)

    def init_fn(params):
        mu = optax.tree.zeros_like(params, dtype=mu_dtype)
        return ScaleByLionKState(count=jnp.zeros([], jnp.int32), mu=mu)

    def _direction(g, m):
        c = (1.0 - b1) * g + b1 * m
        u = grad_k(c)
        if u.shape != c.shape:
            raise TypeError(
                f"`kappa` must preserve shape; it mapped {c.shape} to {u.shape}."
            )
        return u.astype(g.dtype)

    def update_fn(updates, state, params=None):
        del params
        _common.check_same_structure(updates, state.mu)
        new_updates = jax.tree.map(_direction, updates, state.mu)
        mu = optax.tree.update_moment(updates, state.mu, b2, 1)
        mu = optax.tree.cast(mu, mu_dtype)
        count = optax.safe_increment(state.count)
        return new_updates, ScaleByLionKState(count=count, mu=mu)

    return optax.GradientTransformation(init_fn, update_fn)


def lion_k(
    learning_rate: optax.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.99,
    *,
    kappa: Kappa = "sign",
    a: float = 1.0,
    mu_dtype: Any | None = None,
    weight_decay: optax.ScalarOrSchedule = 1e-3,
    mask: Any | Callable[[optax.Params], Any] | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Lion-K with decoupled weight decay: x ← x − η_t (∇K(c_t) + λ x).

    ``optax.chain(scale_by_lion_k(...), add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate))``; the weight decay is multiplied by the
    learning rate, as in the papers, the official code and ``optax.lion``.

    Special cases (tested): ``kappa="sign"`` is :func:`lion`. ``kappa="identity"``
    with ``b1 = b2 = β`` is heavy-ball SGD ``optax.sgd(η(1−β), momentum=β)``, since
    m_t = (1−β)·trace_t; with ``b1 = β²``, ``b2 = β`` it is Nesterov SGD
    ``optax.sgd(η(1−β), momentum=β, nesterov=True)``.

    Args:
      learning_rate: scalar or schedule η_t (≥ 0).
      b1, b2, kappa, a, mu_dtype: see :func:`scale_by_lion_k`.
      weight_decay: decoupled weight decay λ (≥ 0), multiplied by η_t.
      mask: pytree or callable selecting the leaves that get weight decay.

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    References:
      Chen, Liu, Liang, Liu, `Lion Secretly Solves Constrained Optimization: As
      Lyapunov Predicts <https://arxiv.org/abs/2310.05898>`_, 2023 (Eq. (2)).
    """
    _common.check_learning_rate(learning_rate)
    _common.check_nonnegative("weight_decay", weight_decay)
    return optax.chain(
        scale_by_lion_k(b1=b1, b2=b2, kappa=kappa, a=a, mu_dtype=mu_dtype),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )


def lion(
    learning_rate: optax.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.99,
    *,
    mu_dtype: Any | None = None,
    weight_decay: optax.ScalarOrSchedule = 1e-3,
    mask: Any | Callable[[optax.Params], Any] | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""The Lion optimizer (EvoLved Sign Momentum), with ``optax.lion``'s arguments.

    The arguments after ``b2`` are keyword-only (positional in ``optax.lion``).

    .. math::

        c_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad
        x_t = x_{t-1} - \eta_t(\operatorname{sign}(c_t) + \lambda x_{t-1}),\quad
        m_t = \beta_2 m_{t-1} + (1-\beta_2) g_t.

    Lion's Algorithm 2 exactly; equal to ``optax.lion`` with the same arguments.
    The paper advises a learning rate 3-10× smaller and a weight decay 3-10× larger
    than AdamW's. With λ > 0 the iterates enter and stay in ‖x‖∞ ≤ 1/λ (Lion-K,
    Theorem 3.1; tested).

    Args:
      learning_rate: scalar or schedule η_t.
      b1: interpolation between momentum and gradient for the update, in [0, 1).
      b2: decay of the momentum EMA, in [0, 1).
      mu_dtype: dtype of the momentum; ``None`` keeps the params' dtype.
      weight_decay: decoupled weight decay λ (≥ 0), multiplied by η_t.
      mask: pytree or callable selecting the leaves that get weight decay.

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> opt = gradkit.lion(learning_rate=1e-4, weight_decay=1.0)
      >>> state = opt.init({"w": jnp.ones(3)})

    References:
      Chen et al., `Symbolic Discovery of Optimization Algorithms
      <https://arxiv.org/abs/2302.06675>`_, 2023 (Algorithm 2).
    """
    return lion_k(
        learning_rate,
        b1,
        b2,
        kappa="sign",
        mu_dtype=mu_dtype,
        weight_decay=weight_decay,
        mask=mask,
    )
