"""EGGROLL noise: leaf kinds, step keys, the population's factors, materialised members.

"Evolution Strategies at the Hyperscale" (EGGROLL, 2025, arXiv 2511.16652), Algorithm 1:
member i of a matrix leaf W (m×n) is W + σE_i with E_i = A_i B_iᵀ/√r, A_i ∈ R^{m×r},
B_i ∈ R^{n×r} i.i.d. standard Gaussian; vectors get dense Gaussian noise as in OpenES.
The factors are never stored: they are regenerated from a key folded from (seed,
step // noise_reuse, leaf path), one draw per leaf for the whole population, member i
taking row k(i) of it (k(i) = i // 2 with antithetic ± pairs).

Difference from the official code (HyperscaleES, GPL-3.0; nothing is taken from it):
there a key is derived per (step, noise index, leaf); here each leaf's
noise for the whole population is one draw from a key per (step, leaf), row k being
noise index k. Same distribution, different bits; it makes the PRNG cheap and gives the
same factors in the forward and in the update for every key implementation (see
``benchmarks/eggroll.py``).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from typing import Any
from typing import Literal
from typing import NamedTuple

import jax
import jax.numpy as jnp

from gradkit import _validation

Kind = Literal["lowrank", "dense", "frozen"]
KINDS: tuple[str, ...] = ("lowrank", "dense", "frozen")
# Raw key data of this implementation is stored in the state. The whole population's
# factors of a leaf are drawn in one call; with that, threefry drew Gaussians as fast
# as `rbg`/`unsafe_rbg` on our CPU (or faster), and unlike them its bits do not depend
# on batching or sharding. See benchmarks/eggroll.py for both.
DEFAULT_KEY_IMPL = "threefry2x32"


class LowRankFactors(NamedTuple):
    """The factors of E = A Bᵀ/√r for one matrix leaf (leading axes: noise indices)."""

    a: jax.Array  # float32[..., m, r]; m = prod(leaf.shape[:-1]).
    b: jax.Array  # float32[..., n, r]; n = leaf.shape[-1].


def _static_int(name: str, value: Any) -> int:
    """A Python int from an int or a concrete array (as `inject_hyperparams` passes)."""
    if hasattr(value, "shape") and not isinstance(value, int):
        try:
            value = int(value)
        except jax.errors.ConcretizationTypeError as e:
            raise ValueError(
                f"`{name}` sets array shapes and must be static; with "
                f"`optax.inject_hyperparams` pass `static_args=('{name}',)`.") from e
    _validation.check_positive_int(name, value)
    return int(value)


# --------------------------------------------------------------------------- leaf kinds


def default_kind(leaf: Any) -> Kind:
    """``"lowrank"`` for leaves with ≥ 2 dims (matrix view m×n), ``"dense"`` otherwise."""
    return "lowrank" if jnp.ndim(leaf) >= 2 else "dense"


def resolve_kinds(params: Any, kinds: Any = None) -> Any:
    """Returns a pytree of kinds (``"lowrank"``, ``"dense"``, ``"frozen"``) for `params`.

    Args:
      params: the parameter pytree.
      kinds: ``None`` (:func:`default_kind` per leaf); a callable ``(path, leaf) ->
        kind`` (path as from ``jax.tree_util.tree_flatten_with_path``), returning
        ``None`` for the default; or a pytree of kind strings with the structure of
        `params`.
    """
    if kinds is None:
        return jax.tree.map(default_kind, params)
    if callable(kinds):
        def pick(path, leaf):
            kind = kinds(path, leaf)
            kind = default_kind(leaf) if kind is None else kind
            _validation.check_choice("kinds", kind, KINDS)
            return kind
        return jax.tree_util.tree_map_with_path(pick, params)
    kinds_leaves, kinds_def = jax.tree.flatten(kinds)
    if kinds_def != jax.tree.structure(params):
        raise ValueError(
            f"`kinds` must have the structure of params; got {kinds_def} for "
            f"{jax.tree.structure(params)}.")
    for kind in kinds_leaves:
        _validation.check_choice("kinds", kind, KINDS)
    return kinds


def _matrix_dims(shape: Sequence[int]) -> tuple[int, int]:
    return math.prod(shape[:-1]), shape[-1]


def _path_id(path) -> int:
    """A stable 31-bit id of a leaf path, folded into the key of that leaf."""
    return zlib.crc32(jax.tree_util.keystr(path).encode()) & 0x7FFFFFFF


def _flat(params, kinds):
    """(paths, leaves, kinds, treedef) of `params`, the kinds resolved per leaf."""
    leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(params)
    kind_leaves = jax.tree.leaves(resolve_kinds(params, kinds))
    paths = [p for p, _ in leaves_with_path]
    leaves = [x for _, x in leaves_with_path]
    return paths, leaves, kind_leaves, treedef


# --------------------------------------------------------------------------- keys


def step_key(
    key_data: jax.Array, count: jax.Array, noise_reuse: int = 1,
    key_impl: str = DEFAULT_KEY_IMPL,
) -> jax.Array:
    """The typed key of one ES step: fold_in(seed key, count // noise_reuse)."""
    epoch = jnp.asarray(count, jnp.int32) // noise_reuse
    return jax.random.fold_in(jax.random.wrap_key_data(key_data, impl=key_impl), epoch)


# --------------------------------------------------------------------------- noise


def _leaf_noise(leaf_key, num: int, kind: str, shape, rank: int):
    """All `num` noise indices of one leaf in a single draw (row k is index k)."""
    if kind == "lowrank":
        m, n = _matrix_dims(shape)
        z = jax.random.normal(leaf_key, (num, m + n, rank), jnp.float32)
        return LowRankFactors(z[:, :m], z[:, m:])
    return jax.random.normal(leaf_key, (num, *shape), jnp.float32)


def num_noise(population_size: int, antithetic: bool = True) -> int:
    """Number of distinct noise indices: N/2 with antithetic pairs, else N."""
    population_size = _static_int("population_size", population_size)
    if antithetic and population_size % 2:
        raise ValueError(f"antithetic sampling needs an even `population_size`, got "
                         f"{population_size}.")
    return population_size // 2 if antithetic else population_size


def sample_noise(
    params: Any, key: jax.Array, population_size: int, *, rank: int = 1,
    antithetic: bool = True, kinds: Any = None,
) -> list[LowRankFactors | jax.Array | None]:
    """Draws the noise of the whole population, one draw per leaf.

    Leaf ℓ's noise is ``normal(fold_in(key, path_id(ℓ)), (K, m + n, r))`` (split into A
    and B) for a low-rank leaf, ``normal(..., (K, *shape))`` for a dense one, where K is
    the number of noise indices (N/2 with antithetic pairs). Member i uses row
    ``i // 2`` (antithetic) or ``i``. Drawing every member in one call is what makes the
    PRNG cheap (and keeps `rbg` keys reproducible, whose bits depend on the draw's shape).

    Args:
      params: parameter pytree (only shapes are used).
      key: the step key (:func:`current_key`).
      population_size: N.
      rank: rank r of the low-rank factors.
      antithetic: whether members come in ± pairs.
      kinds: see :func:`resolve_kinds`.

    Returns:
      A list aligned with ``jax.tree.leaves(params)``: :class:`LowRankFactors` with
      leading axis K for low-rank leaves, float32[K, *shape] for dense leaves, ``None``
      for frozen ones.
    """
    rank = _static_int("rank", rank)
    num = num_noise(population_size, antithetic)
    paths, leaves, kind_leaves, _ = _flat(params, kinds)
    return [None if kind == "frozen" else
            _leaf_noise(jax.random.fold_in(key, _path_id(path)), num, kind,
                        jnp.shape(leaf), rank)
            for path, leaf, kind in zip(paths, leaves, kind_leaves, strict=True)]


def _given_or_sampled(noise, params, key, population_size, rank, antithetic, kinds):
    """`noise` if pre-generated, else the population's :func:`sample_noise`."""
    if noise is not None:
        return noise
    return sample_noise(params, key, population_size, rank=rank, antithetic=antithetic,
                        kinds=kinds)


def noise_index_and_sign(member: jax.Array, antithetic: bool = True):
    """(noise index, ±1) of a member: antithetic pairs (2k, 2k+1) share index k."""
    member = jnp.asarray(member, jnp.int32)
    if not antithetic:
        return member, jnp.ones([], jnp.float32)
    return member // 2, 1.0 - 2.0 * (member % 2).astype(jnp.float32)


def _member_row(leaf_noise, index):
    """Row `index` (one noise index) of a leaf's population noise."""
    return jax.tree.map(lambda t: t[index], leaf_noise)


def _perturbed_leaf(leaf, member_noise, kind: str, signed_sigma, rank: int):
    """W + σ s_i E for one leaf: E = A Bᵀ/√r (low-rank) or the dense noise, in W's dtype."""
    if kind == "lowrank":
        f = member_noise
        delta = (f.a @ f.b.T / math.sqrt(rank)).reshape(jnp.shape(leaf))
    else:
        delta = member_noise
    return (leaf + signed_sigma * delta).astype(leaf.dtype)


def perturb(
    params: Any, key: jax.Array, member: jax.Array, *, sigma: jax.typing.ArrayLike,
    population_size: int, rank: int = 1, antithetic: bool = True, kinds: Any = None,
    noise: list | None = None,
) -> Any:
    """Member i's parameters W + σ·s_i·E_k, materialised (works for any function).

    Args:
      params: the mean parameters.
      key: the step key (:func:`current_key`).
      member: member index i (may be traced, e.g. under ``jax.vmap``).
      sigma: noise scale σ.
      population_size: N (the whole population's noise is drawn in one call and
        member i's row taken; under ``jax.vmap`` over members the draw is shared).
      rank, antithetic, kinds: as given to :func:`scale_by_eggroll`.
      noise: optional pre-generated :func:`sample_noise` (then no draw happens here).
    """
    rank = _static_int("rank", rank)
    index, sign = noise_index_and_sign(member, antithetic)
    noise = _given_or_sampled(noise, params, key, population_size, rank, antithetic, kinds)
    _, leaves, kind_leaves, treedef = _flat(params, kinds)
    new = [leaf if kind == "frozen" else
           _perturbed_leaf(leaf, _member_row(leaf_noise, index), kind, sigma * sign, rank)
           for leaf, kind, leaf_noise in zip(leaves, kind_leaves, noise, strict=True)]
    return jax.tree.unflatten(treedef, new)
