# SPDX-License-Identifier: Apache-2.0
"""Sharpness, preconditioners, stability thresholds and track_sharpness (gradkit/hessian)."""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

import gradkit
from tests.hessian_problems import exact_hessian
from tests.hessian_problems import flat
from tests.hessian_problems import regression_loss
from tests.hessian_problems import regression_problem

PARAMS, X, Y = regression_problem()
N = ravel_pytree(PARAMS)[0].size
H = exact_hessian(regression_loss, PARAMS, X, Y)


def test_adam_preconditioner_matches_optax_step():
    opt = optax.chain(optax.adam(1e-3, b1=0.8, b2=0.95), optax.add_decayed_weights(0.0))
    state = opt.init(PARAMS)
    for i in range(3):
        g = jax.grad(regression_loss)(jax.tree.map(lambda a, i=i: a + 0.1 * i, PARAMS), X, Y)
        _, state = opt.update(g, state, PARAMS)  # (optax.adam's lr does not enter P)
    adam_state = state[0][0]
    pre = gradkit.adam_preconditioner(state, b1=0.8, b2=0.95)
    t = 3
    expected = jax.tree.map(
        lambda nu: (1 - 0.8**t) * (jnp.sqrt(nu / (1 - 0.95**t)) + 1e-8), adam_state.nu)
    chex.assert_trees_all_close(pre, expected, rtol=1e-6)
    # Adam's last step (optax's own update, sign flipped by the lr) equals P⁻¹ m with the
    # raw EMA m and P from the state after that step.
    sgd_like = optax.chain(optax.scale_by_adam(b1=0.8, b2=0.95), optax.scale(-1.0))
    s = sgd_like.init(PARAMS)
    for i in range(3):
        gi = jax.grad(regression_loss)(jax.tree.map(lambda a, i=i: a + 0.1 * i, PARAMS), X, Y)
        step, s = sgd_like.update(gi, s, PARAMS)
    chex.assert_trees_all_close(jax.tree.map(lambda u: -u, step),
                                jax.tree.map(lambda m, p: m / p, adam_state.mu, pre), rtol=1e-5)
    with pytest.raises(ValueError, match="exactly one ScaleByAdamState"):
        gradkit.adam_preconditioner(optax.sgd(0.1).init(PARAMS))


def test_sophia_preconditioner_and_thresholds():
    opt = gradkit.sophia(1e-3, update_interval=1)
    state = opt.init(PARAMS)
    _, state = opt.update(jax.grad(regression_loss)(PARAMS, X, Y), state, PARAMS,
                          obj_fn=lambda p: regression_loss(p, X, Y))
    nu = optax.tree_utils.tree_get(state, "nu")
    chex.assert_trees_all_close(gradkit.sophia_preconditioner(state, gamma=0.01),
                                jax.tree.map(lambda h: jnp.maximum(0.01 * h, 1e-12), nu))
    assert gradkit.edge_of_stability_threshold(0.01) == pytest.approx(200.0)
    assert gradkit.edge_of_stability_threshold(0.01, b1=0.9) == pytest.approx(3800.0)


def test_edge_of_stability_threshold_rejects_bad_arguments():
    with pytest.raises(ValueError, match="`learning_rate` must be in"):
        gradkit.edge_of_stability_threshold(0.0)
    with pytest.raises(ValueError, match="`b1` must be in"):
        gradkit.edge_of_stability_threshold(0.1, b1=1.0)


# --- Periodic hook ---------------------------------------------------------------------


def test_track_sharpness_measures_every_k_steps_and_keeps_inner_updates():
    scales = jnp.array([1.0, 3.0, 0.5])

    def quad(p):  # λ_max = 2·3·(1 + 0.1·p₀²)-ish: changes as p moves
        return jnp.sum(scales * p**2) * (1.0 + 0.05 * p[0] ** 2)

    inner = optax.sgd(0.05)
    opt = gradkit.track_sharpness(inner, sharpness_interval=3, num_iterations=3)
    params = jnp.array([1.0, -1.0, 2.0])
    state, ref_state, ref_params = opt.init(params), inner.init(params), params
    assert np.isnan(state.sharpness)
    step = jax.jit(lambda g, s, p: opt.update(g, s, p, obj_fn=quad))
    seen = []
    hessian = jax.jit(jax.hessian(quad))
    for t in range(7):
        exact = np.linalg.eigvalsh(np.asarray(hessian(params), np.float64))[-1]
        g = jax.grad(quad)(params)
        updates, state = step(g, state, params)
        ref_updates, ref_state = inner.update(g, ref_state, ref_params)
        chex.assert_trees_all_close(updates, ref_updates)
        if t % 3 == 0:
            np.testing.assert_allclose(state.sharpness, exact, rtol=1e-4)
            measured = float(state.sharpness)
        else:
            assert float(state.sharpness) == measured  # held until the next measurement
        seen.append(float(state.sharpness))
        params = optax.apply_updates(params, updates)
        ref_params = params
    assert len(set(seen)) == 3
    assert optax.tree_utils.tree_get(state, "sharpness") == state.sharpness
    # Without a preconditioner_fn the preconditioned sharpness is absent (no leaf).
    assert state.preconditioned_sharpness is None
    assert len(jax.tree.leaves(state._replace(inner_state=None))) == 3  # count, λ, key
    with pytest.raises(ValueError, match="needs the keyword extra arg `obj_fn`"):
        opt.update(g, state, params)


def test_track_sharpness_preconditioned_with_adam():
    params, x, y = regression_problem(seed=3)
    inner = optax.adam(1e-2)
    opt = gradkit.track_sharpness(inner, sharpness_interval=2, num_iterations=N,
                                  preconditioner_fn=gradkit.adam_preconditioner)
    obj_fn = functools.partial(regression_loss, x=x, y=y)
    state = opt.init(params)
    update = jax.jit(lambda g, s, p: opt.update(g, s, p, obj_fn=obj_fn))
    for t in range(3):
        inner_before = state.inner_state
        g = jax.grad(obj_fn)(params)
        updates, state = update(g, state, params)
        if t == 0:
            assert np.isnan(state.preconditioned_sharpness)  # no preconditioner yet
        if t == 2:
            pre = gradkit.adam_preconditioner(inner_before)
            hp = exact_hessian(regression_loss, params, x, y)
            pv = flat(pre)
            exact = np.linalg.eigvalsh(hp / np.sqrt(np.outer(pv, pv)))[-1]
            np.testing.assert_allclose(state.preconditioned_sharpness, exact, rtol=1e-3)
        params = optax.apply_updates(params, updates)


def test_track_sharpness_bad_arguments():
    with pytest.raises(ValueError, match="`sharpness_interval`"):
        gradkit.track_sharpness(optax.sgd(0.1), 0)
    with pytest.raises(ValueError, match="`num_iterations`"):
        gradkit.track_sharpness(optax.sgd(0.1), 2, num_iterations=0)
    with pytest.raises(TypeError):
        gradkit.track_sharpness(optax.sgd(0.1), every=2)
    with pytest.raises(TypeError):
        gradkit.sharpness(regression_loss, PARAMS, X, Y, seed=0)
