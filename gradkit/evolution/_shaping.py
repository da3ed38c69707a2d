# SPDX-License-Identifier: Apache-2.0
"""EGGROLL fitness shaping f ↦ f̃ (z-score, group baseline, centered ranks, raw).

"Evolution Strategies at the Hyperscale" (EGGROLL, 2025, arXiv 2511.16652), Algorithm 1
uses shaped fitness f̃_i. The official code's default is the z-score (f − mean)/√(var +
1e-5); a group baseline (subtract each group's mean, divide by the global std) and the
centered ranks of OpenES are its options.

Not in the paper (our addition): members with non-finite fitness are left out of the
statistics and get f̃ = 0 (see :func:`eggroll_shape_fitness`), so one diverged member
cannot turn the whole update into NaN.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

from gradkit import _common

Fitness = jax.Array  # float[population_size]
FitnessShaping = Literal["zscore", "group", "centered_rank", "raw"]
FITNESS_SHAPINGS: tuple[str, ...] = ("zscore", "group", "centered_rank", "raw")
# Variance floor of the official z-score shaping: (f − mean) / √(var + 1e-5).
ZSCORE_EPS = 1e-5


def eggroll_shape_fitness(
    fitness: Fitness, fitness_shaping: FitnessShaping = "zscore", *,
    group_size: int | None = None,
) -> jax.Array:
    """EGGROLL fitness shaping f ↦ f̃ (non-finite entries get f̃ = 0 and are left out).

    * ``"zscore"`` (official default): (f − mean)/√(var + 1e-5).
    * ``"group"``: subtract the mean of each consecutive group of `group_size`
      members, divide by the global √(var + 1e-5) of f.
    * ``"centered_rank"``: ranks mapped to [−0.5, 0.5] (OpenES); tied values get
      their mean rank.
    * ``"raw"``: f unchanged.

    Members with NaN or ±Inf fitness are treated as absent: statistics use the finite
    members only and their shaped fitness is 0 (no contribution). If none is finite
    the result is all zeros, so the ES step is zero.

    Args:
      fitness: float[N], the members' fitness (higher is better).
      fitness_shaping: ``"zscore"``, ``"group"``, ``"centered_rank"`` or ``"raw"``.
      group_size: members per group for ``"group"`` (must divide N).

    Returns:
      float32[N], the shaped fitness f̃.
    """
    _common.check_choice("fitness_shaping", fitness_shaping, FITNESS_SHAPINGS)
    f = jnp.asarray(fitness, jnp.float32)
    if f.ndim != 1:
        raise ValueError(f"`fitness` must be a vector [population_size], got shape {f.shape}.")
    ok = jnp.isfinite(f)
    count = jnp.maximum(jnp.sum(ok), 1)
    f0 = jnp.where(ok, f, 0.0)
    mean = jnp.sum(f0) / count
    var = jnp.sum(jnp.where(ok, (f - mean) ** 2, 0.0)) / count
    if fitness_shaping == "raw":
        out = f0
    elif fitness_shaping == "zscore":
        out = (f0 - mean) / jnp.sqrt(var + ZSCORE_EPS)
    elif fitness_shaping == "group":
        if group_size is None or f.shape[0] % group_size:
            raise ValueError(f"`group_size` must divide the population size {f.shape[0]}, "
                             f"got {group_size!r}.")
        g = f0.reshape(-1, group_size)
        gok = ok.reshape(-1, group_size)
        gmean = jnp.sum(g, axis=1, keepdims=True) / jnp.maximum(
            jnp.sum(gok, axis=1, keepdims=True), 1)
        out = ((g - gmean) / jnp.sqrt(var + ZSCORE_EPS)).reshape(-1)
    else:  # centered_rank; tied values share their mean rank (so ties cancel).
        n = jnp.sum(ok)
        keyed = jnp.where(ok, f, jnp.inf)  # non-finite sorted last
        srt = jnp.sort(keyed)
        lo = jnp.searchsorted(srt, keyed, side="left")
        hi = jnp.searchsorted(srt, keyed, side="right")
        ranks = (lo + hi - 1).astype(jnp.float32) / 2.0
        out = ranks / jnp.maximum(n - 1, 1).astype(jnp.float32) - 0.5
    return jnp.where(ok, out, 0.0)
