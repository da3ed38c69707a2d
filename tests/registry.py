"""The conformance registry: one row per public optimizer alias.

`tests/test_conformance.py` runs every row through jit/no-jit/pmap agreement, no
recompilation across steps, bf16 dtype preservation, `optax.inject_hyperparams`,
`optax.MultiSteps`, tolerance of unknown extra args, an orbax round trip of the state
mid-run, and convergence on a parabola and on Rosenbrock. A new method adds a row
here; its own test file then covers only what is special about it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

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

# SPAM / Stable-SPAM (gradkit.spikes). The sparse row keeps moments on half of each
# matrix and re-draws the masks every 100 steps, so every entry keeps being updated.
ROWS += (
    Row("spam", gradkit.spam, dict(learning_rate=1e-2),
        rosenbrock_kwargs=dict(learning_rate=1e-2)),
    Row("spam_sparse", gradkit.spam,
        dict(learning_rate=1e-2, density=0.5, reset_interval=100, warmup=10),
        rosenbrock_kwargs=dict(learning_rate=1e-2)),
    Row("stable_spam", gradkit.stable_spam, dict(learning_rate=1e-2, total_steps=1000),
        rosenbrock_kwargs=dict(learning_rate=1e-3)),
)
