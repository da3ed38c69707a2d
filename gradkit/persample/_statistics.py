# SPDX-License-Identifier: Apache-2.0
"""Per-sample gradient statistics: the five numbers behind every AdAdaGrad test.

Lau, Liu, Kolar, *AdAdaGrad: Adaptive Batch Size Schemes for Adaptive Gradient Methods*,
2024, arXiv 2402.11215 (§3). For the per-sample gradients ∇f_i (i = 1..B) of a batch:
B, ‖ḡ‖² (ḡ their mean), Σ‖∇f_i‖², Σ⟨∇f_i, ḡ⟩ and Σ⟨∇f_i, ḡ⟩² (:class:`PerSampleStatistics`).
The unbiased variance sums of the AdAdaGrad tests are functions of these five numbers
(``gradkit/persample/_adadagrad.py``), and so is the coherence ‖Σ_i ∇f_i‖²/(B·Σ_i‖∇f_i‖²).

:func:`per_sample_statistics_from_loss` never holds B gradient copies: it streams
per-sample gradients in chunks for their norms and gets the inner products a_i from one
forward-mode pass (a JVP of the per-sample losses along ḡ). Across devices
(``axis_name``) the five numbers are summed, which gives exactly the one-device result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

from gradkit import _common


class PerSampleStatistics(NamedTuple):
    """What every AdAdaGrad test needs from the per-sample gradients ∇f_i of a batch."""

    batch_size: chex.Array  # float32 scalar, B (summed over `axis_name`).
    grad_sq_norm: chex.Array  # float32 scalar, ‖ḡ‖² of the mean gradient ḡ.
    sum_sq_norms: chex.Array  # float32 scalar, Σ_i ‖∇f_i‖².
    sum_inner: chex.Array  # float32 scalar, Σ_i ⟨∇f_i, ḡ⟩ (= B‖ḡ‖² up to round-off).
    sum_inner_sq: chex.Array  # float32 scalar, Σ_i ⟨∇f_i, ḡ⟩².


def _f32(x):
    return jnp.asarray(x, jnp.promote_types(jnp.asarray(x).dtype, jnp.float32))


def _tree_vdot(a, b):
    return sum(jnp.vdot(_f32(x), _f32(y)) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def _psum(x, axis_name):
    return x if axis_name is None else jax.lax.psum(x, axis_name)


def check_batch(b: int, axis_name: str | None) -> None:
    """Raises `ValueError` for fewer than 2 samples on one device (no unbiased variance)."""
    if axis_name is None and b < 2:
        raise ValueError(
            f"the AdAdaGrad tests need unbiased variances over at least 2 per-sample "
            f"gradients; got a batch of {b}.")


def per_sample_statistics(
    per_sample_grads: Any, *, axis_name: str | None = None
) -> tuple[PerSampleStatistics, Any]:
    """The five statistics of :class:`PerSampleStatistics` and the mean gradient ḡ.

    Args:
      per_sample_grads: a tree whose leaves have a leading sample axis B (e.g.
        ``jax.vmap(jax.grad(loss), in_axes=(None, 0))(params, batch)``).
      axis_name: mapped axis over which the batch is sharded; the statistics and ḡ are
        then those of the whole (global) batch, identical on every device.

    Returns:
      ``(statistics, mean_grad)``, ``mean_grad`` without the sample axis.
    """
    per_sample_grads = _common.as_stacked(per_sample_grads, None, what="sample")
    b = _common.num_stacked(per_sample_grads)
    check_batch(b, axis_name)
    n = _psum(jnp.asarray(b, jnp.float32), axis_name)
    total = jax.tree.map(lambda x: jnp.sum(_f32(x), axis=0), per_sample_grads)
    mean = jax.tree.map(lambda x: x / n, _psum(total, axis_name))
    flat = jnp.concatenate([_f32(x).reshape(b, -1) for x in jax.tree.leaves(per_sample_grads)],
                           axis=1)
    flat_mean = jnp.concatenate([x.reshape(-1) for x in jax.tree.leaves(mean)])
    inner = jnp.dot(flat, flat_mean, precision=jax.lax.Precision.HIGHEST)
    stats = PerSampleStatistics(
        batch_size=n,
        grad_sq_norm=jnp.vdot(flat_mean, flat_mean),
        sum_sq_norms=_psum(jnp.sum(flat * flat), axis_name),
        sum_inner=_psum(jnp.sum(inner), axis_name),
        sum_inner_sq=_psum(jnp.sum(inner * inner), axis_name),
    )
    mean = jax.tree.map(lambda m, x: m.astype(x.dtype), mean,
                        jax.tree.map(lambda x: x[0], per_sample_grads))
    return stats, mean


def per_sample_statistics_from_loss(
    loss_fn: Callable[..., jax.Array],
    params: Any,
    batch: Any,
    *,
    chunk_size: int | None = None,
    axis_name: str | None = None,
) -> tuple[PerSampleStatistics, Any]:
    """:func:`per_sample_statistics` without materialising B per-sample gradients.

    Pass 1 scans the batch in chunks of ``chunk_size`` samples, computing each chunk's
    per-sample gradients (``jax.vmap(jax.grad)``), their squared norms and their running
    sum, so at most ``chunk_size`` gradient copies exist at once. Pass 2 gets every
    a_i = ⟨∇f_i, ḡ⟩ as a forward-mode directional derivative of the per-sample losses
    along ḡ (one JVP, no gradient copies).

    Args:
      loss_fn: ``loss_fn(params, example) -> scalar`` for ONE example (a slice of
        ``batch`` without its leading axis).
      params: parameters.
      batch: tree of arrays with a leading sample axis B.
      chunk_size: samples per chunk in pass 1 (must divide B); ``None`` = B.
      axis_name: as in :func:`per_sample_statistics`.

    Returns:
      ``(statistics, mean_grad)``.
    """
    b = _common.num_stacked(_common.as_stacked(batch, None, what="sample"))
    check_batch(b, axis_name)
    chunk = b if chunk_size is None else chunk_size
    _common.check_positive_int("chunk_size", chunk)
    if b % chunk:
        raise ValueError(f"`chunk_size` ({chunk}) must divide the batch size ({b}).")
    grad_one = jax.grad(loss_fn)

    def scan_chunk(carry, xs):
        total, sq = carry
        g = jax.vmap(grad_one, in_axes=(None, 0))(params, xs)
        total = jax.tree.map(lambda t, x: t + jnp.sum(_f32(x), axis=0), total, g)
        sq = sq + sum(jnp.sum(_f32(x) ** 2) for x in jax.tree.leaves(g))
        return (total, sq), None

    chunks = jax.tree.map(lambda x: x.reshape(b // chunk, chunk, *x.shape[1:]), batch)
    zeros = jax.tree.map(lambda p: jnp.zeros(jnp.shape(p), jnp.promote_types(
        jnp.result_type(p), jnp.float32)), params)
    (total, sq), _ = jax.lax.scan(scan_chunk, (zeros, jnp.zeros([], jnp.float32)), chunks)
    n = _psum(jnp.asarray(b, jnp.float32), axis_name)
    mean = jax.tree.map(lambda x: x / n, _psum(total, axis_name))
    mean_p = jax.tree.map(lambda m, p: m.astype(jnp.result_type(p)), mean, params)

    def directional(example):
        return jax.jvp(lambda p: loss_fn(p, example), (params,), (mean_p,))[1]

    inner = _f32(jax.vmap(directional)(batch))
    stats = PerSampleStatistics(
        batch_size=n,
        grad_sq_norm=_tree_vdot(mean, mean),
        sum_sq_norms=_psum(sq, axis_name),
        sum_inner=_psum(jnp.sum(inner), axis_name),
        sum_inner_sq=_psum(jnp.sum(inner * inner), axis_name),
    )
    return stats, mean_p

