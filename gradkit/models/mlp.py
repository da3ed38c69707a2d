# SPDX-License-Identifier: Apache-2.0
"""The multilayer perceptron of gradkit's reference models, examples and benchmarks.

:class:`MLP` (and :func:`dense_layers`, its layers for use inside another module) is the
one MLP definition: the grokking MLP (:class:`gradkit.models.modular.GrokkingMLP`), the ES
policy (:class:`gradkit.models.policy.MLPPolicy`) and the examples' classifiers build on it.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp

# torch.nn.Linear's default: kaiming_uniform(a=√5) = U(±1/√fan_in), variance 1/(3 fan_in).
torch_linear_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_bias_init(fan_in: int) -> Callable[..., jax.Array]:
    """torch.nn.Linear's default bias initialiser: ``U(−1/√fan_in, 1/√fan_in)``."""
    bound = 1.0 / fan_in**0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def dense_layers(
    x: jax.Array,
    features: Sequence[int],
    activation: Callable[[jax.Array], jax.Array] = nn.gelu,
    *,
    use_bias: bool = True,
    weight_init: Literal["flax", "torch"] = "flax",
    dtype: Any = None,
    param_dtype: Any = jnp.float32,
    names: Sequence[str] | None = None,
) -> jax.Array:
    """The layers of :class:`MLP`, created in the calling module's scope.

    Call it inside a ``@nn.compact`` method: the ``nn.Dense`` layers become direct
    children of that module, named ``names`` or Flax's automatic ``Dense_0``, ``Dense_1``,
    … (so a model built on it keeps a flat parameter tree and its initialisation). The
    arguments are :class:`MLP`'s attributes.
    """
    features = tuple(features)
    if not features or any(not isinstance(f, int) or f < 1 for f in features):
        raise ValueError(f"`features` must be a non-empty sequence of positive integers, "
                         f"got {features!r}.")
    if weight_init not in ("flax", "torch"):
        raise ValueError(f"`weight_init` must be 'flax' or 'torch', got {weight_init!r}.")
    if names is not None and len(names) != len(features):
        raise ValueError(f"`names` must name each of the {len(features)} layers, got "
                         f"{names!r}.")
    for i, width in enumerate(features):
        kwargs = {} if names is None else {"name": names[i]}
        if weight_init == "torch":
            kwargs.update(kernel_init=torch_linear_init, bias_init=torch_bias_init(x.shape[-1]))
        x = nn.Dense(width, use_bias=use_bias, dtype=dtype, param_dtype=param_dtype,
                     **kwargs)(x)
        if i < len(features) - 1:
            x = activation(x)
    return x


class MLP(nn.Module):
    """Dense layers of widths ``features``, ``activation`` after every layer but the last.

    ``MLP((64, 64, 10))`` maps ``[..., d]`` to ``[..., 10]`` through two hidden layers of
    width 64. Parameters are named ``Dense_0``, ``Dense_1``, … in layer order. Models that
    contain an MLP call :func:`dense_layers` (the same layers, created in their own scope).

    Attributes:
      features: output width of each layer; the last one is the output size.
      activation: nonlinearity between layers (default GELU).
      use_bias: biases in the Dense layers.
      weight_init: ``"flax"`` (Flax's defaults: LeCun-normal kernels, zero biases) or
        ``"torch"`` (``torch.nn.Linear``'s defaults: kernel and bias ``U(±1/√fan_in)``, as
        the official code of several papers initialises).
      dtype: computation dtype (``None``: inferred from inputs and params).
      param_dtype: parameter dtype.

    Example::

      model = MLP((128, 128, 10), activation=nn.relu)
      params = model.init(jax.random.key(0), jnp.zeros((1, 32)))
      logits = model.apply(params, x)  # [batch, 10]
    """

    features: Sequence[int]
    activation: Callable[[jax.Array], jax.Array] = nn.gelu
    use_bias: bool = True
    weight_init: Literal["flax", "torch"] = "flax"
    dtype: Any = None
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        return dense_layers(x, self.features, self.activation, use_bias=self.use_bias,
                            weight_init=self.weight_init, dtype=self.dtype,
                            param_dtype=self.param_dtype)


def MLPClassifier(
    hidden: int, classes: int, activation: Callable[[jax.Array], jax.Array] = nn.gelu
) -> MLP:
    """Two hidden layers of width ``hidden`` and a linear head: ``MLP((hidden, hidden,
    classes), activation)`` (parameters ``Dense_0``, ``Dense_1``, ``Dense_2``); a factory
    kept for backwards compatibility."""
    return MLP((hidden, hidden, classes), activation=activation)
