# SPDX-License-Identifier: Apache-2.0
r"""ReSTE: the rectified straight-through estimator for binary neural networks.

Wu, Zheng, Liu, Zheng, *Estimator Meets Equilibrium Perspective: A Rectified Straight
Through Estimator for Binary Neural Networks Training*, ICCV 2023, arXiv 2308.06689.
Checked against the official code DravenALG/ReSTE (no licence: read for facts only):
``Binary_ReSTE`` (backward), ``approximate_function`` (the |x| ≤ 0.1 slope), ``main.py``
(the o schedule), ``utils/tools.py`` (the two indicators), ``BinarizeConv2d`` (mean|W|
scaling, activations binarised with the same estimator).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp

from gradkit import _common

DEFAULT_T = 1.5
DEFAULT_INTERVAL = 0.1
DEFAULT_O_END = 3.0


def _reste_slope(x: jax.Array, o: Any, t: float, interval: float) -> jax.Array:
    """The ReSTE backward coefficient ∂f_o/∂x, rectified (float32 or wider)."""
    dtype = jnp.promote_types(x.dtype, jnp.float32)
    ax = jnp.abs(x.astype(dtype))
    o = jnp.asarray(o, dtype)
    inv = 1.0 / o
    # |x| ≤ interval: the secant slope f_o(interval)/interval = interval^(1/o − 1).
    near = jnp.power(jnp.asarray(interval, dtype), inv - 1.0)
    # interval < |x| ≤ t: the power function's derivative (1/o)|x|^(1/o − 1).
    power = inv * jnp.power(jnp.maximum(ax, interval), inv - 1.0)
    return jnp.where(ax <= interval, near, jnp.where(ax <= t, power, 0.0))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _reste_sign(x: jax.Array, o: jax.Array, t: float, interval: float) -> jax.Array:
    return jnp.sign(x)


def _reste_sign_fwd(x, o, t, interval):
    return jnp.sign(x), (x, o)


def _reste_sign_bwd(t, interval, residuals, g):
    x, o = residuals
    slope = _reste_slope(x, o, t, interval)
    return (slope * g).astype(x.dtype), jnp.zeros_like(o)


_reste_sign.defvjp(_reste_sign_fwd, _reste_sign_bwd)


def reste_sign(
    x: jax.Array,
    o: jax.typing.ArrayLike = 1.0,
    *,
    t: float = DEFAULT_T,
    interval: float = DEFAULT_INTERVAL,
) -> jax.Array:
    r"""sign(x) forward with ReSTE's rectified power-function gradient backward.

    The backward treats sign as f_o(x) = sign(x)·|x|^{1/o} (o ≥ 1), rectified:

    .. math::

        \frac{\partial \operatorname{sign}(x)}{\partial x} \approx
        \begin{cases}
          \text{interval}^{1/o - 1} & |x| \le \text{interval}\\
          \tfrac{1}{o}\,|x|^{1/o - 1} & \text{interval} < |x| \le t\\
          0 & |x| > t.
        \end{cases}

    At o = 1 this is the clipped straight-through estimator 1{|x| ≤ t}; BinaryConnect's
    (and the official code's ``--estimator STE``) clip at 1 is ``reste_sign(x, 1.0,
    t=1.0)``. As o grows f_o approaches sign (smaller fitting error) and the gradient
    grows near 0 and shrinks away from it (less stable). Forward is ``jnp.sign`` (0 at
    0, as ``torch.sign``). ``o`` gets a zero gradient and may be traced (e.g. the
    :func:`reste_o_schedule` value inside a jitted step).

    Non-finite inputs: NaN gives NaN forward and a zero backward coefficient; ±inf gives
    ±1 and 0.

    Args:
      x: values to binarise (weights or activations).
      o: the power o ≥ 1 (ReSTE anneals it from 1 to 3 with :func:`reste_o_schedule`).
      t: the clipping threshold t > 0 (paper and official default 1.5).
      interval: the half-width of the constant-slope region near 0, in (0, t]
        (official code: 0.1).

    Returns:
      sign(x), same shape and dtype as ``x``.

    Example:
      >>> w_b = gradkit.reste_sign(w, o) * jnp.mean(jnp.abs(w))

    References:
      Wu, Zheng, Liu, Zheng, `Estimator Meets Equilibrium Perspective: A Rectified
      Straight Through Estimator for Binary Neural Networks Training
      <https://arxiv.org/abs/2308.06689>`_, ICCV 2023 (the ReSTE forward f_o and its
      rectified backward; official ``Binary_ReSTE``).
    """
    _common.check_interval("o", o, 1.0, math.inf, high_closed=True)
    _common.check_positive("t", t)
    _common.check_interval("interval", interval, 0.0, float(t), low_closed=False,
                               high_closed=True)
    return _reste_sign(x, jnp.asarray(o, jnp.float32), float(t), float(interval))


def reste_o_schedule(
    epoch: jax.typing.ArrayLike, num_epochs: int, o_end: float = DEFAULT_O_END
) -> jax.Array:
    r"""ReSTE's power schedule o(e) = 1 + (o_end − 1)·(1 − cos(π e / (2E))).

    Rises from 1 at e = 0 to o_end at e = E (the official ``main.py`` uses epochs
    0 … E−1, so the last epoch stays just below o_end). ``o_end = 3`` in every paper run.

    Args:
      epoch: the current epoch e (may be fractional or traced).
      num_epochs: E, the number of epochs.
      o_end: the final power (≥ 1).

    Returns:
      o as a float32 scalar array.

    References:
      Wu et al., `arXiv 2308.06689 <https://arxiv.org/abs/2308.06689>`_, ICCV 2023
      (training schedule of o; official ``main.py``, ``ReSTE(epoch)``).
    """
    _common.check_positive_int("num_epochs", num_epochs)
    _common.check_interval("o_end", o_end, 1.0, math.inf, high_closed=True)
    ratio = jnp.asarray(epoch, jnp.float32) / num_epochs
    return 1.0 + (o_end - 1.0) * (1.0 - jnp.cos(ratio * jnp.pi / 2.0))


def reste_power(x: jax.Array, o: jax.typing.ArrayLike) -> jax.Array:
    """The equivalent ReSTE forward f_o(x) = sign(x)·|x|^{1/o} (official ``ReSTE_Forward``)."""
    return jnp.sign(x) * jnp.power(jnp.abs(x), 1.0 / jnp.asarray(o, jnp.float32))


def reste_fitting_error(w: jax.Array, o: jax.typing.ArrayLike) -> jax.Array:
    """ReSTE's estimating-error indicator ‖f_o(w) − sign(w)‖₂ of one weight tensor.

    Summed over layers it is the paper's "fitting error" (official ``get_fitting_error``).
    """
    return jnp.linalg.norm((reste_power(w, o) - jnp.sign(w)).ravel())


def reste_gradient_instability(grad: jax.Array) -> jax.Array:
    """ReSTE's gradient-stability indicator Var(|∂L/∂w|) of one tensor (larger = less stable).

    Summed over layers it is the paper's indicator (official ``get_stability_var``, which
    uses ``torch.var``, the unbiased variance; so does this).
    """
    a = jnp.abs(grad.ravel())
    return jnp.var(a, ddof=1) if a.size > 1 else jnp.zeros((), a.dtype)


def binarize_weight(
    w: jax.Array, o: jax.typing.ArrayLike = 1.0, *, t: float = DEFAULT_T,
    interval: float = DEFAULT_INTERVAL,
) -> jax.Array:
    """sign(w)·mean|w| with the ReSTE backward (one scale per layer, as the official code).

    The scale mean|w| is differentiable (the official code does not detach it).
    """
    return reste_sign(w, o, t=t, interval=interval) * jnp.mean(jnp.abs(w))
