# SPDX-License-Identifier: Apache-2.0
"""Evolution strategies: EGGROLL, low-rank ES as an optax transform.

"Evolution Strategies at the Hyperscale" (EGGROLL, 2025, arXiv 2511.16652),
Algorithm 1. For every matrix parameter W (m×n) and population member i the
perturbation is low rank,

    E_i = A_i B_iᵀ / √r,   A_i ∈ R^{m×r},  B_i ∈ R^{n×r}  i.i.d. standard Gaussian,

and member i is evaluated at W + σE_i. Vectors (biases, norm scales) get ordinary dense
Gaussian noise as in OpenES; leaves can also be frozen. The factors are never stored:
they are regenerated from (key, step // noise_interval, leaf path, noise index k(i)) by a
counter-based generator (i.i.d. N(0, 1), see ``_noise.py``). With antithetic sampling
(the default) members 2k and 2k+1 share noise index k with signs + and −.

One settings object, :class:`EggrollConfig` (rank, antithetic, leaf kinds, key
implementation, generator), is made by :func:`scale_by_eggroll` and kept with σ in its
state; :func:`eggroll_current_key` returns an :class:`EggrollKey` carrying key, σ and
config, and every other function reads the settings from it::

    opt = optax.chain(gradkit.scale_by_eggroll(sigma=0.1, rank=4), optax.adam(1e-3))
    state = opt.init(params)
    key = gradkit.eggroll_current_key(state)            # key + σ + settings
    out = gradkit.eggroll_population_apply(model, params, key, x, population_size=256)
    updates, state = opt.update(params, state, params, fitness=fitness(out))

The pieces, usable separately:

* :func:`eggroll_perturb` materialises member i's parameters (any model, any function,
  ``_perturb.py``); :func:`eggroll_sample_noise` draws the factors of many members in
  one call (``_noise.py``); the settings, keys and leaf kinds are in ``_config.py``.
* :func:`eggroll_apply_member` / :func:`eggroll_population_apply` evaluate a Flax linen
  model at the perturbed parameters without materialising W + σE_i: every ``nn.Dense``
  computes ``x·W + (σ/√r)·(x·A_i)·B_iᵀ`` and every ``nn.Embed`` looks up
  ``W[t] + (σ/√r)·A_i[t]·B_iᵀ`` (intercepted with ``nn.intercept_methods``); other layers
  fall back to materialising their perturbed weights. Vmapped over members, the
  W-products become one shared GEMM (``_forward.py``).
* :func:`scale_by_eggroll` turns the members' fitness, shaped by
  :func:`eggroll_shape_fitness` (``_shaping.py``), into the negated ES estimate
  −(1/N) Σ_i f̃_i E_i, so that any optax optimizer chained after it *maximises* fitness;
  :func:`eggroll` is its alias (``_transform.py``).
* :func:`population_fitness_pmap` / :func:`population_fitness_sharded` split the
  population over devices and gather only the fitness (``_parallel.py``).

Deliberate differences from the official code: the 1/σ of the ES gradient is folded into
the learning rate as in the paper (``divide_by_sigma=True`` gives the textbook estimate);
the Gaussians come from a counter hash by default (same distribution, different bits
from the official JAX-PRNG keys; ``generator="jax"`` uses ``jax.random.normal``);
non-finite fitness values are left out of the shaping.

The reference implementation is GPL-3.0 (HyperscaleES, nano-egg); nothing here is taken
from it: the algorithm follows the paper and the facts gathered for this project.

``gradkit`` re-exports the functions and classes of this package under the same names
(``gradkit.eggroll`` is the alias function, not this package); the constants (``KINDS``,
``GENERATORS``, ``KEY_IMPLS``, ``DEFAULT_KEY_IMPL``, ``FITNESS_SHAPINGS``,
``ZSCORE_EPS``) and type aliases are here only.
"""

from gradkit.evolution._config import DEFAULT_KEY_IMPL
from gradkit.evolution._config import GENERATORS
from gradkit.evolution._config import KEY_IMPLS
from gradkit.evolution._config import KINDS
from gradkit.evolution._config import EggrollConfig
from gradkit.evolution._config import EggrollKey
from gradkit.evolution._config import Generator
from gradkit.evolution._config import Kind
from gradkit.evolution._config import eggroll_resolve_kinds
from gradkit.evolution._forward import eggroll_apply_member
from gradkit.evolution._forward import eggroll_population_apply
from gradkit.evolution._noise import LowRankFactors
from gradkit.evolution._noise import eggroll_sample_noise
from gradkit.evolution._parallel import population_fitness_pmap
from gradkit.evolution._parallel import population_fitness_sharded
from gradkit.evolution._parallel import population_mesh
from gradkit.evolution._perturb import eggroll_perturb
from gradkit.evolution._shaping import FITNESS_SHAPINGS
from gradkit.evolution._shaping import ZSCORE_EPS
from gradkit.evolution._shaping import Fitness
from gradkit.evolution._shaping import FitnessShaping
from gradkit.evolution._shaping import eggroll_shape_fitness
from gradkit.evolution._transform import ScaleByEggrollState
from gradkit.evolution._transform import eggroll
from gradkit.evolution._transform import eggroll_current_key
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
    "eggroll",
    "eggroll_apply_member",
    "eggroll_current_key",
    "eggroll_perturb",
    "eggroll_population_apply",
    "eggroll_resolve_kinds",
    "eggroll_sample_noise",
    "eggroll_shape_fitness",
    "population_fitness_pmap",
    "population_fitness_sharded",
    "population_mesh",
    "scale_by_eggroll",
)
