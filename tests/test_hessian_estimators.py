# SPDX-License-Identifier: Apache-2.0
"""Hutchinson and Gauss-Newton-Bartlett diagonal-Hessian estimators (gradkit/hessian)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree
from optax import contrib

import gradkit
from tests.hessian_problems import ce
from tests.hessian_problems import logits
from tests.hessian_problems import regression_loss
from tests.hessian_problems import regression_problem
from tests.hessian_problems import softmax_problem
from tests.hessian_problems import spd


def test_hutchinson_equals_optax_estimator_bit_for_bit():
    x, y, params = softmax_problem()
    obj_fn = lambda p: ce(p, x, y)  # noqa: E731
    ours = gradkit.hutchinson_diag_hessian(key=3)
    theirs = contrib.hutchinson_estimator_diag_hessian(jax.random.PRNGKey(3))
    s1, s2 = ours.init(params), theirs.init(params)
    step1 = jax.jit(lambda s: ours.update(params, s, params, obj_fn=obj_fn))
    step2 = jax.jit(lambda s: theirs.update(params, s, params, obj_fn=obj_fn))
    for _ in range(3):
        h1, s1 = step1(s1)
        h2, s2 = step2(s2)
        chex.assert_trees_all_equal(h1, h2)
    assert s1.key.dtype == jnp.uint32


def _mean_and_stderr(draws):
    n = jax.tree.leaves(draws)[0].shape[0]
    mean = jax.tree.map(lambda d: d.mean(0), draws)
    err = jax.tree.map(lambda d: d.std(0) / np.sqrt(n), draws)
    return mean, err


@pytest.mark.parametrize("distribution", ["rademacher", "gaussian"])
def test_hutchinson_mean_matches_quadratic_diagonal(distribution):
    a = spd(6, seed=1)
    obj_fn = lambda p: 0.5 * p["x"] @ a @ p["x"] + jnp.sum(p["y"] ** 2)  # noqa: E731
    params = {"x": jnp.ones(6), "y": jnp.ones(2)}
    est = gradkit.hutchinson_diag_hessian(distribution=distribution)
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(4000))

    def one(key):
        h, _ = est.update(params, gradkit.HutchinsonDiagHessianState(key), params,
                          obj_fn=obj_fn)
        return h

    draws = jax.jit(jax.vmap(one))(keys)
    mean, err = _mean_and_stderr(draws)
    true = {"x": jnp.diag(a), "y": 2.0 * jnp.ones(2)}
    for leaf in ("x", "y"):
        dev = np.abs(np.asarray(mean[leaf] - true[leaf]))
        assert np.all(dev < 5 * np.asarray(err[leaf]) + 1e-6), (leaf, dev, err[leaf])
    assert float(err["x"].max()) > 0  # a genuinely noisy estimate
    if distribution == "rademacher":
        # A separable leaf gets its exact diagonal from every Rademacher draw.
        chex.assert_trees_all_close(draws["y"], jnp.full_like(draws["y"], 2.0), atol=1e-5)
        # Var ĥ_i = Σ_{j≠i} A_ij² for Rademacher probes (Gaussian adds 2A_ii²).
        var = np.asarray(draws["x"].var(0))
        expected = np.asarray((a**2).sum(1) - jnp.diag(a) ** 2)
        np.testing.assert_allclose(var, expected, rtol=0.15)


def _gauss_newton_diag(params, x, mask=None):
    """diag of (1/B) Σ_b J_bᵀ (diag p_b − p_b p_bᵀ) J_b, by explicit Jacobians."""
    flat, unravel = ravel_pytree(params)
    jac = jax.jacobian(lambda f: logits(unravel(f), x))(flat)  # (B, C, P)
    p = jax.nn.softmax(logits(params, x))
    s = jax.vmap(lambda q: jnp.diag(q) - jnp.outer(q, q))(p)  # (B, C, C)
    per_pos = jnp.einsum("bcp,bcd,bdp->bp", jac, s, jac)
    w = jnp.ones(x.shape[0]) if mask is None else mask.astype(jnp.float32)
    return unravel((w[:, None] * per_pos).sum(0) / w.sum())


@pytest.mark.parametrize("masked", [False, True])
def test_gnb_expectation_matches_gauss_newton_diagonal(masked):
    x, _, params = softmax_problem(batch=12)
    mask = (jnp.arange(12) % 3 != 0) if masked else None
    est = gradkit.gnb_diag_hessian()
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(6000))

    def one(key):
        h, _ = est.update(params, gradkit.GNBDiagHessianState(key), params,
                          logits_fn=lambda p: logits(p, x), mask=mask)
        return h

    draws = jax.jit(jax.vmap(one))(keys)
    mean, err = _mean_and_stderr(draws)
    true = jax.jit(_gauss_newton_diag)(params, x, mask)
    for leaf in ("w", "b"):
        dev = np.abs(np.asarray(mean[leaf] - true[leaf]))
        assert np.all(dev < 5 * np.asarray(err[leaf]) + 1e-6), (leaf, dev, err[leaf])
    # A single draw is B·ĝ⊙ĝ with ĝ the gradient of the mean CE on sampled labels.
    key = jax.random.PRNGKey(0)
    h, _ = est.update(params, gradkit.GNBDiagHessianState(key), params,
                      logits_fn=lambda p: logits(p, x), mask=mask)
    labels = jax.random.categorical(jax.random.split(key)[1], logits(params, x))
    w = jnp.ones(12) if mask is None else mask.astype(jnp.float32)
    g = jax.grad(lambda p: jnp.sum(w * optax.softmax_cross_entropy_with_integer_labels(
        logits(p, x), labels)) / w.sum())(params)
    chex.assert_trees_all_close(h, jax.tree.map(lambda v: w.sum() * v**2, g), rtol=1e-5)


def test_hutchinson_is_u_times_hvp_of_u():
    """Hutchinson's ĥ with Rademacher u is u ⊙ hvp(u): the same HVP as gradkit.hvp."""
    params, x, y = regression_problem()
    est = gradkit.hutchinson_diag_hessian(key=3)
    h, _ = est.update(params, est.init(params), params,
                      obj_fn=lambda p: regression_loss(p, x, y))
    sub = jax.random.split(jax.random.PRNGKey(3))[1]
    u = optax.tree.random_like(sub, params, jax.random.rademacher, dtype=jnp.float32)
    expected = jax.tree.map(jnp.multiply, u, gradkit.hvp(regression_loss, params, u, x, y))
    chex.assert_trees_all_close(h, expected, rtol=1e-6)


