# SPDX-License-Identifier: Apache-2.0
"""EGGROLL noise: the generators and the population's factors.

"Evolution Strategies at the Hyperscale" (EGGROLL, 2025, arXiv 2511.16652), Algorithm 1:
member i of a matrix leaf W (m×n) is W + σE_i with E_i = A_i B_iᵀ/√r, A_i ∈ R^{m×r},
B_i ∈ R^{n×r} i.i.d. standard Gaussian; vectors get dense Gaussian noise as in OpenES.
The factors are never stored: noise index k of a leaf is regenerated from the step key,
the leaf's path and k alone, so it does not depend on the population size or batching.

Generators (``EggrollConfig.generator``), both i.i.d. standard Gaussians:

* ``"hash"`` (default): one threefry call per leaf and step gives two 32-bit words
  (s₀, s₁); entry j of index k is the 32-bit counter hash
  h = T(T(k ⊕ s₀) + T(j ⊕ s₁)) (T: Wellons' ``triple32`` integer permutation), whose top
  24 bits give u ∈ (−1, 1) (odd multiples of 2⁻²⁴, symmetric) and z = √2·erf⁻¹(u), the
  inverse-CDF transform of ``jax.random.normal``. One hash per Gaussian instead of a
  20-round threefry block per pair.
* ``"jax"``: ``jax.random.normal(fold_in(leaf key, k), (size,))`` per noise index with
  the configured key implementation (the official code's key-per-index scheme).

Difference from the official code (HyperscaleES, GPL-3.0; nothing is taken from it): its
bits come from JAX's PRNG per (step, index, leaf); ``"jax"`` follows that scheme (with
other fold-in constants), ``"hash"`` uses a cheaper counter-based generator. The
distribution (i.i.d. N(0, 1) entries of A, B and dense noise, rounded to 24-bit uniform
levels as JAX's own sampler) and hence the estimator are the paper's.
"""

from __future__ import annotations

import functools
import math
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradkit.evolution import _config
from gradkit.evolution._config import EggrollKey

_MAX_ENTRIES = 2**32


class LowRankFactors(NamedTuple):
    """The factors of E = A Bᵀ/√r for one matrix leaf (leading axes: noise indices)."""

    a: jax.Array  # float32[..., m, r]; m = prod(leaf.shape[:-1]).
    b: jax.Array  # float32[..., n, r]; n = leaf.shape[-1].


# --------------------------------------------------------------------------- generators


def _triple32(x: jax.Array) -> jax.Array:
    """Wellons' ``triple32`` 32-bit integer permutation (hash-prospector, public domain)."""
    x = x ^ (x >> 17)
    x = x * jnp.uint32(0xED5AD4BB)
    x = x ^ (x >> 11)
    x = x * jnp.uint32(0xAC4C1B51)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x31848BAB)
    return x ^ (x >> 14)


def _hash_words(leaf_key, indices: jax.Array, size: int, start: int = 0):
    """(row, col): the hash words of noise `indices` (uint32[K]) and of the entries
    start … start + size − 1 (uint32[size]), combined by :func:`hash_normal`."""
    if start + size >= _MAX_ENTRIES:
        raise ValueError(f"a leaf's noise has {size} ≥ 2^32 entries per member; use "
                         f"generator='jax'.")
    seeds = jax.random.bits(leaf_key, (2,), jnp.uint32)
    row = _triple32(indices.astype(jnp.uint32) ^ seeds[0])  # one word per noise index
    entries = jax.lax.iota(jnp.uint32, size) + jnp.uint32(start)
    return row, _triple32(entries ^ seeds[1])  # and one word per entry


def hash_normal(row: jax.Array, col: jax.Array) -> jax.Array:
    """float32[K, size]: the Gaussians of the words' outer sum, h = T(row + col)."""
    h = _triple32(row[:, None] + col[None, :])
    # Top 24 bits → odd multiples of 2⁻²⁴ in (−1, 1), exact in float32 and symmetric.
    q = (h >> 8).astype(jnp.int32)
    u = (2 * q - (2**24 - 1)).astype(jnp.float32) * jnp.float32(2.0**-24)
    return jnp.float32(math.sqrt(2.0)) * jax.lax.erf_inv(u)


def _jax_normal(leaf_key, indices: jax.Array, size: int) -> jax.Array:
    """float32[len(indices), size]: ``normal(fold_in(leaf_key, k), (size,))`` per index."""
    return jax.vmap(lambda k: jax.random.normal(
        jax.random.fold_in(leaf_key, k), (size,), jnp.float32))(indices)


# A leaf's noise is drawn in two phases: its sources (small: the hash words, or the leaf
# key and the indices for "jax"), then the Gaussians from them.


