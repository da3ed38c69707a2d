# SPDX-License-Identifier: Apache-2.0
"""The population forward's noise, drawn once and kept in memory (a backend fast path).

Its textbook twin is :func:`gradkit.evolution._noise.eggroll_sample_noise`: the values
are the same, bit for bit (``tests/test_eggroll.py``); ``benchmarks/eggroll.py`` times a
whole ES step with each (``--es_step``).

Inside a jitted forward XLA fuses the generator into its consumers: each of the two
members of an antithetic pair then recomputes its index's Gaussians, every entry
recomputes its index's and its own hash word (three hashes instead of one), and layers
that act on every position of a sequence draw each Gaussian again per position. XLA:CPU
removes ``lax.optimization_barrier`` before fusing, but stores the result of a
conditional, so on CPU the Gaussians are drawn inside ``lax.cond(σ ≠ 0, draw, zeros)``
from sources computed outside it (zeros at σ = 0 leave σE unchanged); elsewhere
optimization barriers separate the two phases.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from gradkit.evolution import _config
from gradkit.evolution import _noise
from gradkit.evolution._config import EggrollKey
from gradkit.evolution._noise import LowRankFactors


def stored_noise(params: Any, key: EggrollKey, population_size: int,
                 ) -> list[LowRankFactors | jax.Array | None]:
    """:func:`eggroll_sample_noise` for noise that only enters as σE, kept in memory."""
    key = _config.check_key(key, "stored_noise")
    indices = jnp.arange(_config.num_noise(population_size, key.config.antithetic),
                         dtype=jnp.int32)
    settings = _noise.leaf_settings(params, key)
    sources = [None if s is None else _noise.leaf_sources(s[0], indices, *s[1])
               for s in settings]

    def draw(sources):
        return [None if s is None else _noise.leaf_from_sources(src, *s[1])
                for s, src in zip(settings, sources, strict=True)]

    def on_cpu(sources):
        shapes = jax.eval_shape(draw, sources)
        return jax.lax.cond(key.sigma != 0, draw, lambda _: jax.tree.map(
            lambda t: jnp.zeros(t.shape, t.dtype), shapes), sources)

    def elsewhere(sources):
        return jax.lax.optimization_barrier(draw(jax.lax.optimization_barrier(sources)))

    return jax.lax.platform_dependent(sources, cpu=on_cpu, default=elsewhere)
