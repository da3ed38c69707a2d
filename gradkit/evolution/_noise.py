"""EGGROLL noise: the settings object, step keys, the members' factors, materialised members.

"Evolution Strategies at the Hyperscale" (EGGROLL, 2025, arXiv 2511.16652), Algorithm 1:
member i of a matrix leaf W (m×n) is W + σE_i with E_i = A_i B_iᵀ/√r, A_i ∈ R^{m×r},
B_i ∈ R^{n×r} i.i.d. standard Gaussian; vectors get dense Gaussian noise as in OpenES.
The factors are never stored: they are regenerated from the key of (seed, step //
noise_reuse, leaf path, noise index k(i)), k(i) = i // 2 with antithetic ± pairs.

Every setting that decides which noise a member gets (rank, antithetic pairs, noise
reuse, leaf kinds, key implementation, generator) lives in ONE :class:`EggrollConfig`,
created by :func:`scale_by_eggroll` and carried, with σ, in its state and in the
:class:`EggrollKey` that :func:`current_key` returns. :func:`perturb`,
:func:`sample_noise` and the forward read the settings from that key, so they cannot
disagree with the transform (before, each function took them again by hand and a
mismatch silently drew other noise).

Generators (``EggrollConfig.generator``); both give i.i.d. standard Gaussians and the
noise of index k does not depend on the population size or on batching:

* ``"hash"`` (default): one threefry call per leaf and step gives two 32-bit words
  (s₀, s₁); entry j of index k is the 32-bit counter hash
  h = T(T(k ⊕ s₀) + T(j ⊕ s₁)) (T: Wellons' ``triple32`` integer permutation), whose top
  24 bits give u ∈ (−1, 1) (odd multiples of 2⁻²⁴, symmetric) and z = √2·erf⁻¹(u), the
  same inverse-CDF transform as ``jax.random.normal`` (Giles' erf⁻¹, as XLA's, with a
  bit-level log that vectorises on CPU). One hash per Gaussian instead of a 20-round
  threefry block: on our CPU it is what brings the on-the-fly forward near inference
  speed (``benchmarks/eggroll.py``).
* ``"jax"``: ``jax.random.normal(fold_in(leaf key, k), (size,))`` per noise index with
  the configured key implementation (the official code's key-per-index scheme).

Difference from the official code (HyperscaleES, GPL-3.0; nothing is taken from it): its
bits come from JAX's PRNG per (step, index, leaf); ``"jax"`` follows that scheme (with
other fold-in constants), ``"hash"`` uses a cheaper counter-based generator. The
distribution (i.i.d. N(0, 1) entries of A, B and dense noise, rounded to 24-bit uniform
levels as JAX's own sampler) and hence the estimator are the paper's.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import zlib
from collections.abc import Sequence
from typing import Any
from typing import Literal
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradkit import _validation

Kind = Literal["lowrank", "dense", "frozen"]
KINDS: tuple[str, ...] = ("lowrank", "dense", "frozen")
Generator = Literal["hash", "jax"]
GENERATORS: tuple[str, ...] = ("hash", "jax")
# The key implementation of the seed key stored in the state (raw key data), from which
# the per-step and per-leaf keys are folded.
DEFAULT_KEY_IMPL = "threefry2x32"
KEY_IMPLS: tuple[str, ...] = ("threefry2x32", "rbg", "unsafe_rbg")


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


# --------------------------------------------------------------------------- settings


@dataclasses.dataclass(frozen=True)
class _KindsTree:
    """A pytree of kind strings, frozen into a hashable value."""

    treedef: Any
    leaves: tuple[str, ...]


def _freeze_kinds(kinds: Any) -> Any:
    if kinds is None or callable(kinds) or isinstance(kinds, _KindsTree):
        return kinds
    leaves, treedef = jax.tree.flatten(kinds)
    for kind in leaves:
        _validation.check_choice("kinds", kind, KINDS)
    return _KindsTree(treedef, tuple(leaves))


@dataclasses.dataclass(frozen=True)
class EggrollConfig:
    """The static settings that decide every member's noise, shared by all EGGROLL code.

    Created once by :func:`scale_by_eggroll` (``find_state(opt_state).config``) and
    carried in its state and in the :class:`EggrollKey` of each step, which
    :func:`perturb`, :func:`sample_noise`, :func:`apply_member` and
    :func:`population_apply` read. Frozen and hashable; a pytree node without leaves
    (static under ``jax.jit``). σ and ``noise_reuse`` are not here: they may be traced
    (injected) values, so they are array leaves of the state (and σ of the key).

    Attributes:
      rank: rank r of the matrix perturbations (paper default 1).
      antithetic: members 2k, 2k+1 share noise index k with signs +, −.
      kinds: ``None`` (:func:`default_kind`), a callable ``(path, leaf) -> kind | None``,
        or a pytree of ``"lowrank"``/``"dense"``/``"frozen"`` (stored frozen).
      key_impl: JAX PRNG implementation of the seed key (``"threefry2x32"``, ``"rbg"``,
        ``"unsafe_rbg"``).
      generator: ``"hash"`` (counter hash, default) or ``"jax"`` (``jax.random.normal``
        per noise index); see the module docstring.
    """

    rank: int = 1
    antithetic: bool = True
    kinds: Any = None
    key_impl: str = DEFAULT_KEY_IMPL
    generator: Generator = "hash"

    def __post_init__(self):
        object.__setattr__(self, "rank", _static_int("rank", self.rank))
        if not isinstance(self.antithetic, (bool, np.bool_)):
            raise TypeError(f"`antithetic` must be a bool, got {self.antithetic!r}.")
        object.__setattr__(self, "antithetic", bool(self.antithetic))
        object.__setattr__(self, "kinds", _freeze_kinds(self.kinds))
        _validation.check_choice("key_impl", self.key_impl, KEY_IMPLS)
        _validation.check_choice("generator", self.generator, GENERATORS)


# Static: flattening a config gives no leaves, so it can sit inside states and keys.
jax.tree_util.register_pytree_node(
    EggrollConfig, lambda c: ((), c), lambda c, _: c)


class EggrollKey(NamedTuple):
    """Everything a member's noise depends on: step key, σ and the static settings.

    Returned by :func:`current_key`; pass it unchanged to :func:`perturb`,
    :func:`sample_noise`, :func:`apply_member`, :func:`population_apply`. Without the
    transform, build one directly: ``EggrollKey(jax.random.key(0), jnp.float32(0.1),
    EggrollConfig(rank=2))``.
    """

    key: jax.Array  # typed PRNG key of this step (impl config.key_impl).
    sigma: jax.Array  # float32 scalar, σ.
    config: EggrollConfig  # static (no leaves).


def _check_key(key: Any, fn: str) -> EggrollKey:
    if not isinstance(key, EggrollKey):
        raise TypeError(
            f"{fn} takes the EggrollKey of the step, `gradkit.eggroll_current_key("
            f"opt_state)` (it carries σ, rank, antithetic, kinds, ... so they cannot "
            f"differ from the transform's), got {type(key).__name__}.")
    return key


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
        `params` (or an :class:`EggrollConfig`'s frozen form of one).
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
    frozen = _freeze_kinds(kinds)
    if frozen.treedef != jax.tree.structure(params):
        raise ValueError(
            f"`kinds` must have the structure of params; got {frozen.treedef} for "
            f"{jax.tree.structure(params)}.")
    return jax.tree.unflatten(frozen.treedef, list(frozen.leaves))


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


def step_key(key_data: jax.Array, count: jax.Array, noise_reuse: jax.typing.ArrayLike,
             sigma: jax.typing.ArrayLike, config: EggrollConfig) -> EggrollKey:
    """The :class:`EggrollKey` of one ES step: fold_in(seed key, count // noise_reuse)."""
    epoch = jnp.asarray(count, jnp.int32) // jnp.asarray(noise_reuse, jnp.int32)
    key = jax.random.fold_in(jax.random.wrap_key_data(key_data, impl=config.key_impl), epoch)
    return EggrollKey(key, jnp.asarray(sigma, jnp.float32), config)


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


_SQRT2 = math.sqrt(2.0)
_LN2 = math.log(2.0)
_MAX_ENTRIES = 2**32
# Giles, "Approximating the erfinv function" (GPU Computing Gems, 2011), single
# precision: erf⁻¹(x) = x·p(w), w = −log(1 − x²), p a polynomial in w − 2.5 (w < 5) or in
# √w − 3 (tails). The same approximation XLA uses for ``lax.erf_inv`` (float32).
_ERFINV_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                   0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


# log(1 + t) ≈ t·P(t) on t ∈ [√½ − 1, √2 − 1]: P fitted at Chebyshev nodes (float64),
# max. abs. error 5e-8 evaluated in float32.
_LOG1P_COEFFS = (0.9999999743, -0.4999998703, 0.3333418334, -0.2500215346, 0.1995697748,
                 -0.1656069599, 0.1494909548, -0.1437733057, 0.08743945357)


def _log(t: jax.Array) -> jax.Array:
    """log t for finite float32 t > 0: exponent from the bits, a polynomial for the rest.

    t = 2^e·y with y ∈ [√½, √2), log t = e·ln 2 + log(1 + (y − 1)), the latter a degree-9
    polynomial (abs. error 5e-8). No division and no library call: it fuses with the hash
    and the erf⁻¹ polynomials into one vectorised loop, unlike XLA's ``log1p`` on CPU,
    which was the largest part of drawing a Gaussian here.
    """
    bits = jax.lax.bitcast_convert_type(t, jnp.int32)
    e = (bits - jnp.int32(0x3F3504F3)) >> 23  # 0x3F3504F3 is √½ in float32.
    y = jax.lax.bitcast_convert_type(bits - (e << 23), jnp.float32) - 1.0
    p = jnp.float32(_LOG1P_COEFFS[-1])
    for c in _LOG1P_COEFFS[-2::-1]:
        p = p * y + c
    return e.astype(jnp.float32) * jnp.float32(_LN2) + y * p


def _erfinv(x: jax.Array) -> jax.Array:
    """erf⁻¹(x) for float32 x ∈ (−1, 1) (Giles' approximation; max rel. error ~3e-7)."""
    ax = jnp.abs(x)
    w = -_log((1.0 - ax) * (1.0 + ax))
    central, tail = w - 2.5, jnp.sqrt(w) - 3.0
    p_c, p_t = jnp.float32(_ERFINV_CENTRAL[0]), jnp.float32(_ERFINV_TAIL[0])
    for c_c, c_t in zip(_ERFINV_CENTRAL[1:], _ERFINV_TAIL[1:], strict=True):
        p_c, p_t = p_c * central + c_c, p_t * tail + c_t
    return jnp.where(w < 5.0, p_c, p_t) * x


def _hash_words(leaf_key, indices: jax.Array, size: int, start: int = 0):
    """(row, col): the hash words of noise `indices` (uint32[K]) and of the entries
    start … start + size − 1 (uint32[size]), combined by :func:`_hash_expand`."""
    if start + size >= _MAX_ENTRIES:
        raise ValueError(f"a leaf's noise has {size} ≥ 2^32 entries per member; use "
                         f"generator='jax'.")
    seeds = jax.random.bits(leaf_key, (2,), jnp.uint32)
    row = _triple32(indices.astype(jnp.uint32) ^ seeds[0])  # one word per noise index
    entries = jax.lax.iota(jnp.uint32, size) + jnp.uint32(start)
    return row, _triple32(entries ^ seeds[1])  # and one word per entry


def _hash_expand(row: jax.Array, col: jax.Array) -> jax.Array:
    """float32[K, size]: the Gaussians of the words' outer sum, h = T(row + col)."""
    h = _triple32(row[:, None] + col[None, :])
    # Top 24 bits → odd multiples of 2⁻²⁴ in (−1, 1), exact in float32 and symmetric.
    q = (h >> 8).astype(jnp.int32)
    u = (2 * q - (2**24 - 1)).astype(jnp.float32) * jnp.float32(2.0**-24)
    return jnp.float32(_SQRT2) * _erfinv(u)


def _jax_normal(leaf_key, indices: jax.Array, size: int) -> jax.Array:
    """float32[len(indices), size]: ``normal(fold_in(leaf_key, k), (size,))`` per index."""
    return jax.vmap(lambda k: jax.random.normal(
        jax.random.fold_in(leaf_key, k), (size,), jnp.float32))(indices)


# A leaf's noise is drawn in two phases: its sources (small: the hash words, or the leaf
# key and the indices for "jax"), then the Gaussians from them. They are apart so that
# `stored_noise` can give the second phase its sources as arrays in memory.


def _leaf_sources(leaf_key, indices: jax.Array, kind: str, shape: tuple[int, ...],
                  rank: int, generator: str):
    """What :func:`_leaf_from_sources` draws the noise of one leaf from."""
    if generator == "jax":
        return leaf_key, indices
    if kind == "lowrank":
        # A and B from the entries [0, m·r) and [m·r, (m + n)·r): each its own fused
        # loop, rather than one array sliced in two (XLA then materialises the
        # intermediates of the erf⁻¹ to share them between the slices).
        m, n = _matrix_dims(shape)
        return (_hash_words(leaf_key, indices, m * rank),
                _hash_words(leaf_key, indices, n * rank, start=m * rank))
    return (_hash_words(leaf_key, indices, math.prod(shape)),)


def _leaf_from_sources(sources, kind: str, shape: tuple[int, ...], rank: int,
                       generator: str):
    """The noise of one leaf (leading axis: the noise indices) from its sources."""
    if generator == "jax":
        leaf_key, indices = sources
        num = indices.shape[0]
        if kind != "lowrank":
            return _jax_normal(leaf_key, indices, math.prod(shape)).reshape(num, *shape)
        m, n = _matrix_dims(shape)
        z = _jax_normal(leaf_key, indices, (m + n) * rank).reshape(num, m + n, rank)
        return LowRankFactors(z[:, :m], z[:, m:])
    if kind == "lowrank":
        m, n = _matrix_dims(shape)
        a, b = (_hash_expand(*words) for words in sources)
        return LowRankFactors(a.reshape(-1, m, rank), b.reshape(-1, n, rank))
    return _hash_expand(*sources[0]).reshape(-1, *shape)


# Jitted so that an eager call (perturb or sample_noise outside jax.jit) runs one compiled
# program per leaf shape instead of dispatching (and compiling) each of the generator's
# ~60 elementwise operations separately; inside a caller's jit it is inlined.
@functools.partial(jax.jit, static_argnames=("kind", "shape", "rank", "generator"))
def _leaf_noise(leaf_key, indices: jax.Array, kind: str, shape: tuple[int, ...], rank: int,
                generator: str):
    """The noise of noise `indices` (int[K]) for one leaf; leading axis K."""
    static = (kind, shape, rank, generator)
    return _leaf_from_sources(_leaf_sources(leaf_key, indices, *static), *static)


def num_noise(population_size: int, antithetic: bool = True) -> int:
    """Number of distinct noise indices: N/2 with antithetic pairs, else N."""
    population_size = _static_int("population_size", population_size)
    if antithetic and population_size % 2:
        raise ValueError(f"antithetic sampling needs an even `population_size`, got "
                         f"{population_size}.")
    return population_size // 2 if antithetic else population_size


def _leaf_settings(params: Any, key: EggrollKey):
    """(leaf key, static settings of `_leaf_noise`) per leaf; None for frozen leaves."""
    config = key.config
    paths, leaves, kind_leaves, _ = _flat(params, config.kinds)
    return [None if kind == "frozen" else
            (jax.random.fold_in(key.key, _path_id(path)),
             (kind, tuple(jnp.shape(leaf)), config.rank, config.generator))
            for path, leaf, kind in zip(paths, leaves, kind_leaves, strict=True)]


def _noise_of_indices(params: Any, key: EggrollKey, indices: jax.Array):
    return [None if s is None else _leaf_noise(s[0], indices, *s[1])
            for s in _leaf_settings(params, key)]


def sample_noise(params: Any, key: EggrollKey, population_size: int,
                 ) -> list[LowRankFactors | jax.Array | None]:
    """Draws the noise of a whole population's K noise indices in one vectorised call.

    Noise index k of leaf ℓ is regenerated from (step key, path of ℓ, k) alone (see the
    module docstring), so row k is the same whatever the population size, batching or
    device layout. Member i uses row ``i // 2`` (antithetic) or ``i``.

    Args:
      params: parameter pytree (only shapes are used).
      key: the step's :class:`EggrollKey` (:func:`current_key`).
      population_size: N; K = N/2 with antithetic pairs, else N.

    Returns:
      A list aligned with ``jax.tree.leaves(params)``: :class:`LowRankFactors` with
      leading axis K (A: float32[K, m, r], B: float32[K, n, r]) for low-rank leaves,
      float32[K, *shape] for dense leaves, ``None`` for frozen ones.
    """
    key = _check_key(key, "sample_noise")
    num = num_noise(population_size, key.config.antithetic)
    return _noise_of_indices(params, key, jnp.arange(num, dtype=jnp.int32))


def stored_noise(params: Any, key: EggrollKey, population_size: int,
                 ) -> list[LowRankFactors | jax.Array | None]:
    """:func:`sample_noise` for noise that only enters as σE: drawn once, kept in memory.

    Inside a jitted forward XLA fuses the generator into its consumers: each of the
    two members of an antithetic pair then recomputes its index's Gaussians, and
    every entry recomputes its index's and its own hash word (three hashes instead of
    one). XLA:CPU removes ``lax.optimization_barrier`` before fusing, but stores the
    result of a conditional, so on CPU the Gaussians are drawn inside
    ``lax.cond(σ ≠ 0, draw, zeros)`` from hash words computed outside it (zeros at
    σ = 0 leave σE unchanged); elsewhere optimization barriers separate the phases.
    The values are :func:`sample_noise`'s, bit for bit (tested).
    """
    key = _check_key(key, "stored_noise")
    indices = jnp.arange(num_noise(population_size, key.config.antithetic), dtype=jnp.int32)
    settings = _leaf_settings(params, key)
    sources = [None if s is None else _leaf_sources(s[0], indices, *s[1]) for s in settings]

    def draw(sources):
        return [None if s is None else _leaf_from_sources(src, *s[1])
                for s, src in zip(settings, sources, strict=True)]

    def on_cpu(sources):
        shapes = jax.eval_shape(draw, sources)
        return jax.lax.cond(key.sigma != 0, draw, lambda _: jax.tree.map(
            lambda t: jnp.zeros(t.shape, t.dtype), shapes), sources)

    def elsewhere(sources):
        return jax.lax.optimization_barrier(draw(jax.lax.optimization_barrier(sources)))

    return jax.lax.platform_dependent(sources, cpu=on_cpu, default=elsewhere)


def _member_noise(params: Any, key: EggrollKey, index: jax.Array):
    """The noise of one noise index (no leading axis), generated for it alone."""
    noise = _noise_of_indices(params, key, jnp.reshape(index, (1,)))
    return [None if n is None else _member_row(n, 0) for n in noise]


def noise_index_and_sign(member: jax.Array, antithetic: bool = True):
    """(noise index, ±1) of a member: antithetic pairs (2k, 2k+1) share index k."""
    member = jnp.asarray(member, jnp.int32)
    if not antithetic:
        return member, jnp.ones([], jnp.float32)
    return member // 2, 1.0 - 2.0 * (member % 2).astype(jnp.float32)


def _member_row(leaf_noise, index):
    """Row `index` (one noise index) of a leaf's population noise."""
    return jax.tree.map(lambda t: t[index], leaf_noise)


def _rows_or_generated(params, key: EggrollKey, index, noise):
    """Member noise: rows of pre-generated `noise`, or generated for `index` alone."""
    if noise is None:
        return _member_noise(params, key, index)
    return [None if n is None else _member_row(n, index) for n in noise]


def _perturbed_leaf(leaf, member_noise, kind: str, signed_sigma, rank: int):
    """W + σ s_i E for one leaf: E = A Bᵀ/√r (low-rank) or the dense noise, in W's dtype."""
    if kind == "lowrank":
        f = member_noise
        delta = (f.a @ f.b.T / math.sqrt(rank)).reshape(jnp.shape(leaf))
    else:
        delta = member_noise
    return (leaf + signed_sigma * delta).astype(leaf.dtype)


def perturb(params: Any, key: EggrollKey, member: jax.Array, *,
            noise: list | None = None) -> Any:
    """Member i's parameters W + σ·s_i·E_{k(i)}, materialised (works for any function).

    Args:
      params: the mean parameters.
      key: the step's :class:`EggrollKey` (:func:`current_key`); it carries σ and the
        settings (rank, antithetic, kinds, generator) of the transform.
      member: member index i (may be traced, e.g. under ``jax.vmap``).
      noise: optional pre-generated :func:`sample_noise` (then its row is taken);
        otherwise member i's noise is generated for it alone (under ``jax.vmap`` over
        members, for all of them in one vectorised computation).

    Returns:
      The perturbed parameters, each leaf in its own dtype.
    """
    key = _check_key(key, "perturb")
    config = key.config
    index, sign = noise_index_and_sign(member, config.antithetic)
    rows = _rows_or_generated(params, key, index, noise)
    _, leaves, kind_leaves, treedef = _flat(params, config.kinds)
    new = [leaf if kind == "frozen" else
           _perturbed_leaf(leaf, row, kind, key.sigma * sign, config.rank)
           for leaf, kind, row in zip(leaves, kind_leaves, rows, strict=True)]
    return jax.tree.unflatten(treedef, new)
