# SPDX-License-Identifier: Apache-2.0
"""EGGROLL members materialised: W + σ·s_i·E_{k(i)} for any model or function.

"Evolution Strategies at the Hyperscale" (EGGROLL, 2025, arXiv 2511.16652), Algorithm 1:
member i is evaluated at W + σE_i, E_i = A_i B_iᵀ/√r for matrices (dense Gaussian noise
for vectors), with antithetic members 2k, 2k+1 at ±σE_k.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from gradkit.evolution import _config
from gradkit.evolution import _noise
from gradkit.evolution._config import EggrollKey


def perturbed_leaf(leaf, member_noise, kind: str, signed_sigma, rank: int):
    """W + σ s_i E for one leaf: E = A Bᵀ/√r (low-rank) or the dense noise, in W's dtype."""
    if kind == "lowrank":
        f = member_noise
        delta = (f.a @ f.b.T / math.sqrt(rank)).reshape(jnp.shape(leaf))
    else:
        delta = member_noise
    return (leaf + signed_sigma * delta).astype(leaf.dtype)


def eggroll_perturb(params: Any, key: EggrollKey, member: jax.Array, *,
                    noise: list | None = None) -> Any:
    """EGGROLL member i's parameters W + σ·s_i·E_{k(i)}, materialised (any function).

    Args:
      params: the mean parameters.
      key: the step's :class:`EggrollKey` (:func:`eggroll_current_key`); it carries σ
        and the settings (rank, antithetic, kinds, generator) of the transform.
      member: member index i (may be traced, e.g. under ``jax.vmap``).
      noise: optional pre-generated :func:`eggroll_sample_noise` (then its row is
        taken); otherwise member i's noise is generated for it alone (under
        ``jax.vmap`` over members, for all of them in one vectorised computation).

    Returns:
      The perturbed parameters, each leaf in its own dtype.
    """
    key = _config.check_key(key, "eggroll_perturb")
    config = key.config
    index, sign = _config.noise_index_and_sign(member, config.antithetic)
    rows = _noise.member_rows(params, key, index, noise)
    _, leaves, kind_leaves, treedef = _config.flat_leaves(params, config.kinds)
    new = [leaf if kind == "frozen" else
           perturbed_leaf(leaf, row, kind, key.sigma * sign, config.rank)
           for leaf, kind, row in zip(leaves, kind_leaves, rows, strict=True)]
    return jax.tree.unflatten(treedef, new)
