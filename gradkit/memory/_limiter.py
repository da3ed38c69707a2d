# SPDX-License-Identifier: Apache-2.0
"""Fira's norm-growth limiter as a standalone transform.

Chen et al., *Fira: Can We Achieve Full-rank Training of LLMs Under Low-rank
Constraint?*, 2024, arXiv 2410.01623, §4.2 (Eq. 8); official code ``xichen-fy/Fira``
(Apache-2.0), ``optimizer_torch/fira_adamw.py``, read for facts.
"""

from __future__ import annotations

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _common

NORM_EPS = 1e-8  # Fira's guard in ‖S‖ / (‖S_prev‖ + 1e-8).


class LimitNormGrowthState(NamedTuple):
    """State for :func:`limit_norm_growth`."""

    count: chex.Array  # int32 scalar, number of updates so far.
    norms: optax.Updates  # per leaf a float32 scalar: ‖u‖ of the last (limited) update.


def limit_growth(x: jax.Array, prev_norm: jax.Array, first: jax.Array, gamma) -> tuple:
    """Fira's rule on one array: returns (x / ℓ, ‖x‖ / ℓ), ℓ = max(‖x‖/(prev+1e-8), γ)/γ;
    at the first step (``first``) ℓ = 1."""
    xf = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    norm = jnp.sqrt(jnp.sum(jnp.square(xf)))
    ratio = jnp.maximum(norm / (prev_norm + NORM_EPS), gamma) / gamma
    limiter = jnp.where(first, 1.0, ratio)
    return (xf / limiter).astype(x.dtype), (norm / limiter).astype(jnp.float32)


def limit_norm_growth(gamma: jax.typing.ArrayLike = 1.01) -> optax.GradientTransformation:
    r"""Caps the growth of each leaf's update norm at a factor γ per step (Fira's limiter).

    For every leaf, with s the norm kept from the previous step:

    .. math::

        \ell_t = \max\!\Big(\frac{\|u_t\|}{s_{t-1} + 10^{-8}},\ \gamma\Big)\Big/\gamma,
        \qquad u_t \leftarrow u_t/\ell_t,\qquad s_t = \|u_t\| \ (\text{after limiting}).

    So ‖u_t‖ ≤ γ(s_{t−1} + 10⁻⁸): an update may shrink freely but grow by at most γ per
    step. The first step (count 0) passes unchanged and only records s₁ = ‖u₁‖ (as the
    official code, which limits only once a previous norm exists). Norms are Frobenius
    norms over the whole leaf, in float32. Fira applies this to its scaled low-rank
    residual (:func:`scale_by_fira` does so internally); here it works after or before
    any optimizer, e.g. ``optax.chain(optax.adam(1e-3), limit_norm_growth())``.

    Behaviour to know: a zero update leaves s = 0, after which updates are capped at
    γ·10⁻⁸ and regrow only by γ per step (the paper's rule); a NaN/Inf update gives a
    NaN update and NaN norm (wrap with ``optax.apply_if_finite``).

    Args:
      gamma: growth bound γ ≥ 1 (paper 1.01; γ = 1 forbids any growth).

    Returns:
      An ``optax.GradientTransformation`` with state :class:`LimitNormGrowthState`.

    Example:
      >>> import gradkit, optax
      >>> opt = optax.chain(optax.adam(1e-3), gradkit.limit_norm_growth(1.01))

    References:
      Chen et al., `Fira: Can We Achieve Full-rank Training of LLMs Under Low-rank
      Constraint? <https://arxiv.org/abs/2410.01623>`_, 2024 (§4.2, Eq. 8, norm-growth
      limiter; official ``fira_adamw.py``).
    """
    _common.check_interval("gamma", gamma, 1.0, float("inf"), high_closed=True)

    def init_fn(params):
        return LimitNormGrowthState(
            count=jnp.zeros([], jnp.int32),
            norms=jax.tree.map(lambda _: jnp.zeros([], jnp.float32), params))

    def update_fn(updates, state, params=None):
        del params
        _common.check_same_structure(updates, state.norms)
        first = state.count == 0
        g = _common.weak(gamma)
        pairs = jax.tree.map(lambda u, s: limit_growth(u, s, first, g), updates, state.norms)
        treedef = jax.tree.structure(updates)
        limited, norms = jax.tree.transpose(treedef, jax.tree.structure((0, 0)), pairs)
        return limited, LimitNormGrowthState(optax.safe_increment(state.count), norms)

    return optax.GradientTransformation(init_fn, update_fn)

