# SPDX-License-Identifier: Apache-2.0
"""The conformance registry: one row per public optimizer alias, primitive and wrapper.

`tests/test_conformance.py` runs every row through jit/pmap agreement with the eager
update, a jitted step that donates params and state and is traced once across steps, bf16
dtype preservation, state shapes/dtypes stable through `lax.cond`, gradient accumulation
(`optax.MultiSteps` equals one step on the mean gradient),
`optax.inject_hyperparams`, tolerance of unknown extra args (rows whose own code receives
them), an orbax round trip of the state mid-run, and convergence on a parabola and on
Rosenbrock; alias rows also must reject a concrete learning rate that is negative,
non-finite or None, accept zero, and have no default learning rate. As optax's
`_common_test.py`, rows of kind "primitive" (`scale_by_*`, no learning rate) and "wrapper"
(a transform around another optimizer) run the same structural checks; convergence is the
aliases' job. A new method adds a row here; its own test file then covers only what is
special about it.
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
    # "alias" (takes learning_rate), "primitive" (scale_by_*) or "wrapper".
    kind: str = "alias"
    # Whether gradkit's own update code receives keyword extra args (None: the row
    # passes some). False rows hand them to optax.chain, which drops them before our
    # code runs, so the unknown-extra-args check has nothing of ours to test there.
    takes_extra_args: bool | None = None
    # Convergence checks: steps and the loss that must be reached (None skips).
    parabola_steps: int = 1000
    parabola_tol: float | None = 1e-2
    rosenbrock_kwargs: dict[str, Any] | None = None  # overrides `kwargs` there
    rosenbrock_steps: int = 5000
    rosenbrock_tol: float | None = 1e-2

    @property
    def receives_extra_args(self) -> bool:
        if self.takes_extra_args is not None:
            return self.takes_extra_args
        return self.extra_args is not no_extra_args


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


# --- Sophia (gradkit/hessian) -------------------------------------------------------


def _sophia_h_extra_args(loss_fn, params, state) -> dict[str, Any]:
    del params, state
    return {"obj_fn": loss_fn}


def _binary_logits(params):
    """Logits (x, −x) for every coordinate x of params: a GNB-able model of params."""
    flat = jnp.concatenate([jnp.ravel(x).astype(jnp.float32) for x in jax.tree.leaves(params)])
    return jnp.stack([flat, -flat], axis=-1)


def _sophia_g_extra_args(loss_fn, params, state) -> dict[str, Any]:
    # GNB estimates the curvature of a softmax model; here it is that of `_binary_logits`
    # (positive, bounded), not of `loss_fn`: Sophia still converges since the clipped
    # step only needs a positive diagonal scale.
    del loss_fn, params, state
    return {"logits_fn": _binary_logits}


ROWS += (
    Row("sophia_h", gradkit.sophia, dict(learning_rate=1e-2, estimator="hutchinson"),
        extra_args=_sophia_h_extra_args,
        rosenbrock_kwargs=dict(learning_rate=1e-2, estimator="hutchinson", weight_decay=0.0)),
    Row("sophia_g", gradkit.sophia, dict(learning_rate=1e-2, estimator="gnb"),
        extra_args=_sophia_g_extra_args,
        rosenbrock_kwargs=dict(learning_rate=1e-3, estimator="gnb", weight_decay=0.0)),
)


# ⊥Grad removes each tensor's radial gradient component, so it cannot change a tensor's
# norm except by growing it (orthogonal steps): the parabola's minimiser (all ones)
# lies off the random init's sphere, and once w is parallel to it the official
# renormalisation rescales pure round-off to the gradient's norm. Rosenbrock's x and y
# are one-element tensors, which have no orthogonal direction at all. The ⊥ optimizers
# therefore opt out of both convergence checks; tests/test_orthogonal.py checks that
# they converge on a problem they can solve (a scale-invariant objective). ⊥Grad needs
# `params`, which the conformance suite always passes to `update`.
ROWS += (
    Row("perp_adamw", gradkit.perp_adamw, dict(learning_rate=1e-2),
        parabola_tol=None, rosenbrock_tol=None),
    Row("perp_sgd", gradkit.perp_sgd, dict(learning_rate=1e-2, l2_coupled=1e-3),
        parabola_tol=None, rosenbrock_tol=None),
)

# SPAM / Stable-SPAM (gradkit.spikes). The sparse row keeps moments on half of each
# matrix and re-draws the masks every 100 steps, so every entry keeps being updated.
ROWS += (
    Row("spam", gradkit.spam, dict(learning_rate=1e-2),
        rosenbrock_kwargs=dict(learning_rate=1e-2)),
    Row("spam_sparse", gradkit.spam,
        dict(learning_rate=1e-2, density=0.5, reset_interval=100, warmup_steps=10),
        rosenbrock_kwargs=dict(learning_rate=1e-2)),
    Row("stable_spam", gradkit.stable_spam, dict(learning_rate=1e-2, total_steps=1000),
        rosenbrock_kwargs=dict(learning_rate=1e-3)),
)

# EGGROLL (backprop-free): the population's fitness is −loss at each member's
# perturbed params, computed with the public API from the key in the optimizer state.
_EGGROLL_POP = 64
# Small σ: Gaussian smoothing moves Rosenbrock's valley floor (σ = 0.05 stalls at 0.24).
_EGGROLL_SIGMA = 0.01
_EGGROLL_RANK = 2
# The primitive's unscaled update moves params by O(1) per step; at σ = 0.01 the z-scored
# fitness differences, O(σ), amplify float32 rounding of the loss to ~1e-5 of a step, so
# jit and eager agree only to that. The primitive row does not converge, so σ = 0.1.
_EGGROLL_PRIMITIVE_SIGMA = 0.1


# `rank` sets array shapes: fixed here, out of the signature whose numbers
# `optax.inject_hyperparams` turns into arrays (traced in the jitted loops).
def _eggroll(learning_rate, sigma):
    return gradkit.eggroll(learning_rate, sigma, rank=_EGGROLL_RANK)


def _scale_by_eggroll(sigma):
    return gradkit.scale_by_eggroll(sigma, rank=_EGGROLL_RANK)


@functools.partial(jax.jit, static_argnums=0)
def _eggroll_population_fitness(loss_fn, params, key):
    noise = gradkit.eggroll_sample_noise(params, key, _EGGROLL_POP)

    def member_fitness(i):
        return -loss_fn(gradkit.eggroll_perturb(params, key, i, noise=noise))

    return jax.vmap(member_fitness)(jnp.arange(_EGGROLL_POP))


def _eggroll_fitness(loss_fn, params, state) -> dict[str, Any]:
    key = gradkit.eggroll_current_key(state)
    return {"fitness": _eggroll_population_fitness(loss_fn, params, key)}


ROWS += (
    Row("eggroll", _eggroll, dict(learning_rate=1e-2, sigma=_EGGROLL_SIGMA),
        extra_args=_eggroll_fitness),
)

# --- Multi-gradient methods (gradkit/multitask/) ------------------------------------
# PCGrad and GCond take stacked per-task gradients, not one gradient tree, so the suite
# does not apply to them (tests/test_pcgrad.py and tests/test_gcond.py cover them).
# Sven needs per-sample losses: the parabola's are (x_i − 1)² per coordinate,
# Rosenbrock's its two squared residuals.


def _per_sample_losses(loss_fn):
    from tests import helpers

    if loss_fn is helpers.parabola:
        return lambda p: jnp.concatenate(
            [jnp.ravel((x.astype(jnp.float32) - 1.0) ** 2) for x in jax.tree.leaves(p)])
    if loss_fn is helpers.rosenbrock:
        return lambda p: jnp.stack([
            (1.0 - p["x"].astype(jnp.float32)) ** 2,
            100.0 * (p["y"].astype(jnp.float32) - p["x"].astype(jnp.float32) ** 2) ** 2])
    raise ValueError("no per-sample decomposition registered for this loss")


def _sven_extra_args(loss_fn, params, state) -> dict[str, Any]:
    del params, state
    return {"per_sample_loss_fn": _per_sample_losses(loss_fn)}


ROWS += (
    Row("sven", gradkit.sven, dict(learning_rate=1.0),
        extra_args=_sven_extra_args, parabola_steps=200,
        rosenbrock_kwargs=dict(learning_rate=1.0, k=2), rosenbrock_steps=200),
)

# --- Muon family (gradkit/muon/) ----------------------------------------------------
# AuON takes the 2-D `dense.kernel` (Hybrid-AuON is `auon(hybrid=True)`, same alias; its
# step is checked in closed form in tests/test_muon_auon.py); `conv` (3-D), the bias and
# Rosenbrock's scalars go to AdamW. Drop-Muon's default layers here are the top-level keys
# (`conv` = layer 0, `dense` = layer 1; Rosenbrock's `x` = 0, `y` = 1): each step a random
# start layer, so `conv`/`x` only move on about half of the steps.
ROWS += (
    Row("auon", gradkit.auon, dict(learning_rate=1e-2)),
    Row("drop_muon", gradkit.drop_muon, dict(learning_rate=1e-2), takes_extra_args=True),
)

# --- Step-size rules (gradkit/stepsize/) --------------------------------------------
ROWS += (
    Row("diffgrad", gradkit.diffgrad, dict(learning_rate=3e-2)),
    Row("adagrad_norm", gradkit.adagrad_norm, dict(learning_rate=0.5),
        rosenbrock_kwargs=dict(learning_rate=1.0)),
)

# --- Memory-efficient state: FRUGAL and Fira (gradkit/memory/) ----------------------
# The tiny kernel (4×3) takes FRUGAL / Fira; the bias, the 3-D conv and Rosenbrock's
# scalars take AdamW. FRUGAL's default (blocks, ρ = 0.25) on a single matrix would leave
# k = round(0.25) = 0 tensors active (pure signSGD), so the row uses SVD at ρ = 1/2 (rank
# round(1.5) = 2) with a short interval: the convergence runs cross several projector
# refreshes with moment resets. Blocks are covered in tests/test_frugal.py.
ROWS += (
    Row("frugal", gradkit.frugal,
        dict(learning_rate=1e-2, rho=0.5, update_interval=50, projection="svd")),
    Row("fira", gradkit.fira, dict(learning_rate=1e-2, rank=2, update_interval=50)),
)

# --- 8-bit block-wise state (gradkit/memory/) ----------------------------------------
# The suite's pytrees are tiny: `min_8bit_size=0` and 8-element blocks make every moment
# (Rosenbrock's scalars too) 8-bit, so the rows exercise the quantized path; the paper's
# defaults (2048 / 4096) would leave them all in float32.
ROWS += (
    Row("adamw_8bit", gradkit.adamw_8bit,
        dict(learning_rate=1e-2, block_size=8, min_8bit_size=0)),
)

# --- Primitives and wrappers (structural checks only; see the module docstring) ------

_NO_CONVERGENCE = dict(parabola_tol=None, rosenbrock_tol=None)


# A fixed pytree mask (a callable would be taken for a schedule by inject_hyperparams).
_TINY_MATRIX_MASK = {"dense": {"kernel": True, "bias": False}, "conv": False}


def _tracked_sgd(**kwargs):
    return gradkit.track_sharpness(optax.sgd(1e-2), **kwargs)


ROWS += (
    Row("scale_by_lion_k", gradkit.scale_by_lion_k, dict(kappa="tanh", a=10.0),
        kind="primitive", **_NO_CONVERGENCE),
    Row("scale_by_sophia", gradkit.scale_by_sophia, dict(update_interval=2),
        extra_args=_sophia_h_extra_args, kind="primitive", **_NO_CONVERGENCE),
    Row("project_orthogonal_masked", gradkit.project_orthogonal,
        dict(projection_mask=_TINY_MATRIX_MASK),
        kind="primitive", **_NO_CONVERGENCE),
    Row("scale_by_diffgrad", gradkit.scale_by_diffgrad, {}, kind="primitive",
        **_NO_CONVERGENCE),
    Row("scale_by_adagrad_norm", gradkit.scale_by_adagrad_norm, {}, kind="primitive",
        **_NO_CONVERGENCE),
    Row("limit_norm_growth", gradkit.limit_norm_growth, dict(gamma=1.5), kind="primitive",
        **_NO_CONVERGENCE),
    Row("track_sharpness_sgd", _tracked_sgd, dict(sharpness_interval=2, num_iterations=2),
        extra_args=_sophia_h_extra_args, kind="wrapper", **_NO_CONVERGENCE),
)


# with_8bit_state around Lion, every moment 8-bit (see the adamw_8bit row above).
def _lion_8bit(**kwargs):
    return gradkit.with_8bit_state(gradkit.lion(1e-2), **kwargs)


ROWS += (
    Row("with_8bit_state_lion", _lion_8bit, dict(block_size=8, min_8bit_size=0),
        kind="wrapper", **_NO_CONVERGENCE),
)


# scale_by_fira projects 2-D leaves only: it takes the tiny kernel, the other leaves pass.
# (Named arguments: optax.inject_hyperparams reads the factory's signature.)
def _fira_on_matrices(rank, update_interval):
    def labels(params):
        return jax.tree.map(lambda x: "fira" if jnp.ndim(x) == 2 else "rest", params)

    fira = gradkit.scale_by_fira(rank=rank, update_interval=update_interval)
    return optax.partition({"fira": fira, "rest": optax.identity()}, labels)


# scale_by_auon takes 2-D leaves only (the alias routes the others to AdamW): it takes the
# tiny kernel, the other leaves pass.
def _auon_on_matrices(beta=0.95):  # a named argument: inject_hyperparams reads the signature
    def labels(params):
        return jax.tree.map(lambda x: "auon" if jnp.ndim(x) == 2 else "rest", params)

    return optax.partition({"auon": gradkit.scale_by_auon(beta), "rest": optax.identity()},
                           labels)


# with_periodic_reset around optax.adam: a 2-step interval, so the 3-step runs reset once.
def _adam_with_reset(**kwargs):
    return gradkit.with_periodic_reset(optax.adam(1e-2), **kwargs)


# The spike, EGGROLL and FRUGAL primitives take every leaf of the tiny pytree; AuON and
# Fira its matrix (above).
ROWS += (
    Row("scale_by_spam", gradkit.scale_by_spam, {}, kind="primitive", **_NO_CONVERGENCE),
    Row("scale_by_stable_spam", gradkit.scale_by_stable_spam, dict(total_steps=1000),
        kind="primitive", **_NO_CONVERGENCE),
    Row("clip_spikes", gradkit.clip_spikes, dict(threshold=2.0, clip_delay=1),
        kind="primitive", **_NO_CONVERGENCE),
    Row("with_periodic_reset_adam", _adam_with_reset, dict(reset_interval=2),
        kind="wrapper", **_NO_CONVERGENCE),
    Row("scale_by_eggroll", _scale_by_eggroll, dict(sigma=_EGGROLL_PRIMITIVE_SIGMA),
        extra_args=_eggroll_fitness,
        kind="primitive", **_NO_CONVERGENCE),
    Row("scale_by_auon", _auon_on_matrices, dict(beta=0.9), kind="primitive",
        **_NO_CONVERGENCE),
    # blocks take leaves of any shape: ρ = 1/2 of 3 leaves keeps 2 active, re-chosen at
    # count 2 (the "svd"/"columns"/"rows" projections run in the frugal alias row).
    Row("scale_by_frugal", gradkit.scale_by_frugal,
        dict(rho=0.5, update_interval=2, block_order="random"), kind="primitive",
        **_NO_CONVERGENCE),
    Row("scale_by_fira", _fira_on_matrices, dict(rank=2, update_interval=2),
        kind="primitive", **_NO_CONVERGENCE),
    Row("scale_by_drop_muon", gradkit.scale_by_drop_muon, {}, takes_extra_args=True,
        kind="primitive", **_NO_CONVERGENCE),
    Row("scale_by_sven", gradkit.scale_by_sven, {}, extra_args=_sven_extra_args,
        kind="primitive", **_NO_CONVERGENCE),
)
