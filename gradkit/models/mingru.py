# SPDX-License-Identifier: Apache-2.0
"""A small minGRU character language model (parallel scan, standard linen layers).

minGRU (Feng et al., "Were RNNs All We Needed?", 2024, arXiv 2410.01201):
z_t = σ(W_z x_t), h̃_t = W_h x_t, h_t = (1 − z_t) ⊙ h_{t−1} + z_t ⊙ h̃_t — linear in
h, so it runs as an associative scan over time. EGGROLL's language-model experiments
use (integer) minGRU models; this float version is the toy-scale analogue. All
weights are ``nn.Dense``/``nn.Embed`` params, so the EGGROLL forward perturbs every
one of them with low-rank factors without materialising them.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp


def _combine(left, right):
    a1, b1 = left
    a2, b2 = right
    return a1 * a2, a2 * b1 + b2


class MinGRU(nn.Module):
    """One minGRU layer: [B, T, D] → [B, T, D] (zero initial state)."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        z = jax.nn.sigmoid(nn.Dense(self.features, name="gate")(x))
        h_tilde = nn.Dense(self.features, name="candidate")(x)
        _, h = jax.lax.associative_scan(_combine, (1.0 - z, z * h_tilde), axis=-2)
        return h


class MinGRULM(nn.Module):
    """Char LM: Embed → `depth` × (x + MinGRU(LayerNorm(x))) → LayerNorm → Dense."""

    vocab_size: int
    features: int = 64
    depth: int = 2
    # Initial head bias (``vocab_size`` floats, e.g. ``tuple(text.unigram_log_prior(train))``,
    # as for the reference transformer); ``None`` keeps Flax's zeros.
    head_bias_init: tuple[float, ...] | None = None

    @nn.compact
    def __call__(self, tokens: jax.Array) -> jax.Array:
        x = nn.Embed(self.vocab_size, self.features)(tokens)
        for _ in range(self.depth):
            x = x + MinGRU(self.features)(nn.LayerNorm()(x))
        bias_init = nn.initializers.zeros_init()
        if self.head_bias_init is not None:
            bias_init = nn.initializers.constant(jnp.asarray(self.head_bias_init))
        return nn.Dense(self.vocab_size, bias_init=bias_init, name="head")(nn.LayerNorm()(x))
