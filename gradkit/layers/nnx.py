# SPDX-License-Identifier: Apache-2.0
"""Flax NNX modules: TrAct first layers, ReSTE-binarised layers, Ghost BatchNorm.

The NNX twins of :mod:`gradkit.layers.linen` (same math, tested equal), with the
constructor conventions of ``flax.nnx.Linear`` / ``Conv`` / ``BatchNorm``: input and
output widths given up front and ``rngs`` keyword-only.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from gradkit.layers import _binary
from gradkit.layers import _ghost_bn
from gradkit.layers import _reste
from gradkit.layers import _tract

_default_kernel_init = nnx.initializers.lecun_normal()
_zeros = nnx.initializers.zeros_init()
_ones = nnx.initializers.ones_init()


class TrActDense(nnx.Module):
    """``nnx.Linear`` with TrAct's first-layer kernel gradient (see :func:`gradkit.tract_dense`)."""

    def __init__(self, in_features: int, out_features: int, *, use_bias: bool = True,
                 lam: float = _tract.DEFAULT_LAMBDA, axis_name: str | None = None,
                 param_dtype=jnp.float32, kernel_init=_default_kernel_init,
                 bias_init=_zeros, rngs: nnx.Rngs):
        _tract.check_lam(lam)
        self.lam, self.axis_name = lam, axis_name
        self.kernel = nnx.Param(kernel_init(rngs.params(), (in_features, out_features),
                                            param_dtype))
        self.bias = (nnx.Param(bias_init(rngs.params(), (out_features,), param_dtype))
                     if use_bias else None)

    def __call__(self, x: jax.Array) -> jax.Array:
        bias = None if self.bias is None else self.bias[...]
        return _tract.tract_dense(x, self.kernel[...], bias, lam=self.lam,
                                  axis_name=self.axis_name)


class TrActConv(nnx.Module):
    """``nnx.Conv`` (channels last) with TrAct's kernel gradient (see :func:`gradkit.tract_conv`).

    ``kernel_size`` must be a sequence (one entry per spatial dimension).
    """

    def __init__(self, in_features: int, out_features: int, kernel_size: Sequence[int],
                 strides: int | Sequence[int] = 1, *, padding: _tract.Padding = "SAME",
                 use_bias: bool = True, lam: float = _tract.DEFAULT_LAMBDA,
                 axis_name: str | None = None, param_dtype=jnp.float32,
                 kernel_init=_default_kernel_init, bias_init=_zeros, rngs: nnx.Rngs):
        _tract.check_lam(lam)
        self.strides, self.padding = strides, padding
        self.lam, self.axis_name = lam, axis_name
        shape = (*tuple(kernel_size), in_features, out_features)
        self.kernel = nnx.Param(kernel_init(rngs.params(), shape, param_dtype))
        self.bias = (nnx.Param(bias_init(rngs.params(), (out_features,), param_dtype))
                     if use_bias else None)

    def __call__(self, x: jax.Array) -> jax.Array:
        bias = None if self.bias is None else self.bias[...]
        return _tract.tract_conv(x, self.kernel[...], bias, strides=self.strides,
                                 padding=self.padding, lam=self.lam, axis_name=self.axis_name)


class BinaryDense(nnx.Module):
    """A 1-bit dense layer with ReSTE (or STE) gradients; see the linen ``BinaryDense``.

    Call as ``layer(x, o)``; ``o_a`` (activations) defaults to ``o``.
    """

    def __init__(self, in_features: int, out_features: int, *, use_bias: bool = True,
                 binarize_inputs: bool = True, estimator: _binary.Estimator = "reste",
                 t: float = _reste.DEFAULT_T, t_a: float = _reste.DEFAULT_T,
                 param_dtype=jnp.float32, kernel_init=_default_kernel_init, bias_init=_zeros,
                 rngs: nnx.Rngs):
        _binary.check_estimator(estimator)
        self.binarize_inputs, self.estimator, self.t, self.t_a = (
            binarize_inputs, estimator, t, t_a)
        self.kernel = nnx.Param(kernel_init(rngs.params(), (in_features, out_features),
                                            param_dtype))
        self.bias = (nnx.Param(bias_init(rngs.params(), (out_features,), param_dtype))
                     if use_bias else None)

    def __call__(self, x: jax.Array, o: jax.typing.ArrayLike = 1.0,
                 o_a: jax.typing.ArrayLike | None = None) -> jax.Array:
        o_a = o if o_a is None else o_a
        if self.binarize_inputs:
            x = _binary.binarize(x, o_a, self.t_a, self.estimator)
        y = x @ _binary.binary_kernel(self.kernel[...], o, self.t, self.estimator)
        if self.bias is not None:
            y = y + self.bias[...]
        return y


