# SPDX-License-Identifier: Apache-2.0
"""diffGrad: Adam whose step is damped where the gradient barely changes.

Dubey et al., *diffGrad: An Optimization Method for Convolutional Neural Networks*,
IEEE TNNLS 2020, arXiv 1909.11015. Checked against the official PyTorch code
``shivram1987/diffGrad`` (``diffGrad_v2.py``, MIT licence; facts only, nothing copied),
by a float64 NumPy transcription of it in ``tests/test_stepsize_diffgrad.py``.
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


class ScaleByDiffGradState(NamedTuple):
    """State for :func:`scale_by_diffgrad`."""

    count: chex.Array  # int32 scalar, number of updates so far.
    mu: optax.Updates  # First moment m (EMA of g), params' shapes and dtypes.
    nu: optax.Updates  # Second moment v (EMA of g²), params' shapes and dtypes.
    prev_grad: optax.Updates  # g_{t-1} (zeros before the first step), params' dtypes.


def scale_by_diffgrad(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-8,
) -> optax.GradientTransformation:
    r"""Rescales updates with diffGrad: Adam times the friction ξ = sigmoid(|g_{t−1} − g_t|).

    .. math::

        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\\
        \xi_t = \frac{1}{1 + e^{-|g_{t-1} - g_t|}} \in [\tfrac12, 1),\quad g_0 = 0,\\
        u_t = \frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,
              \frac{\xi_t \odot m_t}{\sqrt{v_t} + \epsilon}.

    The paper's Eqs. (3)-(6) (Algorithm 1) write the last line as
    ``ξ_t m̂_t / (√v̂_t + ε)`` with bias-corrected moments; we follow the official
    ``diffGrad_v2.py``, which (like PyTorch's Adam of its time) folds the bias
    corrections into the step size and adds ε to the *uncorrected* √v_t. The two differ
    only in the effective ε (ε vs ε·√(1−β₂^t)).

    The first official ``diffGrad.py`` (the code behind the paper's experiments) stored
    ``previous_grad = grad``, a reference to the gradient tensor that PyTorch then
    overwrites in place, so after the first step |g_{t−1} − g_t| ≡ 0, ξ ≡ ½ and the
    method is Adam at half the learning rate. ``diffGrad_v2.py`` stores a copy; so do we
    (the state keeps g_{t−1} as its own array).

    Args:
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: added to √v_t, ≥ 0.

    Returns:
      An ``optax.GradientTransformation``. Non-finite gradients propagate NaN/Inf into
      that coordinate's moments and update (as ``optax.scale_by_adam``); wrap in
      ``optax.apply_if_finite`` to skip such steps. Updates whose pytree structure
      differs from the params' raise a ``ValueError`` at the first call.

    Example:
      >>> import gradkit, optax
      >>> opt = optax.chain(gradkit.scale_by_diffgrad(), optax.scale(-1e-3))

    References:
      Dubey et al., `diffGrad: An Optimization Method for Convolutional Neural Networks
      <https://arxiv.org/abs/1909.11015>`_, 2020 (Eqs. (3)-(6), Algorithm 1; official
      code ``diffGrad_v2.py``).
    """
    _common.check_interval("b1", b1, 0.0, 1.0)
    _common.check_interval("b2", b2, 0.0, 1.0)
    _common.check_nonnegative("eps", eps)

    def init_fn(params):
        return ScaleByDiffGradState(
            count=jnp.zeros([], jnp.int32),
            mu=optax.tree.zeros_like(params),
            nu=optax.tree.zeros_like(params),
            prev_grad=optax.tree.zeros_like(params),
        )

    def update_fn(updates, state, params=None):
        del params
        _common.check_same_structure(updates, state.mu)
        b1_, b2_, eps_ = _common.weak(b1), _common.weak(b2), _common.weak(eps)
        mu = optax.tree.update_moment(updates, state.mu, b1_, 1)
        nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2_, 2)
        count = optax.safe_increment(state.count)
        t = count.astype(jnp.float32)
        step = jnp.sqrt(1.0 - b2_**t) / (1.0 - b1_**t)

        def leaf(g, m, v, g_prev):
            g32, m32, v32 = (x.astype(jnp.promote_types(x.dtype, jnp.float32))
                             for x in (g, m, v))
            xi = jax.nn.sigmoid(jnp.abs(g_prev.astype(g32.dtype) - g32))
            u = step.astype(g32.dtype) * xi * m32 / (jnp.sqrt(v32) + eps_)
            return u.astype(g.dtype)

        new_updates = jax.tree.map(leaf, updates, mu, nu, state.prev_grad)
        prev_grad = jax.tree.map(lambda g, p: g.astype(p.dtype), updates, state.prev_grad)
        mu = jax.tree.map(lambda m, old: m.astype(old.dtype), mu, state.mu)
        nu = jax.tree.map(lambda v, old: v.astype(old.dtype), nu, state.nu)
        return new_updates, ScaleByDiffGradState(count=count, mu=mu, nu=nu, prev_grad=prev_grad)

    return optax.GradientTransformation(init_fn, update_fn)


def diffgrad(
    learning_rate: optax.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    *,
    eps: jax.typing.ArrayLike = 1e-8,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    mask: Any | Callable[[optax.Params], Any] | None = None,
    coupled_weight_decay: bool = False,
) -> optax.GradientTransformation:
    r"""diffGrad with decoupled (default) or the official code's coupled weight decay.

    ``decoupled`` (default): ``chain(scale_by_diffgrad, add_decayed_weights(λ, mask),
    scale_by_learning_rate(η))``, i.e. x ← x − η(u_t + λx) as AdamW (and
    pytorch-optimizer's ``DiffGrad``). ``coupled_weight_decay=True``: ``chain(
    add_decayed_weights(λ, mask), scale_by_diffgrad, scale_by_learning_rate(η))``, the
    L2 penalty g ← g + λx of ``diffGrad_v2.py`` (which then also enters ξ through
    g_{t−1}). With λ = 0 (the paper's and the code's default) both are the same.

    Args:
      learning_rate: scalar or schedule η ≥ 0 (paper default 1e-3).
      b1, b2, eps: see :func:`scale_by_diffgrad` (defaults 0.9, 0.999, 1e-8).
      weight_decay: λ ≥ 0.
      mask: pytree or callable selecting the leaves that get weight decay.
      coupled_weight_decay: use the official code's L2 penalty instead of decoupled decay.

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> opt = gradkit.diffgrad(learning_rate=1e-3)
      >>> state = opt.init({"w": jnp.ones(3)})

    References:
      Dubey et al., `diffGrad: An Optimization Method for Convolutional Neural Networks
      <https://arxiv.org/abs/1909.11015>`_, 2020 (Algorithm 1; ``diffGrad_v2.py``).
    """
    _common.check_nonnegative("weight_decay", weight_decay)
    _common.check_learning_rate(learning_rate)
    decay = optax.add_decayed_weights(weight_decay, mask)
    core = scale_by_diffgrad(b1=b1, b2=b2, eps=eps)
    if coupled_weight_decay:
        return optax.chain(decay, core, optax.scale_by_learning_rate(learning_rate))
    return optax.chain(core, decay, optax.scale_by_learning_rate(learning_rate))
