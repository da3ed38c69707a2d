"""EGGROLL: low-rank evolution strategies as an optax transform.

"Evolution Strategies at the Hyperscale" (EGGROLL, 2025, arXiv 2511.16652),
Algorithm 1. For every matrix parameter W (m×n) and population member i the
perturbation is low rank,

    E_i = A_i B_iᵀ / √r,   A_i ∈ R^{m×r},  B_i ∈ R^{n×r}  i.i.d. standard Gaussian,

and member i is evaluated at W + σE_i. Vectors (biases, norm scales) get ordinary dense
Gaussian noise as in OpenES; leaves can also be frozen. The factors are never stored:
they are regenerated from a key folded from (seed, step // noise_reuse, leaf path), one
draw per leaf for the whole population, member i taking row k(i) of it. With
antithetic sampling (the default) members 2k and 2k+1 share noise index k with signs
+ and −.

Three pieces, usable separately:

* :func:`perturb` materialises member i's parameters (any model, any function);
  :func:`sample_noise` draws the factors of many members in one call.
* :func:`apply_member` / :func:`population_apply` evaluate a Flax linen model at the
  perturbed parameters without materialising W + σE_i: every ``nn.Dense`` computes
  ``x·W + (σ/√r)·(x·A_i)·B_iᵀ`` and every ``nn.Embed`` looks up ``W[t] + (σ/√r)·A_i[t]·B_iᵀ``
  (intercepted with ``nn.intercept_methods``); other layers fall back to materialising
  their perturbed weights. Vmapped over members, the W-products become one shared GEMM.
* :func:`scale_by_eggroll` turns the members' fitness into the negated ES estimate
  −(1/N) Σ_i f̃_i E_i, so that any optax optimizer chained after it *maximises* fitness.

The reference implementation is GPL-3.0 (HyperscaleES, nano-egg); nothing here is taken
from it: the algorithm follows the paper and the facts recorded in ``DESIGN.md``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import Literal
from typing import NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gradkit import _validation

Fitness = jax.Array  # float[population_size]
Kind = Literal["lowrank", "dense", "frozen"]
KINDS: tuple[str, ...] = ("lowrank", "dense", "frozen")
FitnessShaping = Literal["zscore", "group", "centered_rank", "raw"]
FITNESS_SHAPINGS: tuple[str, ...] = ("zscore", "group", "centered_rank", "raw")
# Raw key data of this implementation is stored in the state. The whole population's
# factors of a leaf are drawn in one call; with that, threefry drew Gaussians as fast
# as `rbg`/`unsafe_rbg` on our CPU (or faster), and unlike them its bits do not depend
# on batching or sharding. See benchmarks/eggroll.py for both.
DEFAULT_KEY_IMPL = "threefry2x32"
# Variance floor of the official z-score shaping: (f − mean) / √(var + 1e-5).
ZSCORE_EPS = 1e-5


class LowRankFactors(NamedTuple):
    """The factors of E = A Bᵀ/√r for one matrix leaf (leading axes: noise indices)."""

    a: jax.Array  # float32[..., m, r]; m = prod(leaf.shape[:-1]).
    b: jax.Array  # float32[..., n, r]; n = leaf.shape[-1].


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


# --------------------------------------------------------------------------- keys


def _wrap(key_data: jax.Array, key_impl: str) -> jax.Array:
    return jax.random.wrap_key_data(key_data, impl=key_impl)


def step_key(
    key_data: jax.Array, count: jax.Array, noise_reuse: int = 1,
    key_impl: str = DEFAULT_KEY_IMPL,
) -> jax.Array:
    """The typed key of one ES step: fold_in(seed key, count // noise_reuse)."""
    epoch = jnp.asarray(count, jnp.int32) // noise_reuse
    return jax.random.fold_in(_wrap(key_data, key_impl), epoch)


def find_state(opt_state: Any) -> ScaleByEggrollState:
    """Finds the (single) :class:`ScaleByEggrollState` inside a (chained) optax state."""
    found = [s for s in jax.tree.leaves(
        opt_state, is_leaf=lambda x: isinstance(x, ScaleByEggrollState))
        if isinstance(s, ScaleByEggrollState)]
    if len(found) != 1:
        raise ValueError(f"Expected one ScaleByEggrollState in opt_state, found {len(found)}.")
    return found[0]


def current_key(
    opt_state: Any, noise_reuse: int = 1, key_impl: str = DEFAULT_KEY_IMPL,
) -> jax.Array:
    """The key of the step the next ``update`` will take (pass to the population forward).

    `noise_reuse` and `key_impl` must be those given to :func:`scale_by_eggroll`.
    """
    state = find_state(opt_state)
    return step_key(state.key, state.count, noise_reuse, key_impl)


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


def _flat(params, kinds):
    leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(params)
    kind_leaves = jax.tree.leaves(resolve_kinds(params, kinds))
    paths = [p for p, _ in leaves_with_path]
    leaves = [x for _, x in leaves_with_path]
    return paths, leaves, kind_leaves, treedef


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


def noise_index_and_sign(member: jax.Array, antithetic: bool = True):
    """(noise index, ±1) of a member: antithetic pairs (2k, 2k+1) share index k."""
    member = jnp.asarray(member, jnp.int32)
    if not antithetic:
        return member, jnp.ones([], jnp.float32)
    return member // 2, 1.0 - 2.0 * (member % 2).astype(jnp.float32)


def _lowrank_delta(f: LowRankFactors, shape, rank):
    return (f.a @ f.b.T / math.sqrt(rank)).reshape(shape)


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
    if noise is None:
        noise = sample_noise(params, key, population_size, rank=rank, antithetic=antithetic,
                             kinds=kinds)
    _, leaves, kind_leaves, treedef = _flat(params, kinds)
    new = []
    for j, (leaf, kind) in enumerate(zip(leaves, kind_leaves, strict=True)):
        if kind == "frozen":
            new.append(leaf)
            continue
        leaf_noise = jax.tree.map(lambda t: t[index], noise[j])
        delta = (_lowrank_delta(leaf_noise, jnp.shape(leaf), rank) if kind == "lowrank"
                 else leaf_noise)
        new.append((leaf + (sigma * sign) * delta).astype(leaf.dtype))
    return jax.tree.unflatten(treedef, new)


# --------------------------------------------------------------------------- forward

_ParamPath = tuple[str, ...]


def _dict_path(path) -> _ParamPath | None:
    names = []
    for entry in path:
        if not isinstance(entry, jax.tree_util.DictKey):
            return None
        names.append(str(entry.key))
    return tuple(names)


def _known_layer(module: nn.Module, method: str) -> str | None:
    """The name of the param a known layer's method uses as a matrix (or None)."""
    if isinstance(module, nn.Dense) and method == "__call__":
        return "kernel"
    if isinstance(module, nn.Embed) and method in ("__call__", "attend"):
        return "embedding"
    return None


def _intercepted_paths(model, params, lowrank_paths, args, kwargs, method, variables):
    """Runs an abstract pass to list the low-rank leaves used only by known layers."""
    handled, other = set(), set()

    def spy(next_fun, a, kw, context):
        mod = context.module
        name = _known_layer(mod, context.method_name)
        if name is not None:
            handled.add((*mod.path, name))
        return next_fun(*a, **kw)

    def run(p):
        with nn.intercept_methods(spy):
            return model.apply({**variables, "params": p}, *args, method=method, **kwargs)

    jax.eval_shape(run, params)
    del other
    return {p for p in lowrank_paths if p in handled}


def apply_member(
    model: nn.Module, params: Any, key: jax.Array, member: jax.Array, *args: Any,
    sigma: jax.typing.ArrayLike, population_size: int, rank: int = 1,
    antithetic: bool = True,
    kinds: Any = None, noise: list | None = None, variables: dict | None = None,
    method: Any = None, **kwargs: Any,
) -> Any:
    """Evaluates a Flax linen model at member i's perturbation without materialising it.

    ``nn.Dense`` layers compute ``x·W + b + (σ s_i/√r)·(x·A)·Bᵀ`` and ``nn.Embed``
    looks up ``W[t] + (σ s_i/√r)·A[t]·Bᵀ`` (``attend`` likewise), with the unperturbed W.
    Dense-noise leaves (biases, scales) are materialised (they are small); low-rank
    leaves of layers this function does not know (Conv, DenseGeneral, custom modules)
    are materialised as W + σE too, which is exact but costs a full matrix per member.
    Vmapping this over members turns every x·W into one shared GEMM.

    Args:
      model: a linen module.
      params: the ``"params"`` collection (the tree the optimizer updates).
      key: the step key (:func:`current_key`).
      member: member index (traced under vmap).
      *args, **kwargs: the model's inputs.
      sigma, population_size, rank, antithetic, kinds: as in :func:`perturb`.
      noise: optional pre-generated :func:`sample_noise` of the population.
      variables: other collections (e.g. ``batch_stats``), unperturbed.
      method: the model method to apply (default ``__call__``).

    Returns:
      The model's output for member i; equals ``model.apply({"params":
      perturb(params, ...)}, ...)`` to float tolerance (tested).
    """
    rank = _static_int("rank", rank)
    variables = {} if variables is None else dict(variables)
    index, sign = noise_index_and_sign(member, antithetic)
    if noise is None:
        noise = sample_noise(params, key, population_size, rank=rank, antithetic=antithetic,
                             kinds=kinds)
    paths, leaves, kind_leaves, treedef = _flat(params, kinds)
    dict_paths = [_dict_path(p) for p in paths]
    lowrank = {dp for dp, kd in zip(dict_paths, kind_leaves, strict=True) if kd == "lowrank" and dp}
    handled = _intercepted_paths(model, params, lowrank, args, kwargs, method, variables)

    factors: dict[_ParamPath, LowRankFactors] = {}
    new = []
    for j, (dp, leaf, kind) in enumerate(zip(dict_paths, leaves, kind_leaves, strict=True)):
        if kind == "frozen":
            new.append(leaf)
            continue
        leaf_noise = jax.tree.map(lambda t: t[index], noise[j])
        if kind == "lowrank" and dp in handled:
            factors[dp] = leaf_noise
            new.append(leaf)
            continue
        delta = (_lowrank_delta(leaf_noise, jnp.shape(leaf), rank) if kind == "lowrank"
                 else leaf_noise)
        new.append((leaf + (sigma * sign) * delta).astype(leaf.dtype))
    member_params = jax.tree.unflatten(treedef, new)
    scale = sigma * sign / math.sqrt(rank)

    def interceptor(next_fun, a, kw, context):
        mod = context.module
        name = _known_layer(mod, context.method_name)
        if name is None:
            return next_fun(*a, **kw)
        f = factors.get((*mod.path, name))
        out = next_fun(*a, **kw)
        if f is None:
            return out
        x = a[0] if a else next(iter(kw.values()))
        if isinstance(mod, nn.Dense):
            low = ((x.astype(jnp.float32) @ f.a) @ f.b.T) * scale
        elif context.method_name == "attend":
            low = ((x.astype(jnp.float32) @ f.b) @ f.a.T) * scale
        else:  # Embed lookup.
            low = (jnp.take(f.a, x, axis=0) @ f.b.T) * scale
        return (out + low).astype(out.dtype)

    with nn.intercept_methods(interceptor):
        return model.apply({**variables, "params": member_params}, *args, method=method,
                           **kwargs)


def population_apply(
    model: nn.Module, params: Any, key: jax.Array, *args: Any, population_size: int,
    sigma: jax.typing.ArrayLike, rank: int = 1, antithetic: bool = True,
    kinds: Any = None, in_axes: Any = None, noise: list | None = None,
    variables: dict | None = None, method: Any = None,
) -> Any:
    """:func:`apply_member` vmapped over all members; outputs have a leading [N] axis.

    Args:
      in_axes: ``None`` (every member sees the same `args`) or 0 (args have a leading
        population axis), or a tuple per positional arg as for ``jax.vmap``.
      noise: ``None`` draws the noise here; or pass a :func:`sample_noise` result
        generated beforehand (e.g. outside the jitted forward).
      Others as in :func:`apply_member`.
    """
    population_size = _static_int("population_size", population_size)
    if noise is None:
        noise = sample_noise(params, key, population_size, rank=rank, antithetic=antithetic,
                             kinds=kinds)

    def one(member, *a):
        return apply_member(model, params, key, member, *a, sigma=sigma,
                            population_size=population_size, rank=rank,
                            antithetic=antithetic, kinds=kinds, noise=noise,
                            variables=variables, method=method)

    axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
    return jax.vmap(one, in_axes=(0, *axes))(jnp.arange(population_size), *args)


# --------------------------------------------------------------------------- fitness


def shape_fitness(
    fitness: Fitness, method: FitnessShaping = "zscore", group_size: int | None = None,
) -> jax.Array:
    """Fitness shaping f ↦ f̃ (non-finite entries get f̃ = 0 and are left out).

    * ``"zscore"`` (official default): (f − mean)/√(var + 1e-5).
    * ``"group"``: subtract the mean of each consecutive group of `group_size`
      members, divide by the global √(var + 1e-5) of f.
    * ``"centered_rank"``: ranks mapped to [−0.5, 0.5] (OpenES); tied values get
      their mean rank.
    * ``"raw"``: f unchanged.

    Members with NaN or ±Inf fitness are treated as absent: statistics use the finite
    members only and their shaped fitness is 0 (no contribution). If none is finite
    the result is all zeros, so the ES step is zero.
    """
    _validation.check_choice("fitness_shaping", method, FITNESS_SHAPINGS)
    f = jnp.asarray(fitness, jnp.float32)
    if f.ndim != 1:
        raise ValueError(f"`fitness` must be a vector [population_size], got shape {f.shape}.")
    ok = jnp.isfinite(f)
    count = jnp.maximum(jnp.sum(ok), 1)
    f0 = jnp.where(ok, f, 0.0)
    mean = jnp.sum(f0) / count
    var = jnp.sum(jnp.where(ok, (f - mean) ** 2, 0.0)) / count
    if method == "raw":
        out = f0
    elif method == "zscore":
        out = (f0 - mean) / jnp.sqrt(var + ZSCORE_EPS)
    elif method == "group":
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


# --------------------------------------------------------------------------- transform


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


class ScaleByEggrollState(NamedTuple):
    """State for :func:`scale_by_eggroll`."""

    count: chex.Array  # int32 scalar, number of ES steps taken so far.
    key: chex.Array  # uint32[2] (threefry2x32) or uint32[4] (rbg): raw key data of `seed`.


def scale_by_eggroll(
    sigma: jax.typing.ArrayLike,
    rank: int = 1,
    *,
    antithetic: bool = True,
    fitness_shaping: FitnessShaping = "zscore",
    group_size: int | None = None,
    noise_reuse: int = 1,
    kinds: Any = None,
    divide_by_sigma: bool = False,
    seed: int = 0,
    key_impl: str = DEFAULT_KEY_IMPL,
) -> optax.GradientTransformationExtraArgs:
    r"""The EGGROLL evolution-strategies update, negated so that optax *maximises* fitness.

    Given the fitness f of the N members evaluated at W + σ s_i E_{k(i)} (with
    :func:`perturb` or :func:`population_apply` and the key :func:`current_key`),

    .. math::

        u = -\frac{1}{N} \sum_{i=1}^{N} \tilde f_i \, s_i E_{k(i)}, \qquad
        E_k = \frac{A_k B_k^\top}{\sqrt r} \text{ (matrices)}, \quad
        E_k = \varepsilon_k \text{ (dense leaves)},

    Algorithm 1 of the paper (update M ← M + (α/N) Σ f̃_i E_i) with the 1/σ of the ES
    gradient folded into the learning rate α as the paper does; ``divide_by_sigma``
    gives the textbook estimate −∇_θ E[f(θ + σε)] ≈ u/σ instead. With antithetic pairs
    this is −(1/N) Σ_k (f̃_{2k} − f̃_{2k+1}) E_k. The sum is computed as one contraction
    Σ_k c_k A_k B_kᵀ (an (m × Kr)·(Kr × n) product), never forming every E_k. The
    incoming ``updates`` (gradients) are ignored: this method is backprop-free; pass
    zeros or the params. Frozen leaves get a zero update.

    Args:
      sigma: perturbation scale σ (> 0). Only used here with ``divide_by_sigma``; the
        population forward must use the same value.
      rank: rank r of the perturbation of matrix leaves (static; paper default 1).
      antithetic: members 2k, 2k+1 share noise k with signs +, − (population even).
      fitness_shaping: ``"zscore"`` (official default), ``"group"`` (needs
        `group_size`), ``"centered_rank"`` or ``"raw"``; see :func:`shape_fitness`.
      group_size: members per group for ``"group"`` shaping.
      noise_reuse: the same noise is used for this many consecutive steps (key folded
        with ``count // noise_reuse``); 1 draws fresh noise every step.
      kinds: per-leaf ``"lowrank"``/``"dense"``/``"frozen"``; see :func:`resolve_kinds`.
      divide_by_sigma: divide the estimate by σ (off: the paper's convention).
      seed: seed of the noise keys (stored in the state as raw key data).
      key_impl: JAX PRNG implementation of the noise (``"threefry2x32"``, ``"rbg"``,
        ``"unsafe_rbg"``); pass the same to :func:`current_key`. Each leaf's noise for
        the whole population is one draw, so every implementation regenerates the same
        factors in the forward and in the update.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose update takes the keyword-only
      extra arg ``fitness`` (float[N], higher is better) and ignores unknown ones.
      Non-finite fitness values are left out (see :func:`shape_fitness`).

    Example:
      >>> import gradkit, jax, jax.numpy as jnp, optax
      >>> f = lambda p: -jnp.sum((p["w"] - 1.0) ** 2)
      >>> opt = optax.chain(gradkit.scale_by_eggroll(sigma=0.1), optax.adam(0.05))
      >>> params = {"w": jnp.zeros((3, 2))}
      >>> state = opt.init(params)
      >>> key = gradkit.eggroll_current_key(state)
      >>> members = jnp.arange(16)
      >>> fit = jax.vmap(lambda i: f(gradkit.eggroll_perturb(
      ...     params, key, i, sigma=0.1, population_size=16)))(members)
      >>> updates, state = opt.update(params, state, params, fitness=fit)

    References:
      Sarkar et al., `Evolution Strategies at the Hyperscale
      <https://arxiv.org/abs/2511.16652>`_, 2025 (Algorithm 1).
    """
    _validation.check_positive("sigma", sigma)
    rank = _static_int("rank", rank)
    _validation.check_choice("fitness_shaping", fitness_shaping, FITNESS_SHAPINGS)
    if _validation.concrete_number(noise_reuse) is not None:
        _validation.check_positive_int("noise_reuse", noise_reuse)
    if group_size is not None:
        group_size = _static_int("group_size", group_size)
    if fitness_shaping == "group" and group_size is None:
        raise ValueError("`group_size` must be given for fitness_shaping='group'.")

    def init_fn(params):
        del params
        key = jax.random.key_data(jax.random.key(seed, impl=key_impl))
        return ScaleByEggrollState(count=jnp.zeros([], jnp.int32), key=key)

    def update_fn(updates, state, params=None, *, fitness=None, **extra_args):
        del params, extra_args
        if fitness is None:
            raise ValueError("scale_by_eggroll needs the keyword extra arg `fitness`.")
        fitness = jnp.asarray(fitness)
        if fitness.ndim != 1:
            raise ValueError(f"`fitness` must have shape [population_size], got "
                             f"{fitness.shape}.")
        n = fitness.shape[0]
        if antithetic and n % 2:
            raise ValueError(f"antithetic sampling needs an even population, got {n}.")
        shaped = shape_fitness(fitness, fitness_shaping, group_size)
        coeff = shaped[0::2] - shaped[1::2] if antithetic else shaped
        key = step_key(state.key, state.count, noise_reuse, key_impl)
        noise = sample_noise(updates, key, n, rank=rank, antithetic=antithetic, kinds=kinds)
        scale = -1.0 / n
        if divide_by_sigma:
            scale = scale / sigma
        leaves, treedef = jax.tree.flatten(updates)
        out = []
        for leaf, leaf_noise in zip(leaves, noise, strict=True):
            if leaf_noise is None:
                out.append(jnp.zeros_like(leaf))
            elif isinstance(leaf_noise, LowRankFactors):
                g = jnp.einsum("k,kmr,knr->mn", coeff, leaf_noise.a, leaf_noise.b)
                g = g.reshape(leaf.shape) / math.sqrt(rank)
                out.append((scale * g).astype(leaf.dtype))
            else:
                g = jnp.tensordot(coeff, leaf_noise, axes=1)
                out.append((scale * g).astype(leaf.dtype))
        new_state = ScaleByEggrollState(count=optax.safe_increment(state.count),
                                        key=state.key)
        return jax.tree.unflatten(treedef, out), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def eggroll(
    learning_rate: optax.ScalarOrSchedule,
    sigma: jax.typing.ArrayLike,
    rank: int = 1,
    *,
    antithetic: bool = True,
    fitness_shaping: FitnessShaping = "zscore",
    group_size: int | None = None,
    noise_reuse: int = 1,
    kinds: Any = None,
    divide_by_sigma: bool = False,
    seed: int = 0,
    key_impl: str = DEFAULT_KEY_IMPL,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    mask: Any | Callable[[optax.Params], Any] | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""EGGROLL with plain gradient ascent on fitness: θ ← θ + α/N Σ f̃_i E_i − αλθ.

    ``optax.chain(scale_by_eggroll(...), add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate))`` — Algorithm 1's update, which the official
    code runs through SGD by default. For Adam, chain the primitive yourself:
    ``optax.chain(scale_by_eggroll(sigma), optax.adam(lr))``.

    Under ``optax.inject_hyperparams``, `rank` and `group_size` set shapes: inject
    them with ``static_args=("rank", "group_size")`` to jit the update.

    Args:
      learning_rate: scalar or schedule α.
      sigma, rank, antithetic, fitness_shaping, group_size, noise_reuse, kinds,
        divide_by_sigma, seed, key_impl: see :func:`scale_by_eggroll`.
      weight_decay: decoupled weight decay λ (≥ 0), multiplied by α.
      mask: pytree or callable selecting the leaves that get weight decay.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` taking ``fitness=`` (float[N]).

    References:
      Sarkar et al., `Evolution Strategies at the Hyperscale
      <https://arxiv.org/abs/2511.16652>`_, 2025 (Algorithm 1).
    """
    _validation.check_nonnegative("weight_decay", weight_decay)
    return optax.chain(
        scale_by_eggroll(sigma, rank, antithetic=antithetic, fitness_shaping=fitness_shaping,
                         group_size=group_size, noise_reuse=noise_reuse, kinds=kinds,
                         divide_by_sigma=divide_by_sigma, seed=seed, key_impl=key_impl),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )
