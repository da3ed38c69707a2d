# SPDX-License-Identifier: Apache-2.0
"""Gram matrices and combinations of stacked task gradients (a leading task axis).

Stacking and checking the task axis is ``gradkit._common.as_stacked``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def gram(a: Any, b: Any | None = None) -> jax.Array:
    """K×L matrix of inner products ⟨a_i, b_j⟩ over all leaves (float32 or wider)."""
    b = a if b is None else b
    total = None
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        dt = jnp.promote_types(jnp.promote_types(x.dtype, y.dtype), jnp.float32)
        xf = x.reshape(x.shape[0], -1).astype(dt)
        yf = y.reshape(y.shape[0], -1).astype(dt)
        g = jnp.dot(xf, yf.T, precision=jax.lax.Precision.HIGHEST)
        total = g if total is None else total + g
    return total


def combine(coeffs: jax.Array, stacked: Any) -> Any:
    """Σ_k coeffs[..., k] · stacked[k] per leaf, in each leaf's dtype.

    `coeffs` of shape (K,) gives one tree; of shape (L, K) a tree with a leading L axis.
    """
    def one(x):
        dt = jnp.promote_types(x.dtype, jnp.float32)
        flat = x.reshape(x.shape[0], -1).astype(dt)
        out = jnp.dot(coeffs.astype(dt), flat, precision=jax.lax.Precision.HIGHEST)
        return out.reshape(coeffs.shape[:-1] + x.shape[1:]).astype(x.dtype)

    return jax.tree.map(one, stacked)
