# SPDX-License-Identifier: Apache-2.0
r"""TrAct: first-layer weight gradients that train the pre-activations.

Petersen, Borgelt, Ermon, *TrAct: Making First-layer Pre-Activations Trainable*,
NeurIPS 2024, arXiv 2410.23970. Checked against the official implementation
``torch_tract`` (Felix-Petersen/tract, MIT; ``TrActLinearFunction``,
``TrActConv2DFunction``): same formula, same branch rule (the b×b Woodbury form when the
number of rows b is smaller than the input width n, else the n×n form), same λ = 0.1.
Written from the paper's equation, not from that code.

Only the weight gradient changes; the forward pass, the bias gradient and the gradient
with respect to the layer's input are those of a plain dense/conv layer, so any optimizer
can follow.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from gradkit import _common

DEFAULT_LAMBDA = 0.1

Padding = str | int | Sequence[int] | Sequence[tuple[int, int]]


def _solve_spd(matrix: jax.Array, rhs: jax.Array) -> jax.Array:
    """Solves ``matrix @ out = rhs`` for a symmetric positive-definite ``matrix``."""
    return jax.scipy.linalg.solve(matrix, rhs, assume_a="pos")


def tract_weight_gradient(
    x: jax.Array, g: jax.Array, lam: float = DEFAULT_LAMBDA, axis_name: str | None = None
) -> jax.Array:
    r"""TrAct's kernel gradient (XᵀX/b + λI)⁻¹ Xᵀ G for rows ``x`` (b×n) and ``g`` (b×m).

    Flax stores the kernel as (n, m) (inputs × outputs), so this is the transpose of the
    paper's Gᵀ X (XᵀX/b + λI)⁻¹. With b < n the identical Woodbury form
    Xᵀ (XXᵀ/b + λI_b)⁻¹ G is used (a b×b instead of an n×n solve). Both solves are
    Cholesky solves in at least float32; the result has ``x``'s promoted dtype.

    With ``axis_name`` (inside ``pmap``/``shard_map``), the statistic is the global one
    over all devices' rows, B = b·D: the n×n covariance is ``pmean``-ed, or, when B < n,
    the rows are ``all_gather``-ed for the B×B form. Averaging the per-device results over
    the axis (as data-parallel training does with gradients) then gives exactly the
    single-device TrAct gradient of the global batch.
    """
    b, n = x.shape
    dtype = jnp.promote_types(jnp.promote_types(x.dtype, g.dtype), jnp.float32)
    x = x.astype(dtype)
    g = g.astype(dtype)
    if axis_name is None:
        if b < n:
            gram = x @ x.T / b + lam * jnp.eye(b, dtype=dtype)
            return x.T @ _solve_spd(gram, g)
        cov = x.T @ x / b + lam * jnp.eye(n, dtype=dtype)
        return _solve_spd(cov, x.T @ g)
    devices = lax.axis_size(axis_name)
    total = b * devices
    if total < n:
        rows = lax.all_gather(x, axis_name, tiled=True)  # (B, n)
        padded = jnp.zeros((total, g.shape[1]), dtype)
        padded = lax.dynamic_update_slice(padded, g, (lax.axis_index(axis_name) * b, 0))
        gram = rows @ rows.T / total + lam * jnp.eye(total, dtype=dtype)
        return rows.T @ _solve_spd(gram, padded)
    cov = lax.pmean(x.T @ x / b, axis_name) + lam * jnp.eye(n, dtype=dtype)
    return _solve_spd(cov, x.T @ g)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _tract_matmul(x: jax.Array, kernel: jax.Array, lam: float, axis_name: str | None):
    return x @ kernel


def _tract_matmul_fwd(x, kernel, lam, axis_name):
    return x @ kernel, (x, kernel)


def _tract_matmul_bwd(lam, axis_name, residuals, g):
    x, kernel = residuals
    grad_x = (g @ kernel.T).astype(x.dtype)
    grad_kernel = tract_weight_gradient(x, g, lam, axis_name).astype(kernel.dtype)
    return grad_x, grad_kernel


_tract_matmul.defvjp(_tract_matmul_fwd, _tract_matmul_bwd)


def check_lam(lam: Any) -> float:
    if _common.concrete_number(lam) is None:
        raise TypeError(f"`lam` must be a concrete Python number, got {type(lam).__name__}.")
    _common.check_positive("lam", lam)
    return float(lam)


def tract_dense(
    x: jax.Array,
    kernel: jax.Array,
    bias: jax.Array | None = None,
    *,
    lam: float = DEFAULT_LAMBDA,
    axis_name: str | None = None,
) -> jax.Array:
    r"""A dense layer ``x @ kernel + bias`` whose kernel gradient is TrAct's.

    .. math::

        \nabla_W^{\text{TrAct}} = G^\top X\,\Big(\tfrac{1}{b}X^\top X + \lambda I_n\Big)^{-1}
        = G^\top\Big(\tfrac{1}{b}XX^\top + \lambda I_b\Big)^{-1} X,

    with X the b×n matrix of input rows (all leading axes of ``x`` flattened, so b counts
    tokens/positions as well as examples, as the official code does) and G = ∂L/∂Z the
    b×m output gradient. The first form is used when b ≥ n, the second (Woodbury) when
    b < n. The gradients of ``bias`` and ``x`` are the ordinary ones. This is the
    closed-form minimiser of ‖Z − η·b·G − XW'ᵀ‖² + λ·b·‖W' − W‖² over the new weights
    (TrAct, Sec. 3, the TrAct update for the first layer's pre-activations Z): the
    pre-activations, not the weights, take the gradient step.

    Args:
      x: inputs, shape (..., n).
      kernel: weights, shape (n, m) (Flax layout).
      bias: optional bias, shape (m,).
      lam: λ > 0 (paper default 0.1; smaller means closer to an exact pre-activation
        step, larger means closer to plain gradients scaled by 1/λ).
      axis_name: a ``pmap``/``shard_map`` axis; if given, XᵀX/b is the global statistic
        over every device's rows (see :func:`tract_weight_gradient`). ``None``: each
        device uses its own rows, as the official code does under DataParallel/DDP.

    Returns:
      ``x @ kernel + bias``, shape (..., m).

    Example:
      >>> grads = jax.grad(lambda k: loss(gradkit.tract_dense(x, k, b)))(kernel)

    References:
      Petersen, Borgelt, Ermon, `TrAct: Making First-layer Pre-Activations Trainable
      <https://arxiv.org/abs/2410.23970>`_, NeurIPS 2024 (the TrAct weight gradient,
      Sec. 3; official ``TrActLinearFunction``).
    """
    lam = check_lam(lam)
    if kernel.ndim != 2:
        raise ValueError(
            f"`kernel` must have shape (in_features, out_features), got {kernel.shape}.")
    if x.ndim < 1 or x.shape[-1] != kernel.shape[0]:
        raise ValueError(
            f"`x` must have last dimension {kernel.shape[0]} (= kernel.shape[0]), got shape "
            f"{x.shape}.")
    lead = x.shape[:-1]
    rows = x.reshape((-1, x.shape[-1]))
    y = _tract_matmul(rows, kernel, lam, axis_name).reshape((*lead, kernel.shape[1]))
    if bias is not None:
        y = y + bias
    return y


CONV_DIMENSIONS = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC"),
                    3: ("NDHWC", "DHWIO", "NDHWC")}


def conv_padding(padding: Padding, spatial: int) -> str | list[tuple[int, int]]:
    if isinstance(padding, str):
        if padding.upper() not in ("SAME", "VALID"):
            raise ValueError(
                f"`padding` must be 'SAME', 'VALID', an int or pairs, got {padding!r}.")
        return padding.upper()
    if isinstance(padding, int):
        return [(padding, padding)] * spatial
    pads = list(padding)
    if len(pads) != spatial:
        raise ValueError(f"`padding` needs {spatial} entries, got {padding!r}.")
    return [(p, p) if isinstance(p, int) else tuple(p) for p in pads]


def conv_patches(
    x: jax.Array,
    kernel_size: Sequence[int],
    strides: int | Sequence[int] = 1,
    padding: Padding = "SAME",
) -> jax.Array:
    """The patches a conv with ``kernel_size`` sees, flattened like a Flax kernel.

    Returns shape (N, *out_spatial, prod(kernel_size)·C), where the last axis enumerates
    (kernel positions..., input channel) in the C order of a Flax kernel of shape
    (*kernel_size, C, features), so ``conv(x, k) == conv_patches(x, ...) @ k.reshape(-1,
    features)``. Computed as a convolution with a one-hot kernel (exact).
    """
    spatial = len(kernel_size)
    channels = x.shape[-1]
    size = math.prod(kernel_size) * channels
    eye = jnp.eye(size, dtype=x.dtype).reshape((*kernel_size, channels, size))
    strides = (strides,) * spatial if isinstance(strides, int) else tuple(strides)
    return lax.conv_general_dilated(
        x, eye, window_strides=strides, padding=conv_padding(padding, spatial),
        dimension_numbers=CONV_DIMENSIONS[spatial], precision=lax.Precision.HIGHEST)


def tract_conv(
    x: jax.Array,
    kernel: jax.Array,
    bias: jax.Array | None = None,
    *,
    strides: int | Sequence[int] = 1,
    padding: Padding = "SAME",
    lam: float = DEFAULT_LAMBDA,
    axis_name: str | None = None,
) -> jax.Array:
    r"""A convolution whose kernel gradient is TrAct's, over unfolded patches.

    The rows X of :func:`tract_dense` are the unfolded input patches (one row per example
    and output position, b = N·H'·W', n = kh·kw·C), exactly as the official
    ``TrActConv2DFunction`` unfolds them; ∇_W = (XᵀX/b + λI)⁻¹ Xᵀ G reshaped to the
    kernel. The input and bias gradients are a plain convolution's. The forward pass is
    computed as patches @ kernel (the same values as ``lax.conv`` up to round-off), so
    the patch matrix is materialised: meant for a first layer with few input channels.
    Only ``feature_group_count = 1`` and no dilation (as the official code).

    Args:
      x: inputs (N, *spatial, C) with 1-3 spatial dimensions (channels last).
      kernel: (*kernel_size, C, features), the Flax layout.
      bias: optional (features,).
      strides: an int or one per spatial dimension.
      padding: 'SAME', 'VALID', an int, or one int/(low, high) pair per spatial dim.
      lam: λ > 0 (paper default 0.1).
      axis_name: see :func:`tract_dense`.

    Returns:
      The convolution output (N, *out_spatial, features).

    References:
      Petersen, Borgelt, Ermon, `TrAct: Making First-layer Pre-Activations Trainable
      <https://arxiv.org/abs/2410.23970>`_, NeurIPS 2024 (Sec. 3, convolutional first
      layers via unfolding; official ``TrActConv2DFunction``).
    """
    lam = check_lam(lam)
    spatial = kernel.ndim - 2
    if spatial not in CONV_DIMENSIONS:
        raise ValueError(f"`kernel` must have 3-5 dims (*kernel_size, C, features), got "
                         f"{kernel.shape}.")
    if x.ndim != spatial + 2 or x.shape[-1] != kernel.shape[-2]:
        raise ValueError(
            f"`x` must have shape (N, {spatial} spatial dims, {kernel.shape[-2]}) for a kernel "
            f"of shape {kernel.shape}, got {x.shape}.")
    patches = conv_patches(x, kernel.shape[:spatial], strides, padding)
    flat_kernel = kernel.reshape((-1, kernel.shape[-1]))
    return tract_dense(patches, flat_kernel, bias, lam=lam, axis_name=axis_name)
