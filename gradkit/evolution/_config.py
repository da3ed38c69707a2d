# SPDX-License-Identifier: Apache-2.0
"""EGGROLL settings and keys: the one :class:`EggrollConfig`, the step's :class:`EggrollKey`,
leaf kinds and the member → noise-index map.

"Evolution Strategies at the Hyperscale" (EGGROLL, 2025, arXiv 2511.16652), Algorithm 1:
member i of a matrix leaf W is W + σE_i; the noise is regenerated from the key of (key,
step // noise_interval, leaf path, noise index k(i)), k(i) = i // 2 with antithetic ± pairs.

Every setting that decides which noise a member gets (rank, antithetic pairs, leaf kinds,
key implementation, generator) lives in ONE :class:`EggrollConfig`, created by
:func:`scale_by_eggroll` and carried, with σ, in its state and in the :class:`EggrollKey`
that :func:`eggroll_current_key` returns. :func:`eggroll_perturb`,
:func:`eggroll_sample_noise` and the forward read the settings from that key, so they cannot
disagree with the transform.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Sequence
from typing import Any
from typing import Literal
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradkit import _common

Kind = Literal["lowrank", "dense", "frozen"]
KINDS: tuple[str, ...] = ("lowrank", "dense", "frozen")
Generator = Literal["hash", "jax"]
GENERATORS: tuple[str, ...] = ("hash", "jax")
# The implementation of the key stored in the state (raw key data), from which the
# per-step and per-leaf keys are folded.
DEFAULT_KEY_IMPL = "threefry2x32"
KEY_IMPLS: tuple[str, ...] = ("threefry2x32", "rbg", "unsafe_rbg")


@dataclasses.dataclass(frozen=True)
class KindsTree:
    """A pytree of kind strings, frozen into a hashable value."""

    treedef: Any
    leaves: tuple[str, ...]


def freeze_kinds(kinds: Any) -> Any:
    """`kinds` as stored in an :class:`EggrollConfig`: a pytree becomes a :class:`KindsTree`."""
    if kinds is None or callable(kinds) or isinstance(kinds, KindsTree):
        return kinds
    leaves, treedef = jax.tree.flatten(kinds)
    for kind in leaves:
        _common.check_choice("kinds", kind, KINDS)
    return KindsTree(treedef, tuple(leaves))


@dataclasses.dataclass(frozen=True)
class EggrollConfig:
    """The static settings that decide every member's noise, shared by all EGGROLL code.

    Created once by :func:`scale_by_eggroll` (``state.config``) and carried in its state
    and in the :class:`EggrollKey` of each step, which :func:`eggroll_perturb`,
    :func:`eggroll_sample_noise`, :func:`eggroll_apply_member` and
    :func:`eggroll_population_apply` read. Frozen and hashable; a pytree node without
    leaves (static under ``jax.jit``). σ and ``noise_interval`` are not here: they may be
    traced (injected) values, so they are array leaves of the state (and σ of the key).

    Attributes:
      rank: rank r of the matrix perturbations (paper default 1).
      antithetic: members 2k, 2k+1 share noise index k with signs +, −.
      kinds: ``None`` (``"lowrank"`` for leaves with ≥ 2 dims, else ``"dense"``), a
        callable ``(path, leaf) -> kind | None``, or a pytree of
        ``"lowrank"``/``"dense"``/``"frozen"`` (stored frozen).
      key_impl: JAX PRNG implementation of the key (``"threefry2x32"``, ``"rbg"``,
        ``"unsafe_rbg"``).
      generator: ``"hash"`` (counter hash, default) or ``"jax"`` (``jax.random.normal``
        per noise index); see :mod:`gradkit.evolution`.
    """

    rank: int = 1
    antithetic: bool = True
    kinds: Any = None
    key_impl: str = DEFAULT_KEY_IMPL
    generator: Generator = "hash"

    def __post_init__(self):
        object.__setattr__(self, "rank", _common.static_int("rank", self.rank))
        if not isinstance(self.antithetic, (bool, np.bool_)):
            raise TypeError(f"`antithetic` must be a bool, got {self.antithetic!r}.")
        object.__setattr__(self, "antithetic", bool(self.antithetic))
        object.__setattr__(self, "kinds", freeze_kinds(self.kinds))
        _common.check_choice("key_impl", self.key_impl, KEY_IMPLS)
        _common.check_choice("generator", self.generator, GENERATORS)


# Static: flattening a config gives no leaves, so it can sit inside states and keys.
jax.tree_util.register_pytree_node(
    EggrollConfig, lambda c: ((), c), lambda c, _: c)


class EggrollKey(NamedTuple):
    """Everything a member's noise depends on: step key, σ and the static settings.

    Returned by :func:`eggroll_current_key`; pass it unchanged to
    :func:`eggroll_perturb`, :func:`eggroll_sample_noise`, :func:`eggroll_apply_member`,
    :func:`eggroll_population_apply`. Without the transform, build one directly:
    ``EggrollKey(jax.random.key(0), jnp.float32(0.1), EggrollConfig(rank=2))``.
    """

    key: jax.Array  # typed PRNG key of this step (impl config.key_impl).
    sigma: jax.Array  # float32 scalar, σ.
    config: EggrollConfig  # static (no leaves).


def check_key(key: Any, fn: str) -> EggrollKey:
    """`key` if it is an :class:`EggrollKey`; a `TypeError` naming `fn` otherwise."""
    if not isinstance(key, EggrollKey):
        raise TypeError(
            f"{fn} takes the EggrollKey of the step, `gradkit.eggroll_current_key("
            f"opt_state)` (it carries σ, rank, antithetic, kinds, ... so they cannot "
            f"differ from the transform's), got {type(key).__name__}.")
    return key


def step_key(key_data: jax.Array, count: jax.Array, noise_interval: jax.typing.ArrayLike,
             sigma: jax.typing.ArrayLike, config: EggrollConfig) -> EggrollKey:
    """The :class:`EggrollKey` of one ES step: fold_in(key, count // noise_interval)."""
    epoch = jnp.asarray(count, jnp.int32) // jnp.asarray(noise_interval, jnp.int32)
    key = jax.random.fold_in(jax.random.wrap_key_data(key_data, impl=config.key_impl), epoch)
    return EggrollKey(key, jnp.asarray(sigma, jnp.float32), config)


# --------------------------------------------------------------------------- leaf kinds


def default_kind(leaf: Any) -> Kind:
    """``"lowrank"`` for leaves with ≥ 2 dims (matrix view m×n), ``"dense"`` otherwise."""
    return "lowrank" if jnp.ndim(leaf) >= 2 else "dense"


def eggroll_resolve_kinds(params: Any, kinds: Any = None) -> Any:
    """Returns a pytree of EGGROLL leaf kinds (``"lowrank"``, ``"dense"``, ``"frozen"``).

    Args:
      params: the parameter pytree.
      kinds: ``None`` (``"lowrank"`` for leaves with ≥ 2 dims, else ``"dense"``); a
        callable ``(path, leaf) -> kind`` (path as from
        ``jax.tree_util.tree_flatten_with_path``), returning ``None`` for the default;
        or a pytree of kind strings with the structure of `params` (or an
        :class:`EggrollConfig`'s frozen form of one).

    Returns:
      A pytree with the structure of `params` holding one kind string per leaf.
    """
    if kinds is None:
        return jax.tree.map(default_kind, params)
    if callable(kinds):
        def pick(path, leaf):
            kind = kinds(path, leaf)
            kind = default_kind(leaf) if kind is None else kind
            _common.check_choice("kinds", kind, KINDS)
            return kind
        return jax.tree_util.tree_map_with_path(pick, params)
    frozen = freeze_kinds(kinds)
    if frozen.treedef != jax.tree.structure(params):
        raise ValueError(
            f"`kinds` must have the structure of params; got {frozen.treedef} for "
            f"{jax.tree.structure(params)}.")
    return jax.tree.unflatten(frozen.treedef, list(frozen.leaves))


def flat_leaves(params: Any, kinds: Any):
    """(paths, leaves, kinds, treedef) of `params`, the kinds resolved per leaf."""
    leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(params)
    kind_leaves = jax.tree.leaves(eggroll_resolve_kinds(params, kinds))
    paths = [p for p, _ in leaves_with_path]
    leaves = [x for _, x in leaves_with_path]
    return paths, leaves, kind_leaves, treedef


def matrix_dims(shape: Sequence[int]) -> tuple[int, int]:
    """(m, n) of a leaf's matrix view: all leading dims by the last one."""
    return math.prod(shape[:-1]), shape[-1]


def path_id(path) -> int:
    """A stable 31-bit id of a leaf path, folded into the key of that leaf."""
    return zlib.crc32(jax.tree_util.keystr(path).encode()) & 0x7FFFFFFF


# --------------------------------------------------------------------------- members


def num_noise(population_size: int, antithetic: bool = True) -> int:
    """Number of distinct noise indices: N/2 with antithetic pairs, else N."""
    population_size = _common.static_int("population_size", population_size)
    if antithetic and population_size % 2:
        raise ValueError(f"antithetic sampling needs an even `population_size`, got "
                         f"{population_size}.")
    return population_size // 2 if antithetic else population_size


def noise_index_and_sign(member: jax.Array, antithetic: bool = True):
    """(noise index, ±1) of a member: antithetic pairs (2k, 2k+1) share index k."""
    member = jnp.asarray(member, jnp.int32)
    if not antithetic:
        return member, jnp.ones([], jnp.float32)
    return member // 2, 1.0 - 2.0 * (member % 2).astype(jnp.float32)
