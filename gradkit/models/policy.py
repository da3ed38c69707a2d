# SPDX-License-Identifier: Apache-2.0
"""MLP policies for evolution strategies on gymnax environments.

The EGGROLL paper's RL experiments use 3×256 MLP policies; the defaults here are
smaller so that CartPole trains in minutes on a CPU. Every weight matrix is an
``nn.Dense`` kernel, so :func:`gradkit.eggroll_apply_member` perturbs all of them
with the efficient low-rank forward.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gradkit.models.mlp import dense_layers


class MLPPolicy(nn.Module):
    """Observation → action: greedy argmax over logits, or tanh-squashed continuous.

    A tanh MLP (:func:`~gradkit.models.mlp.dense_layers`, parameters ``Dense_0``, …) whose
    output is the logits, or ``action_scale·tanh(out)`` for a continuous action.

    Attributes:
      action_dim: number of discrete actions, or the size of a continuous action.
      hidden: widths of the hidden layers (tanh activations).
      continuous: output ``action_scale * tanh(out)`` instead of logits.
      action_scale: bound of a continuous action.
    """

    action_dim: int
    hidden: Sequence[int] = (64, 64)
    continuous: bool = False
    action_scale: float = 1.0

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        out = dense_layers(obs.astype(jnp.float32), (*self.hidden, self.action_dim), jnp.tanh)
        if self.continuous:
            return self.action_scale * jnp.tanh(out)
        return out

    def act(self, obs: jax.Array) -> jax.Array:
        """The deterministic action: argmax of the logits, or the continuous output."""
        out = self(obs)
        return out if self.continuous else jnp.argmax(out, axis=-1)
