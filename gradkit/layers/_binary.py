# SPDX-License-Identifier: Apache-2.0
"""Shared pieces of the binarised (ReSTE / STE) Dense and Conv layers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
from jax import lax

from gradkit import _common
from gradkit.layers import _reste
from gradkit.layers import _tract

Estimator = Literal["reste", "ste"]
ESTIMATORS = ("reste", "ste")
STE_CLIP = 1.0  # BinaryConnect / the official ``Binary`` STE: gradient 1{|x| ≤ 1}.


def check_estimator(estimator: str) -> None:
    _common.check_choice("estimator", estimator, ESTIMATORS)


def binarize(x: jax.Array, o, t: float, estimator: str) -> jax.Array:
    """sign(x) with the ReSTE backward at power ``o`` and threshold ``t``, or the STE."""
    if estimator == "ste":
        return _reste.reste_sign(x, 1.0, t=STE_CLIP)
    return _reste.reste_sign(x, o, t=t)


def binary_kernel(kernel: jax.Array, o, t: float, estimator: str) -> jax.Array:
    """sign(W)·mean|W| (one scale per layer, differentiable, as the official code)."""
    return binarize(kernel, o, t, estimator) * jnp.mean(jnp.abs(kernel))


def conv(x: jax.Array, kernel: jax.Array, strides: int | Sequence[int],
         padding: _tract.Padding) -> jax.Array:
    """A plain channels-last convolution with a Flax-layout kernel."""
    spatial = kernel.ndim - 2
    strides = (strides,) * spatial if isinstance(strides, int) else tuple(strides)
    return lax.conv_general_dilated(
        x, kernel, window_strides=strides, padding=_tract.conv_padding(padding, spatial),
        dimension_numbers=_tract.CONV_DIMENSIONS[spatial])


def kernel_size_tuple(kernel_size: int | Sequence[int], spatial: int) -> tuple[int, ...]:
    if isinstance(kernel_size, int):
        return (kernel_size,) * spatial
    return tuple(kernel_size)
