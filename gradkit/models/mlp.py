"""A small MLP classifier used by the examples, notebooks and benchmarks."""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax


class MLPClassifier(nn.Module):
    """Two hidden `Dense` layers of width `hidden` with `activation`, then a linear head.

    Parameters are named ``Dense_0``, ``Dense_1`` (hidden) and ``Dense_2`` (head).
    """

    hidden: int
    classes: int
    activation: Callable[[jax.Array], jax.Array] = nn.gelu

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.activation(nn.Dense(self.hidden)(x))
        x = self.activation(nn.Dense(self.hidden)(x))
        return nn.Dense(self.classes)(x)