class BinaryConv(nnx.Module):
    """A 1-bit convolution (official ``BinarizeConv2d``); see the linen ``BinaryConv``."""

    def __init__(self, in_features: int, out_features: int, kernel_size: Sequence[int],
                 strides: int | Sequence[int] = 1, *, padding: _tract.Padding = "SAME",
                 use_bias: bool = False, binarize_inputs: bool = True,
                 estimator: _binary.Estimator = "reste", t: float = _reste.DEFAULT_T,
                 t_a: float = _reste.DEFAULT_T, param_dtype=jnp.float32,
                 kernel_init=_default_kernel_init, bias_init=_zeros, rngs: nnx.Rngs):
        _binary.check_estimator(estimator)
        self.strides, self.padding = strides, padding
        self.binarize_inputs, self.estimator, self.t, self.t_a = (
            binarize_inputs, estimator, t, t_a)
        shape = (*tuple(kernel_size), in_features, out_features)
        self.kernel = nnx.Param(kernel_init(rngs.params(), shape, param_dtype))
        self.bias = (nnx.Param(bias_init(rngs.params(), (out_features,), param_dtype))
                     if use_bias else None)

    def __call__(self, x: jax.Array, o: jax.typing.ArrayLike = 1.0,
                 o_a: jax.typing.ArrayLike | None = None) -> jax.Array:
        o_a = o if o_a is None else o_a
        if self.binarize_inputs:
            x = _binary.binarize(x, o_a, self.t_a, self.estimator)
        y = _binary.conv(x, _binary.binary_kernel(self.kernel[...], o, self.t, self.estimator),
                         self.strides, self.padding)
        if self.bias is not None:
            y = y + self.bias[...]
        return y


class GhostBatchNorm(nnx.Module):
    """BatchNorm over ghost batches (Hoffer et al. 2017); see the linen ``GhostBatchNorm``.

    Running statistics are ``nnx.BatchStat`` variables ``mean`` and ``var``; parameters
    ``scale`` and ``bias``, as ``nnx.BatchNorm``. ``model.eval()`` / ``model.train()``
    switch ``use_running_average`` as for ``nnx.BatchNorm``.
    """

    def __init__(self, num_features: int, ghost_batch_size: int, *,
                 use_running_average: bool = False, momentum: float = 0.9,
                 epsilon: float = 1e-5, use_bias: bool = True, use_scale: bool = True,
                 axis_name: str | None = None, param_dtype=jnp.float32,
                 scale_init=_ones, bias_init=_zeros, rngs: nnx.Rngs):
        _ghost_bn.check_ghost_batch_size(ghost_batch_size)
        self.ghost_batch_size = ghost_batch_size
        self.use_running_average = use_running_average
        self.momentum, self.epsilon, self.axis_name = momentum, epsilon, axis_name
        self.mean = nnx.BatchStat(jnp.zeros(num_features, jnp.float32))
        self.var = nnx.BatchStat(jnp.ones(num_features, jnp.float32))
        self.scale = (nnx.Param(scale_init(rngs.params(), (num_features,), param_dtype))
                      if use_scale else None)
        self.bias = (nnx.Param(bias_init(rngs.params(), (num_features,), param_dtype))
                     if use_bias else None)

    def __call__(self, x: jax.Array, use_running_average: bool | None = None) -> jax.Array:
        if use_running_average is None:
            use_running_average = self.use_running_average
        scale = None if self.scale is None else self.scale[...]
        bias = None if self.bias is None else self.bias[...]
        if use_running_average:
            return _ghost_bn.normalize_with(x, self.mean[...], self.var[...], scale, bias,
                                            self.epsilon)
        y, (mean, var) = _ghost_bn.ghost_batch_norm(x, self.ghost_batch_size, scale, bias,
                                                    self.epsilon)
        self.mean[...], self.var[...] = _ghost_bn.update_running_statistics(
            self.mean[...], self.var[...], mean, var, self.momentum, self.axis_name)
        return y
