# SPDX-License-Identifier: Apache-2.0
r"""Ghost Batch Normalization: batch norm over small "ghost" batches inside a large batch.

Hoffer, Hubara, Soudry, *Train longer, generalize better: closing the generalization gap
in large batch training of neural networks*, NeurIPS 2017, arXiv 1705.08741, Algorithm 1.
Checked against the official code eladhoffer/bigBatch ``main_gbn.py`` (each ghost batch is
a separate forward pass of the model, so a BatchNorm layer normalises it with its own
statistics and updates its running statistics once per ghost batch, in order).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from gradkit import _common


def check_ghost_batch_size(ghost_batch_size, batch: int | None = None) -> None:
    """Raises ``ValueError`` unless ``ghost_batch_size`` is a positive int dividing ``batch``."""
    _common.check_positive_int("ghost_batch_size", ghost_batch_size)
    if batch is not None and batch % ghost_batch_size:
        raise ValueError(
            f"`ghost_batch_size` ({ghost_batch_size}) must divide the batch size ({batch}); "
            "ghost batches are equal-sized (drop or pad the last batch, or pick a divisor).")


def ghost_batch_statistics(x: jax.Array, ghost_batch_size: int) -> tuple[jax.Array, jax.Array]:
    """Per-ghost-batch mean and (biased) variance over every axis but the last.

    Args:
      x: (B, ..., C) with B a multiple of ``ghost_batch_size``.
      ghost_batch_size: rows per ghost batch; ghost k holds rows [k·g, (k+1)·g).

    Returns:
      ``(mean, var)``, each (B // g, C), computed in float32 or wider (two-pass variance).
    """
    check_ghost_batch_size(ghost_batch_size, x.shape[0])
    dtype = jnp.promote_types(x.dtype, jnp.float32)
    ghosts = x.astype(dtype).reshape((x.shape[0] // ghost_batch_size, -1, x.shape[-1]))
    mean = jnp.mean(ghosts, axis=1)
    var = jnp.mean(jnp.square(ghosts - mean[:, None, :]), axis=1)
    return mean, var


def sequential_ema(
    running: jax.Array, values: jax.Array, momentum: jax.typing.ArrayLike
) -> jax.Array:
    r"""Applies r ← m·r + (1 − m)·v_k for each row v_k of ``values`` in order.

    Closed form: r_K = m^K·r_0 + (1 − m)·Σ_k m^{K−k}·v_k (Flax's momentum convention:
    m is the weight of the old value; PyTorch's ``momentum=0.1`` is m = 0.9).
    """
    num = values.shape[0]
    powers = momentum ** jnp.arange(num - 1, -1, -1, dtype=values.dtype)  # m^{K-k}
    return momentum**num * running + (1.0 - momentum) * jnp.tensordot(powers, values, 1)


def ghost_batch_norm(
    x: jax.Array,
    ghost_batch_size: int,
    scale: jax.Array | None = None,
    bias: jax.Array | None = None,
    epsilon: float = 1e-5,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    r"""Normalises each ghost batch of ``x`` with its own statistics (Algorithm 1).

    .. math::

        \hat x_i = \frac{x_i - \mu_{k(i)}}{\sqrt{\sigma^2_{k(i)} + \epsilon}}\,\gamma + \beta,

    where k(i) is the ghost batch of row i and μ_k, σ²_k are its mean and biased variance
    over the rows of ghost k and every non-feature axis. Gradients flow through μ_k and
    σ²_k as in ordinary batch norm, within each ghost batch.

    Args:
      x: (B, ..., C), features last, B a multiple of ``ghost_batch_size``.
      ghost_batch_size: |B_S|, rows per ghost batch (a ``ValueError`` if it does not
        divide B).
      scale, bias: optional γ, β of shape (C,).
      epsilon: added to the variance.

    Returns:
      The normalised array (``x``'s dtype) and the per-ghost ``(mean, var)``, (B // g, C).

    References:
      Hoffer, Hubara, Soudry, `Train longer, generalize better
      <https://arxiv.org/abs/1705.08741>`_, NeurIPS 2017 (Algorithm 1, Ghost Batch
      Normalization).
    """
    mean, var = ghost_batch_statistics(x, ghost_batch_size)
    dtype = mean.dtype
    ghosts = x.astype(dtype).reshape((mean.shape[0], -1, x.shape[-1]))
    y = (ghosts - mean[:, None, :]) * lax.rsqrt(var[:, None, :] + epsilon)
    if scale is not None:
        y = y * scale.astype(dtype)
    if bias is not None:
        y = y + bias.astype(dtype)
    return y.reshape(x.shape).astype(x.dtype), (mean, var)


def update_running_statistics(
    running_mean: jax.Array,
    running_var: jax.Array,
    ghost_mean: jax.Array,
    ghost_var: jax.Array,
    momentum: jax.typing.ArrayLike,
    axis_name: str | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Running statistics after one update per ghost batch, in ghost order.

    With ``axis_name`` the ghost statistics of every device are gathered (device-major
    order) first, so all replicas hold the same running statistics, equal to those of
    one device seeing the concatenated global batch.
    """
    if axis_name is not None:
        ghost_mean = lax.all_gather(ghost_mean, axis_name, tiled=True)
        ghost_var = lax.all_gather(ghost_var, axis_name, tiled=True)
    new_mean = sequential_ema(running_mean.astype(ghost_mean.dtype), ghost_mean, momentum)
    new_var = sequential_ema(running_var.astype(ghost_var.dtype), ghost_var, momentum)
    return new_mean.astype(running_mean.dtype), new_var.astype(running_var.dtype)


def normalize_with(
    x: jax.Array,
    mean: jax.Array,
    var: jax.Array,
    scale: jax.Array | None,
    bias: jax.Array | None,
    epsilon: float,
) -> jax.Array:
    """(x − mean)/√(var + ε)·γ + β with given (running) statistics: evaluation mode."""
    dtype = jnp.promote_types(x.dtype, jnp.float32)
    y = (x.astype(dtype) - mean) * lax.rsqrt(var.astype(dtype) + epsilon)
    if scale is not None:
        y = y * scale.astype(dtype)
    if bias is not None:
        y = y + bias.astype(dtype)
    return y.astype(x.dtype)
