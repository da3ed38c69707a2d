# SPDX-License-Identifier: Apache-2.0
"""Muon's shared pieces: the quintic Newton–Schulz step and the aspect factor.

Both AuON (Hybrid-AuON's Newton–Schulz step, the aspect factor) and Drop-Muon (the aspect
factor of its per-layer Muon step) use them; optax 0.2.8 keeps its own versions private.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
from optax import contrib as optax_contrib

# Muon's quintic coefficients (Jordan et al., 2024), optax.contrib.muon's default.
MUON_NS_COEFFS = (3.4445, -4.7750, 2.0315)


def newton_schulz_step(x: jax.Array, coeffs=MUON_NS_COEFFS) -> jax.Array:
    r"""One quintic Newton–Schulz step X ← aX + (bA + cA²)X, A = XXᵀ (on the wide side).

    The iteration of Muon (Jordan et al., 2024; ``optax.contrib.muon``'s default
    coefficients (3.4445, −4.7750, 2.0315)); optax's own step is private in 0.2.8, so
    this is the same formula written out. A tall X is transposed first (the map
    commutes with transposition) so the Gram matrix is the small one.
    """
    a, b, c = coeffs
    if x.shape[-2] > x.shape[-1]:
        return newton_schulz_step(x.T, coeffs).T
    gram = x @ x.T
    return a * x + (b * gram + c * (gram @ gram)) @ x


def aspect_factor(shape: Sequence[int]) -> float:
    """√max(1, fan_out/fan_in) of a Flax kernel: the last axis is the output (fan_out),
    the product of the others the input (fan_in).

    Muon's width scaling: Jordan's ``max(1, rows/cols)**0.5`` on PyTorch's (out, in)
    weights, AuON's first code (``Auon_Adam_train.py``, the same expression) and
    ``optax.contrib.muon``'s ``scale_by_shape`` (``sqrt(max(1, fan_out/fan_in))``) are all
    this number; for a conv kernel (kh, kw, c_in, c_out) fan_in = kh·kw·c_in, as in
    optax's muon with :func:`flax_dimension_numbers`.
    """
    fan_in, fan_out = math.prod(shape[:-1]), shape[-1]
    return math.sqrt(max(1.0, fan_out / fan_in))


def flax_dimension_numbers(ndim: int) -> optax_contrib.MuonDimensionNumbers:
    """Flax layout for ``optax.contrib.scale_by_muon``: the last axis is the output, all
    others the reduction (conv kernels are orthogonalised as (kh·kw·c_in, c_out))."""
    return optax_contrib.MuonDimensionNumbers(reduction_axis=tuple(range(ndim - 1)),
                                              output_axis=ndim - 1)