def leaf_sources(leaf_key, indices: jax.Array, kind: str, shape: tuple[int, ...],
                 rank: int, generator: str):
    """What :func:`leaf_from_sources` draws the noise of one leaf from."""
    if generator == "jax":
        return leaf_key, indices
    if kind == "lowrank":
        # A from the entries [0, m·r), B from [m·r, (m + n)·r) of index k.
        m, n = _config.matrix_dims(shape)
        return (_hash_words(leaf_key, indices, m * rank),
                _hash_words(leaf_key, indices, n * rank, start=m * rank))
    return (_hash_words(leaf_key, indices, math.prod(shape)),)


def leaf_from_sources(sources, kind: str, shape: tuple[int, ...], rank: int,
                      generator: str):
    """The noise of one leaf (leading axis: the noise indices) from its sources."""
    if generator == "jax":
        leaf_key, indices = sources
        num = indices.shape[0]
        if kind != "lowrank":
            return _jax_normal(leaf_key, indices, math.prod(shape)).reshape(num, *shape)
        m, n = _config.matrix_dims(shape)
        z = _jax_normal(leaf_key, indices, (m + n) * rank).reshape(num, m + n, rank)
        return LowRankFactors(z[:, :m], z[:, m:])
    if kind == "lowrank":
        m, n = _config.matrix_dims(shape)
        a, b = (hash_normal(*words) for words in sources)
        return LowRankFactors(a.reshape(-1, m, rank), b.reshape(-1, n, rank))
    return hash_normal(*sources[0]).reshape(-1, *shape)


# Jitted so that an eager call (perturb or sample_noise outside jax.jit) runs one compiled
# program per leaf shape instead of dispatching each elementwise operation of the
# generator separately; inside a caller's jit it is inlined.
@functools.partial(jax.jit, static_argnames=("kind", "shape", "rank", "generator"))
def _leaf_noise(leaf_key, indices: jax.Array, kind: str, shape: tuple[int, ...], rank: int,
                generator: str):
    """The noise of noise `indices` (int[K]) for one leaf; leading axis K."""
    static = (kind, shape, rank, generator)
    return leaf_from_sources(leaf_sources(leaf_key, indices, *static), *static)


def leaf_settings(params: Any, key: EggrollKey):
    """(leaf key, static settings of the leaf's noise) per leaf; None for frozen leaves."""
    config = key.config
    paths, leaves, kind_leaves, _ = _config.flat_leaves(params, config.kinds)
    return [None if kind == "frozen" else
            (jax.random.fold_in(key.key, _config.path_id(path)),
             (kind, tuple(jnp.shape(leaf)), config.rank, config.generator))
            for path, leaf, kind in zip(paths, leaves, kind_leaves, strict=True)]


def _noise_of_indices(params: Any, key: EggrollKey, indices: jax.Array):
    return [None if s is None else _leaf_noise(s[0], indices, *s[1])
            for s in leaf_settings(params, key)]


def eggroll_sample_noise(params: Any, key: EggrollKey, population_size: int,
                         ) -> list[LowRankFactors | jax.Array | None]:
    """Draws the EGGROLL noise of a whole population's K noise indices in one call.

    Noise index k of leaf ℓ is regenerated from (step key, path of ℓ, k) alone (see
    :mod:`gradkit.evolution`), so row k is the same whatever the population size,
    batching or device layout. Member i uses row ``i // 2`` (antithetic) or ``i``.

    Args:
      params: parameter pytree (only shapes are used).
      key: the step's :class:`EggrollKey` (:func:`eggroll_current_key`).
      population_size: N; K = N/2 with antithetic pairs, else N.

    Returns:
      A list aligned with ``jax.tree.leaves(params)``: :class:`LowRankFactors` with
      leading axis K (A: float32[K, m, r], B: float32[K, n, r]) for low-rank leaves,
      float32[K, *shape] for dense leaves, ``None`` for frozen ones.
    """
    key = _config.check_key(key, "eggroll_sample_noise")
    num = _config.num_noise(population_size, key.config.antithetic)
    return _noise_of_indices(params, key, jnp.arange(num, dtype=jnp.int32))


def _row(leaf_noise, index):
    """Row `index` (one noise index) of a leaf's population noise."""
    return jax.tree.map(lambda t: t[index], leaf_noise)


def member_rows(params: Any, key: EggrollKey, index: jax.Array, noise: list | None):
    """The noise of one noise index (no leading axis): rows of pre-generated `noise`, or
    generated for `index` alone (under ``jax.vmap``, for all indices in one computation)."""
    if noise is None:
        noise = _noise_of_indices(params, key, jnp.reshape(index, (1,)))
        index = 0
    return [None if n is None else _row(n, index) for n in noise]
