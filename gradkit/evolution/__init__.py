"""Evolution strategies: EGGROLL, low-rank ES as an optax transform.

"Evolution Strategies at the Hyperscale" (EGGROLL, 2025, arXiv 2511.16652),
Algorithm 1. For every matrix parameter W (m×n) and population member i the
perturbation is low rank,

    E_i = A_i B_iᵀ / √r,   A_i ∈ R^{m×r},  B_i ∈ R^{n×r}  i.i.d. standard Gaussian,

and member i is evaluated at W + σE_i. Vectors (biases, norm scales) get ordinary dense
Gaussian noise as in OpenES; leaves can also be frozen. The factors are never stored:
they are regenerated from (seed, step // noise_reuse, leaf path, noise index k(i)) by a
counter-based generator (i.i.d. N(0, 1), see ``_noise.py``). With antithetic sampling
(the default) members 2k and 2k+1 share noise index k with signs + and −.

One settings object, :class:`EggrollConfig` (rank, antithetic, noise reuse, leaf kinds,
key implementation, generator), is made by :func:`scale_by_eggroll` and kept with σ in
its state; :func:`current_key` returns an :class:`EggrollKey` carrying key, σ and config,
and every other function reads the settings from it::

    opt = optax.chain(es.scale_by_eggroll(sigma=0.1, rank=4), optax.adam(1e-3))
    state = opt.init(params)
    key = es.current_key(state)                         # key + σ + settings
    out = es.population_apply(model, params, key, x, population_size=256)
    updates, state = opt.update(params, state, params, fitness=fitness(out))

Three pieces, usable separately:

* :func:`perturb` materialises member i's parameters (any model, any function);
  :func:`sample_noise` draws the factors of many members in one call (``_noise.py``).
* :func:`apply_member` / :func:`population_apply` evaluate a Flax linen model at the
  perturbed parameters without materialising W + σE_i: every ``nn.Dense`` computes
  ``x·W + (σ/√r)·(x·A_i)·B_iᵀ`` and every ``nn.Embed`` looks up ``W[t] + (σ/√r)·A_i[t]·B_iᵀ``
  (intercepted with ``nn.intercept_methods``); other layers fall back to materialising
  their perturbed weights. Vmapped over members, the W-products become one shared GEMM
  (``_forward.py``).
* :func:`scale_by_eggroll` turns the members' fitness, shaped by :func:`shape_fitness`
  (``_shaping.py``), into the negated ES estimate −(1/N) Σ_i f̃_i E_i, so that any optax
  optimizer chained after it *maximises* fitness; :func:`eggroll` is its alias
  (``_transform.py``).

Deliberate differences from the official code: the 1/σ of the ES gradient is folded into
the learning rate as in the paper (``divide_by_sigma=True`` gives the textbook estimate);
the Gaussians come from a counter hash by default (same distribution, different bits
from the official JAX-PRNG keys; ``generator="jax"`` uses ``jax.random.normal``);
non-finite fitness values are left out of the shaping.

The reference implementation is GPL-3.0 (HyperscaleES, nano-egg); nothing here is taken
from it: the algorithm follows the paper and the facts gathered for this project.

``gradkit`` re-exports the main names with an ``eggroll_`` prefix (``gradkit.eggroll`` is
the alias function, not this package): ``gradkit.eggroll_perturb`` is :func:`perturb`.
"""

from gradkit.evolution._forward import apply_member
from gradkit.evolution._forward import population_apply
from gradkit.evolution._noise import DEFAULT_KEY_IMPL
from gradkit.evolution._noise import GENERATORS
from gradkit.evolution._noise import KEY_IMPLS
from gradkit.evolution._noise import KINDS
from gradkit.evolution._noise import EggrollConfig
from gradkit.evolution._noise import EggrollKey
from gradkit.evolution._noise import Generator
from gradkit.evolution._noise import Kind
from gradkit.evolution._noise import LowRankFactors
from gradkit.evolution._noise import default_kind
from gradkit.evolution._noise import noise_index_and_sign
from gradkit.evolution._noise import num_noise
from gradkit.evolution._noise import perturb
from gradkit.evolution._noise import resolve_kinds
from gradkit.evolution._noise import sample_noise
from gradkit.evolution._noise import step_key
from gradkit.evolution._shaping import FITNESS_SHAPINGS
from gradkit.evolution._shaping import ZSCORE_EPS
from gradkit.evolution._shaping import Fitness
from gradkit.evolution._shaping import FitnessShaping
from gradkit.evolution._shaping import shape_fitness
from gradkit.evolution._transform import ScaleByEggrollState
from gradkit.evolution._transform import current_key
from gradkit.evolution._transform import eggroll
from gradkit.evolution._transform import find_state
from gradkit.evolution._transform import scale_by_eggroll

__all__ = (
    "DEFAULT_KEY_IMPL",
    "FITNESS_SHAPINGS",
    "GENERATORS",
    "KEY_IMPLS",
    "KINDS",
    "ZSCORE_EPS",
    "EggrollConfig",
    "EggrollKey",
    "Fitness",
    "FitnessShaping",
    "Generator",
    "Kind",
    "LowRankFactors",
    "ScaleByEggrollState",
    "apply_member",
    "current_key",
    "default_kind",
    "eggroll",
    "find_state",
    "noise_index_and_sign",
    "num_noise",
    "perturb",
    "population_apply",
    "resolve_kinds",
    "sample_noise",
    "scale_by_eggroll",
    "shape_fitness",
    "step_key",
)