def test_key_is_an_int_or_a_jax_key_stored_as_key_data():
    params = {"w": jnp.linspace(-1.0, 1.0, 4)}
    for factory in (gradkit.hutchinson_diag_hessian, gradkit.gnb_diag_hessian):
        expected = jax.random.key_data(jax.random.key(7))
        chex.assert_trees_all_equal(factory(key=7).init(params).key, expected)
        chex.assert_trees_all_equal(factory(jax.random.key(7)).init(params).key, expected)
        chex.assert_trees_all_equal(factory().init(params).key,
                                    jax.random.key_data(jax.random.key(0)))
        with pytest.raises(TypeError, match="`key`"):
            factory(key="7").init(params)
        with pytest.raises(TypeError):
            factory(seed=7)


def test_bad_distribution_and_missing_extra_args():
    params = {"w": jnp.ones(3)}
    with pytest.raises(ValueError, match="`distribution`"):
        gradkit.hutchinson_diag_hessian(distribution="uniform")
    est = gradkit.hutchinson_diag_hessian()
    with pytest.raises(ValueError, match="`obj_fn`"):
        est.update(params, est.init(params), params)
    with pytest.raises(ValueError, match="params"):
        est.update(params, est.init(params), obj_fn=lambda p: 0.0)
    est = gradkit.gnb_diag_hessian()
    with pytest.raises(ValueError, match="`logits_fn`"):
        est.update(params, est.init(params), params, obj_fn=lambda p: 0.0)


# --- Multi-device ------------------------------------------------------------------


def test_pmap_hutchinson_equals_single_device_on_global_batch():
    n = jax.device_count()
    x, y, params = softmax_problem(seed=3, batch=4 * n)
    est = gradkit.hutchinson_diag_hessian(key=9, axis_name="d")
    single = gradkit.hutchinson_diag_hessian(key=9)
    expected, _ = jax.jit(lambda s: single.update(params, s, params,
                                                  obj_fn=lambda p: ce(p, x, y)))(
        single.init(params))

    def local(params, xb, yb):
        h, _ = est.update(params, est.init(params), params, obj_fn=lambda p: ce(p, xb, yb))
        return h

    rep = jax.tree.map(lambda a: jnp.broadcast_to(a, (n, *a.shape)), params)
    got = jax.pmap(local, axis_name="d")(rep, x.reshape(n, 4, -1), y.reshape(n, 4))
    chex.assert_trees_all_close(jax.tree.map(lambda a: a[3], got), expected, rtol=1e-5,
                                atol=1e-7)


def test_pmap_gnb_uses_global_mean_gradient_and_global_count():
    n = jax.device_count()
    x, _, params = softmax_problem(seed=4, batch=4 * n)
    mask = (jnp.arange(4 * n) % 5 != 0).reshape(n, 4)
    est = gradkit.gnb_diag_hessian(key=1, axis_name="d")

    def local(params, xb, mb):
        h, _ = est.update(params, est.init(params), params,
                          logits_fn=lambda p: logits(p, xb), mask=mb)
        return h

    rep = jax.tree.map(lambda a: jnp.broadcast_to(a, (n, *a.shape)), params)
    got = jax.pmap(local, axis_name="d")(rep, x.reshape(n, 4, -1), mask)
    # Reference: each device samples with key fold_in(split(key)[1], device index).
    sub = jax.random.split(jax.random.PRNGKey(1))[1]

    def device_sum(i, xb, wb):  # device i's gradient of the *sum* of its kept CE terms
        labels = jax.random.categorical(jax.random.fold_in(sub, i), logits(params, xb))
        return jax.grad(lambda p: jnp.sum(
            wb * optax.softmax_cross_entropy_with_integer_labels(logits(p, xb), labels)))(
                params)

    weights = mask.astype(jnp.float32)
    sums = jax.jit(jax.vmap(device_sum))(jnp.arange(n), x.reshape(n, 4, -1), weights)
    total = jax.tree.map(lambda s: s.sum(0), sums)
    count = float(weights.sum())
    expected = jax.tree.map(lambda s: count * (s / count) ** 2, total)
    chex.assert_trees_all_close(jax.tree.map(lambda a: a[5], got), expected, rtol=1e-4,
                                atol=1e-8)
