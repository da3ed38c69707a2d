"""The conformance registry: one row per public optimizer alias.

`tests/test_conformance.py` runs every row through jit/no-jit/pmap agreement, no
recompilation across steps, bf16 dtype preservation, `optax.inject_hyperparams`,
`optax.MultiSteps`, tolerance of unknown extra args, an orbax round trip of the state
mid-run, and convergence on a parabola and on Rosenbrock. A new method adds a row
here; its own test file then covers only what is special about it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

import gradkit

# Builds the keyword extra args an update needs from (loss_fn, params, state), e.g.
# {"obj_fn": loss_fn} for a Hessian estimator. `loss_fn(params) -> scalar`.
ExtraArgsFn = Callable[[Callable[[Any], Any], Any, Any], dict[str, Any]]


def no_extra_args(loss_fn, params, state) -> dict[str, Any]:
    del loss_fn, params, state
    return {}


@dataclasses.dataclass(frozen=True)
class Row:
    name: str
    factory: Callable[..., optax.GradientTransformation]
    kwargs: dict[str, Any]
    extra_args: ExtraArgsFn = no_extra_args
    # Convergence checks: steps and the loss that must be reached (None skips).
    parabola_steps: int = 1000
    parabola_tol: float | None = 1e-2
    rosenbrock_kwargs: dict[str, Any] | None = None  # overrides `kwargs` there
    rosenbrock_steps: int = 5000
    rosenbrock_tol: float | None = 1e-2


ROWS: tuple[Row, ...] = (
    Row("lion", gradkit.lion, dict(learning_rate=1e-2),
        rosenbrock_kwargs=dict(learning_rate=1e-3, weight_decay=0.0)),
    Row("lion_k_tanh", gradkit.lion_k, dict(learning_rate=1e-2, kappa="tanh", a=10.0),
        rosenbrock_kwargs=dict(learning_rate=1e-3, kappa="tanh", a=10.0, weight_decay=0.0)),
    Row("lion_k_relativistic", gradkit.lion_k,
        dict(learning_rate=1e-2, kappa="relativistic", a=0.1),
        rosenbrock_kwargs=dict(learning_rate=1e-3, kappa="relativistic", a=0.1,
                               weight_decay=0.0)),
)


# EGGROLL (backprop-free): the population's fitness is −loss at each member's
# perturbed params, computed with the public API from the key in the optimizer state.
_EGGROLL_POP = 64
# Small σ: Gaussian smoothing moves Rosenbrock's valley floor (σ = 0.05 stalls at 0.24).
_EGGROLL_SIGMA = 0.01
_EGGROLL_RANK = 2


@functools.partial(jax.jit, static_argnums=0)
def _eggroll_population_fitness(loss_fn, params, key):
    noise = gradkit.eggroll_sample_noise(params, key, _EGGROLL_POP, rank=_EGGROLL_RANK)

    def member_fitness(i):
        member = gradkit.eggroll_perturb(params, key, i, sigma=_EGGROLL_SIGMA,
                                         population_size=_EGGROLL_POP, rank=_EGGROLL_RANK,
                                         noise=noise)
        return -loss_fn(member)

    return jax.vmap(member_fitness)(jnp.arange(_EGGROLL_POP))


def _eggroll_fitness(loss_fn, params, state) -> dict[str, Any]:
    key = gradkit.eggroll_current_key(state)
    return {"fitness": _eggroll_population_fitness(loss_fn, params, key)}


ROWS += (
    Row("eggroll", gradkit.eggroll,
        dict(learning_rate=1e-2, sigma=_EGGROLL_SIGMA, rank=_EGGROLL_RANK),
        extra_args=_eggroll_fitness),
)
