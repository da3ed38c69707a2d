# SPDX-License-Identifier: Apache-2.0
"""Flax linen modules: TrAct first layers, ReSTE-binarised layers, Ghost BatchNorm.

Same math as :mod:`gradkit.layers.nnx` (tested equal); parameter names and shapes follow
``flax.linen.Dense`` / ``Conv`` / ``BatchNorm`` (``kernel``, ``bias``, ``scale``;
``batch_stats``: ``mean``, ``var``), so a checkpoint of the plain layer loads unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gradkit.layers import _binary
from gradkit.layers import _ghost_bn
from gradkit.layers import _reste
from gradkit.layers import _tract

_default_kernel_init = nn.initializers.lecun_normal()
_zeros = nn.initializers.zeros_init()


class TrActDense(nn.Module):
    """``nn.Dense`` with TrAct's first-layer kernel gradient (see :func:`gradkit.tract_dense`).

    Attributes:
      features: output width.
      use_bias: add a bias (its gradient is the ordinary one).
      lam: TrAct's λ > 0 (paper default 0.1).
      axis_name: reduce XᵀX/b over this pmap axis (default: per-device statistics).
    """

    features: int
    use_bias: bool = True
    lam: float = _tract.DEFAULT_LAMBDA
    axis_name: str | None = None
    param_dtype: jnp.dtype = jnp.float32
    kernel_init: nn.initializers.Initializer = _default_kernel_init
    bias_init: nn.initializers.Initializer = _zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features),
                            self.param_dtype)
        bias = (self.param("bias", self.bias_init, (self.features,), self.param_dtype)
                if self.use_bias else None)
        return _tract.tract_dense(x, kernel, bias, lam=self.lam, axis_name=self.axis_name)


class TrActConv(nn.Module):
    """``nn.Conv`` (channels last) with TrAct's kernel gradient over unfolded patches.

    See :func:`gradkit.tract_conv`. ``kernel_size`` may be an int (same for every spatial
    dimension of the input).
    """

    features: int
    kernel_size: int | Sequence[int]
    strides: int | Sequence[int] = 1
    padding: _tract.Padding = "SAME"
    use_bias: bool = True
    lam: float = _tract.DEFAULT_LAMBDA
    axis_name: str | None = None
    param_dtype: jnp.dtype = jnp.float32
    kernel_init: nn.initializers.Initializer = _default_kernel_init
    bias_init: nn.initializers.Initializer = _zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        size = _binary.kernel_size_tuple(self.kernel_size, x.ndim - 2)
        kernel = self.param("kernel", self.kernel_init, (*size, x.shape[-1], self.features),
                            self.param_dtype)
        bias = (self.param("bias", self.bias_init, (self.features,), self.param_dtype)
                if self.use_bias else None)
        return _tract.tract_conv(x, kernel, bias, strides=self.strides, padding=self.padding,
                                 lam=self.lam, axis_name=self.axis_name)


class BinaryDense(nn.Module):
    """A 1-bit dense layer: sign(x) @ (sign(W)·mean|W|) + b with ReSTE (or STE) gradients.

    Call as ``layer(x, o)`` with the current power o (:func:`gradkit.reste_o_schedule`);
    the input activations use ``o_a`` (default: the same o, as the official schedule).

    Attributes:
      features: output width.
      use_bias: add a full-precision bias.
      binarize_inputs: binarise the input activations (1W/1A); False gives 1W/32A.
      estimator: ``"reste"`` (default) or ``"ste"`` (clipped at |x| ≤ 1, the official
        STE baseline; ``o`` is then ignored).
      t, t_a: ReSTE thresholds for weights and activations (official 1.5 and 1.5).
    """

    features: int
    use_bias: bool = True
    binarize_inputs: bool = True
    estimator: _binary.Estimator = "reste"
    t: float = _reste.DEFAULT_T
    t_a: float = _reste.DEFAULT_T
    param_dtype: jnp.dtype = jnp.float32
    kernel_init: nn.initializers.Initializer = _default_kernel_init
    bias_init: nn.initializers.Initializer = _zeros

    @nn.compact
    def __call__(self, x: jax.Array, o: jax.typing.ArrayLike = 1.0,
                 o_a: jax.typing.ArrayLike | None = None) -> jax.Array:
        _binary.check_estimator(self.estimator)
        kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features),
                            self.param_dtype)
        o_a = o if o_a is None else o_a
        if self.binarize_inputs:
            x = _binary.binarize(x, o_a, self.t_a, self.estimator)
        y = x @ _binary.binary_kernel(kernel, o, self.t, self.estimator)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,), self.param_dtype)
        return y


class BinaryConv(nn.Module):
    """A 1-bit convolution (the official ``BinarizeConv2d``): ReSTE/STE as in BinaryDense."""

    features: int
    kernel_size: int | Sequence[int]
    strides: int | Sequence[int] = 1
    padding: _tract.Padding = "SAME"
    use_bias: bool = False
    binarize_inputs: bool = True
    estimator: _binary.Estimator = "reste"
    t: float = _reste.DEFAULT_T
    t_a: float = _reste.DEFAULT_T
    param_dtype: jnp.dtype = jnp.float32
    kernel_init: nn.initializers.Initializer = _default_kernel_init
    bias_init: nn.initializers.Initializer = _zeros

    @nn.compact
    def __call__(self, x: jax.Array, o: jax.typing.ArrayLike = 1.0,
                 o_a: jax.typing.ArrayLike | None = None) -> jax.Array:
        _binary.check_estimator(self.estimator)
        size = _binary.kernel_size_tuple(self.kernel_size, x.ndim - 2)
        kernel = self.param("kernel", self.kernel_init, (*size, x.shape[-1], self.features),
                            self.param_dtype)
        o_a = o if o_a is None else o_a
        if self.binarize_inputs:
            x = _binary.binarize(x, o_a, self.t_a, self.estimator)
        y = _binary.conv(x, _binary.binary_kernel(kernel, o, self.t, self.estimator),
                         self.strides, self.padding)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,), self.param_dtype)
        return y


class GhostBatchNorm(nn.Module):
    """BatchNorm over ghost batches of ``ghost_batch_size`` rows (Hoffer et al. 2017).

    Training (``use_running_average=False``): the batch (axis 0) is split into B/g
    consecutive ghost batches, each normalised with its own mean and biased variance
    over its rows and all non-feature axes (features last); the running statistics get
    one update per ghost batch, in order, r ← m·r + (1 − m)·stat_k (as the official code,
    which runs the model once per ghost batch). Evaluation: the running statistics, as
    ``nn.BatchNorm``. With ``ghost_batch_size`` equal to the batch this is
    ``nn.BatchNorm`` (same variables, outputs and updates). ``ghost_batch_size`` must
    divide the batch (else ``ValueError``).

    Attributes:
      ghost_batch_size: |B_S| (the paper uses 128).
      use_running_average: evaluation mode (may instead be passed to ``__call__``).
      momentum: Flax convention, weight of the old value (0.9 = PyTorch's 0.1, the
        official code's BatchNorm default).
      epsilon: added to the variance (PyTorch and Flax default 1e-5).
      axis_name: gather every device's ghost statistics for the running-statistics update
        (replicas stay identical; normalisation stays per local ghost batch).
    """

    ghost_batch_size: int
    use_running_average: bool | None = None
    momentum: float = 0.9
    epsilon: float = 1e-5
    use_bias: bool = True
    use_scale: bool = True
    axis_name: str | None = None
    param_dtype: jnp.dtype = jnp.float32
    scale_init: nn.initializers.Initializer = nn.initializers.ones_init()
    bias_init: nn.initializers.Initializer = _zeros

    @nn.compact
    def __call__(self, x: jax.Array, use_running_average: bool | None = None) -> jax.Array:
        _ghost_bn.check_ghost_batch_size(self.ghost_batch_size)
        use_running_average = nn.merge_param(
            "use_running_average", self.use_running_average, use_running_average)
        features = x.shape[-1]
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros(features, jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones(features, jnp.float32))
        scale = (self.param("scale", self.scale_init, (features,), self.param_dtype)
                 if self.use_scale else None)
        bias = (self.param("bias", self.bias_init, (features,), self.param_dtype)
                if self.use_bias else None)
        if use_running_average:
            return _ghost_bn.normalize_with(x, ra_mean.value, ra_var.value, scale, bias,
                                            self.epsilon)
        y, (mean, var) = _ghost_bn.ghost_batch_norm(x, self.ghost_batch_size, scale, bias,
                                                    self.epsilon)
        if not self.is_initializing():
            ra_mean.value, ra_var.value = _ghost_bn.update_running_statistics(
                ra_mean.value, ra_var.value, mean, var, self.momentum, self.axis_name)
        return y
