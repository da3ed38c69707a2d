# SPDX-License-Identifier: Apache-2.0
"""The EGGROLL transform: fitness → the negated ES update, as an optax transformation.

"Evolution Strategies at the Hyperscale" (EGGROLL, 2025, arXiv 2511.16652), Algorithm 1:
M ← M + (α/N) Σ_i f̃_i E_i. :func:`scale_by_eggroll` returns the negated estimate
−(1/N) Σ_i f̃_i E_i, as the official code does, so that any optax optimizer chained after
it *maximises* fitness; :func:`eggroll` is the plain-ascent alias (SGD, the official
default). Deliberate differences from the official code are listed in the docstrings:
the 1/σ of the ES gradient is folded into the learning rate as in the paper
(``divide_by_sigma`` gives the textbook estimate), and the noise is drawn per leaf for the
whole population (see :func:`eggroll_sample_noise`).

The settings that decide the noise are one :class:`EggrollConfig`, carried in the state
with σ; :func:`eggroll_current_key` hands both to the forward inside an :class:`EggrollKey`, so
the forward and the update cannot use different settings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _common
from gradkit.evolution import _config
from gradkit.evolution._config import DEFAULT_KEY_IMPL
from gradkit.evolution._config import EggrollConfig
from gradkit.evolution._config import EggrollKey
from gradkit.evolution._config import Generator
from gradkit.evolution._noise import LowRankFactors
from gradkit.evolution._noise import eggroll_sample_noise
from gradkit.evolution._shaping import FITNESS_SHAPINGS
from gradkit.evolution._shaping import FitnessShaping
from gradkit.evolution._shaping import eggroll_shape_fitness


class ScaleByEggrollState(NamedTuple):
    """State for :func:`scale_by_eggroll`."""

    count: chex.Array  # int32 scalar, number of ES steps taken so far.
    key: chex.Array  # uint32[2] (threefry2x32) or uint32[4] (rbg): raw key data of `key`.
    sigma: chex.Array  # float32 scalar, σ (an array: it may be injected or scheduled).
    noise_interval: chex.Array  # int32 scalar: the noise changes every noise_interval steps.
    config: EggrollConfig  # static settings (no leaves): rank, antithetic, kinds, ...


def eggroll_current_key(opt_state: Any) -> EggrollKey:
    """The :class:`EggrollKey` of the step the next EGGROLL ``update`` will take.

    It carries the step's PRNG key, σ and the transform's :class:`EggrollConfig`; pass
    it unchanged to :func:`eggroll_perturb`, :func:`eggroll_sample_noise`,
    :func:`eggroll_apply_member` or :func:`eggroll_population_apply`, which take no
    settings of their own.

    Args:
      opt_state: an optax state holding exactly one :class:`ScaleByEggrollState`
        (e.g. of ``optax.chain(scale_by_eggroll(...), optax.adam(...))``).

    Returns:
      The step's :class:`EggrollKey`.
    """
    state = _common.find_state(opt_state, ScaleByEggrollState, "eggroll_current_key")
    return _config.step_key(state.key, state.count, state.noise_interval, state.sigma,
                            state.config)


def _check_key_arg(key: Any, key_impl: str) -> None:
    if _common.is_int_key(key):
        return
    if not (isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
            and key.shape == ()):
        raise TypeError(f"`key` must be an integer or a scalar `jax.random.key`, got {key!r}.")
    impl = str(jax.random.key_impl(key))
    if impl != key_impl:
        raise ValueError(f"`key` is a {impl!r} key but `key_impl` is {key_impl!r}; pass "
                         f"key_impl={impl!r} or an integer key.")


def scale_by_eggroll(
    sigma: jax.typing.ArrayLike,
    *,
    rank: int = 1,
    antithetic: bool = True,
    fitness_shaping: FitnessShaping = "zscore",
    group_size: int | None = None,
    noise_interval: int = 1,
    kinds: Any = None,
    divide_by_sigma: bool = False,
    key: int | jax.Array = 0,
    key_impl: str = DEFAULT_KEY_IMPL,
    generator: Generator = "hash",
) -> optax.GradientTransformationExtraArgs:
    r"""The EGGROLL evolution-strategies update, negated so that optax *maximises* fitness.

    Given the fitness f of the N members evaluated at W + σ s_i E_{k(i)} (with
    :func:`eggroll_perturb` or :func:`eggroll_population_apply` and the key
    :func:`eggroll_current_key`),

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
        population forward reads it from :func:`eggroll_current_key`.
      rank: rank r of the perturbation of matrix leaves (static; paper default 1).
      antithetic: members 2k, 2k+1 share noise k with signs +, − (population even).
      fitness_shaping: ``"zscore"`` (official default), ``"group"`` (needs
        `group_size`), ``"centered_rank"`` or ``"raw"``; see
        :func:`eggroll_shape_fitness`.
      group_size: members per group for ``"group"`` shaping.
      noise_interval: the noise changes every `noise_interval` steps (the key is folded
        with ``count // noise_interval``); 1 draws fresh noise every step.
      kinds: per-leaf ``"lowrank"``/``"dense"``/``"frozen"``; see
        :func:`eggroll_resolve_kinds`.
      divide_by_sigma: divide the estimate by σ (off: the paper's convention).
      key: an integer or a ``jax.random.key`` (of implementation `key_impl`) from which
        the noise keys are folded; stored in the state as raw key data.
      key_impl: JAX PRNG implementation of the key (``"threefry2x32"``, ``"rbg"``,
        ``"unsafe_rbg"``).
      generator: ``"hash"`` (a counter hash per Gaussian, default: the fast one) or
        ``"jax"`` (``jax.random.normal`` per noise index); both draw i.i.d. N(0, 1)
        factors, see :mod:`gradkit.evolution`.

    rank, antithetic, kinds, key_impl and generator form the :class:`EggrollConfig`
    kept (with σ and noise_interval) in the state; :func:`eggroll_current_key` passes
    them to the forward, so they are given once, here.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose update takes the keyword-only
      extra arg ``fitness`` (float[N], higher is better) and ignores unknown ones.
      Non-finite fitness values are left out (see :func:`eggroll_shape_fitness`).

    Example:
      >>> import gradkit, jax, jax.numpy as jnp, optax
      >>> f = lambda p: -jnp.sum((p["w"] - 1.0) ** 2)
      >>> opt = optax.chain(gradkit.scale_by_eggroll(sigma=0.1), optax.adam(0.05))
      >>> params = {"w": jnp.zeros((3, 2))}
      >>> state = opt.init(params)
      >>> key = gradkit.eggroll_current_key(state)  # carries σ, rank, ...
      >>> members = jnp.arange(16)
      >>> fit = jax.vmap(lambda i: f(gradkit.eggroll_perturb(params, key, i)))(members)
      >>> updates, state = opt.update(params, state, params, fitness=fit)

    References:
      Sarkar et al., `Evolution Strategies at the Hyperscale
      <https://arxiv.org/abs/2511.16652>`_, 2025 (Algorithm 1).
    """
    _common.check_positive("sigma", sigma)
    _common.check_choice("fitness_shaping", fitness_shaping, FITNESS_SHAPINGS)
    if _common.concrete_number(noise_interval) is not None:
        _common.check_positive_int("noise_interval", noise_interval)
    config = EggrollConfig(rank=rank, antithetic=antithetic, kinds=kinds, key_impl=key_impl,
                           generator=generator)
    _check_key_arg(key, config.key_impl)
    rank = config.rank
    if group_size is not None:
        group_size = _common.static_int("group_size", group_size)
    if fitness_shaping == "group" and group_size is None:
        raise ValueError("`group_size` must be given for fitness_shaping='group'.")

    def init_fn(params):
        del params
        # Copies (jnp.array): an injected σ must not share its buffer with the state,
        # or a jitted step that donates the state would donate that buffer twice.
        return ScaleByEggrollState(count=jnp.zeros([], jnp.int32),
                                   key=_common.key_data(key, impl=key_impl),
                                   sigma=jnp.array(sigma, jnp.float32),
                                   noise_interval=jnp.array(noise_interval, jnp.int32),
                                   config=config)

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
        shaped = eggroll_shape_fitness(fitness, fitness_shaping, group_size=group_size)
        coeff = shaped[0::2] - shaped[1::2] if antithetic else shaped
        if state.config != config:
            raise ValueError(f"this state was made by another EGGROLL transform: its "
                             f"settings {state.config} differ from {config}.")
        step_key = _config.step_key(state.key, state.count, state.noise_interval, sigma,
                                    config)
        noise = eggroll_sample_noise(updates, step_key, n)
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
        # σ as last given to the transform (with an injected σ schedule the forward of
        # step t uses the σ of step t − 1's update).
        new_state = state._replace(count=optax.safe_increment(state.count),
                                   sigma=jnp.array(sigma, jnp.float32))
        return jax.tree.unflatten(treedef, out), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def eggroll(
    learning_rate: optax.ScalarOrSchedule,
    sigma: jax.typing.ArrayLike,
    *,
    rank: int = 1,
    antithetic: bool = True,
    fitness_shaping: FitnessShaping = "zscore",
    group_size: int | None = None,
    noise_interval: int = 1,
    kinds: Any = None,
    divide_by_sigma: bool = False,
    key: int | jax.Array = 0,
    key_impl: str = DEFAULT_KEY_IMPL,
    generator: Generator = "hash",
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
      sigma, rank, antithetic, fitness_shaping, group_size, noise_interval, kinds,
        divide_by_sigma, key, key_impl, generator: see :func:`scale_by_eggroll`.
      weight_decay: decoupled weight decay λ (≥ 0), multiplied by α.
      mask: pytree or callable selecting the leaves that get weight decay.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` taking ``fitness=`` (float[N]).

    Example:
      >>> import gradkit, jax, jax.numpy as jnp, optax
      >>> opt = gradkit.eggroll(0.05, 0.1, rank=2)
      >>> params = {"w": jnp.zeros((3, 2))}
      >>> state = opt.init(params)
      >>> key = gradkit.eggroll_current_key(state)
      >>> fit = jax.vmap(lambda i: -jnp.sum(
      ...     gradkit.eggroll_perturb(params, key, i)["w"] ** 2))(jnp.arange(8))
      >>> updates, state = opt.update(params, state, params, fitness=fit)

    References:
      Sarkar et al., `Evolution Strategies at the Hyperscale
      <https://arxiv.org/abs/2511.16652>`_, 2025 (Algorithm 1).
    """
    _common.check_learning_rate(learning_rate)
    _common.check_nonnegative("weight_decay", weight_decay)
    return optax.chain(
        scale_by_eggroll(sigma, rank=rank, antithetic=antithetic,
                         fitness_shaping=fitness_shaping, group_size=group_size,
                         noise_interval=noise_interval, kinds=kinds,
                         divide_by_sigma=divide_by_sigma, key=key, key_impl=key_impl,
                         generator=generator),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )
