# SPDX-License-Identifier: Apache-2.0
"""The Hessian spectrum (gradkit/hessian): checked against exact Hessians of tiny models."""

from __future__ import annotations

import functools
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

import gradkit
from tests.hessian_problems import exact_hessian
from tests.hessian_problems import regression_loss
from tests.hessian_problems import regression_problem
from tests.hessian_problems import rows

PARAMS, X, Y = regression_problem()
N = ravel_pytree(PARAMS)[0].size
H = exact_hessian(regression_loss, PARAMS, X, Y)
EVALS, EVECS = np.linalg.eigh(H)  # ascending


# --- Top eigenvalues --------------------------------------------------------------------


def test_lanczos_top_k_equals_eigh():
    vals, vecs = gradkit.hessian_top_eigenvalues(regression_loss, PARAMS, X, Y, k=4)
    np.testing.assert_allclose(vals, EVALS[::-1][:4], rtol=1e-4)
    vec_rows = rows(vecs)
    np.testing.assert_allclose(np.linalg.norm(vec_rows, axis=1), 1.0, rtol=1e-5)
    # Each Ritz vector is the exact eigenvector up to sign (the top gaps are > 0.1).
    np.testing.assert_allclose(np.abs(np.sum(vec_rows * EVECS[:, ::-1][:, :4].T, axis=1)), 1.0,
                               atol=1e-3)


def test_lanczos_with_n_steps_gives_the_whole_spectrum():
    vals, vecs = gradkit.hessian_top_eigenvalues(regression_loss, PARAMS, X, Y, k=N,
                                                 num_iterations=500)
    np.testing.assert_allclose(vals, EVALS[::-1], atol=1e-4 * np.abs(EVALS).max())
    vec_rows = rows(vecs)
    np.testing.assert_allclose(vec_rows @ H @ vec_rows.T, np.diag(vals), atol=1e-4)


def test_power_iteration_with_deflation_finds_largest_magnitudes():
    vals, vecs = gradkit.hessian_top_eigenvalues(regression_loss, PARAMS, X, Y, k=3, method="power",
                                                 tol=1e-9, num_iterations=3000)
    by_magnitude = EVALS[np.argsort(-np.abs(EVALS))][:3]
    np.testing.assert_allclose(vals, np.sort(by_magnitude)[::-1], rtol=1e-4)
    # The stopping rule is on λ (error ∝ the vector's error squared): vectors are looser.
    vec_rows = rows(vecs)
    np.testing.assert_allclose(vec_rows @ H @ vec_rows.T, np.diag(vals), atol=2e-2)


def test_lanczos_survives_krylov_breakdown_on_a_low_rank_hessian():
    a = jnp.arange(1.0, 7.0)

    def rank_one(p):  # H = a aᵀ: the Krylov space of any v0 has dimension ≤ 2.
        return 0.5 * jnp.dot(a, p) ** 2

    vals, vecs = gradkit.hessian_top_eigenvalues(rank_one, jnp.zeros(6), k=6)
    np.testing.assert_allclose(vals, [float(a @ a), 0, 0, 0, 0, 0], atol=1e-4)
    np.testing.assert_allclose(np.abs(vecs[0]), a / jnp.linalg.norm(a), atol=1e-5)
    assert np.all(np.isfinite(vecs))


def test_jit_and_eager_agree():
    kwargs = dict(k=4)  # the settings of test_lanczos_top_k_equals_eigh (compiled once)
    eager = gradkit.hessian_top_eigenvalues(regression_loss, PARAMS, X, Y, **kwargs)
    jitted = jax.jit(functools.partial(gradkit.hessian_top_eigenvalues, regression_loss, **kwargs))(
        PARAMS, X, Y)
    chex.assert_trees_all_close(jitted, eager, rtol=1e-4, atol=1e-5)


def test_clear_errors():
    top = functools.partial(gradkit.hessian_top_eigenvalues, regression_loss, PARAMS, X, Y)
    with pytest.raises(ValueError, match=f"`k`={N + 1} exceeds the dimension.*{N}"):
        top(k=N + 1)
    with pytest.raises(ValueError, match="`k` must be a positive integer"):
        top(k=0)
    with pytest.raises(ValueError, match="`num_iterations` must be ≥ k=3"):
        top(k=3, num_iterations=2)
    with pytest.raises(ValueError, match="`method` must be one of"):
        top(method="arnoldi")
    with pytest.raises(ValueError, match="`v0` is the zero vector"):
        top(v0=jax.tree.map(jnp.zeros_like, PARAMS))
    with pytest.raises(ValueError, match="`v0` must have the same pytree structure"):
        top(v0=jnp.ones(N))
    with pytest.raises(ValueError, match="`preconditioner` must have the same pytree"):
        top(preconditioner=[1.0])
    with pytest.raises(ValueError, match="`num_samples` must be ≥ 2"):
        gradkit.hessian_trace(regression_loss, PARAMS, X, Y, num_samples=1)


def test_non_finite_loss_gives_nan_not_an_error():
    bad = dict(PARAMS, b1=PARAMS["b1"].at[0].set(jnp.nan))
    vals, _ = gradkit.hessian_top_eigenvalues(regression_loss, bad, X, Y, k=4)
    assert np.isnan(vals).all()


def test_start_vector_is_used():
    # An exact eigenvector as v0: the Krylov space is one-dimensional, λ is exact.
    v0 = jax.flatten_util.ravel_pytree(PARAMS)[1](jnp.asarray(EVECS[:, -1], jnp.float32))
    vals, _ = gradkit.hessian_top_eigenvalues(regression_loss, PARAMS, X, Y, k=1, method="power",
                                              v0=v0, num_iterations=1)
    np.testing.assert_allclose(vals[0], EVALS[-1], rtol=1e-4)


# --- Preconditioned ---------------------------------------------------------------------


def test_preconditioned_eigenpairs_solve_generalised_problem():
    pvec = np.asarray(jnp.exp(jax.random.normal(jax.random.key(7), (N,))), np.float64)
    pre = ravel_pytree(PARAMS)[1](jnp.asarray(pvec, jnp.float32))
    s = H / np.sqrt(np.outer(pvec, pvec))  # P^{-1/2} H P^{-1/2}
    exact = np.linalg.eigvalsh(s)[::-1]
    vals, vecs = gradkit.hessian_top_eigenvalues(regression_loss, PARAMS, X, Y, k=2,
                                                 preconditioner=pre)
    np.testing.assert_allclose(vals, exact[:2], rtol=1e-4)
    for lam, u in zip(np.asarray(vals), rows(vecs), strict=True):  # H u = λ P u
        np.testing.assert_allclose(H @ u, lam * pvec * u, atol=1e-4 * abs(lam))


# --- Trace ---------------------------------------------------------------------------


@pytest.mark.parametrize("distribution", ["rademacher", "gaussian"])
def test_trace_within_three_standard_errors(distribution):
    est = gradkit.hessian_trace(regression_loss, PARAMS, X, Y, num_samples=300,
                                distribution=distribution, key=1)
    assert abs(float(est.trace) - np.trace(H)) < 3 * float(est.std_error)
    assert est.samples.shape == (300,)
    # Var(vᵀHv) = 2Σ_{i≠j}H_ij² (Rademacher) or 2‖H‖_F² (Gaussian).
    off = 2 * (np.sum(H**2) - np.sum(np.diag(H) ** 2))
    var = off if distribution == "rademacher" else 2 * np.sum(H**2)
    assert 0.7 < float(jnp.var(est.samples)) / var < 1.4


def test_trace_is_exact_for_a_diagonal_hessian_with_rademacher_probes():
    est = gradkit.hessian_trace(lambda p: jnp.sum(jnp.arange(1.0, 5.0) * p**2), jnp.ones(4),
                                num_samples=4)
    assert float(est.trace) == 20.0 and float(est.std_error) == 0.0


# --- Spectral density -----------------------------------------------------------------


def test_slq_with_full_order_recovers_the_spectrum_and_gauss_quadrature():
    sd = gradkit.hessian_spectral_density(regression_loss, PARAMS, X, Y, num_iterations=N,
                                          num_probes=2, grid_len=4000)
    np.testing.assert_allclose(np.sort(sd.nodes, axis=1), np.tile(EVALS, (2, 1)),
                               atol=1e-4 * np.abs(EVALS).max())
    np.testing.assert_allclose(np.sum(sd.weights, axis=1), 1.0, rtol=1e-5)
    assert np.trapezoid(sd.density, sd.grid) == pytest.approx(1.0, abs=1e-3)


def test_slq_density_matches_exact_histogram():
    # Order 8 < n = 22, 30 probes: the quadrature's CDF follows the exact eigenvalue CDF,
    # and its first 2m−1 moments are unbiased estimates of tr(Hʲ)/n.
    sd = gradkit.hessian_spectral_density(regression_loss, PARAMS, X, Y, num_iterations=8,
                                          num_probes=30, grid_len=3000, key=2)
    nodes, weights = np.asarray(sd.nodes, np.float64), np.asarray(sd.weights, np.float64)
    assert np.trapezoid(sd.density, sd.grid) == pytest.approx(1.0, abs=1e-3)
    for j in (1, 2, 3):
        est = np.sum(weights * nodes**j, axis=1)  # one estimate per probe
        exact = np.mean(EVALS**j)
        assert abs(est.mean() - exact) < 3 * est.std(ddof=1) / np.sqrt(len(est)) + 1e-6
    grid = np.linspace(EVALS.min() - 0.1, EVALS.max() + 0.1, 50)
    cdf_slq = np.array([np.sum(weights * (nodes <= t)) / len(nodes) for t in grid])
    cdf_exact = np.array([np.mean(EVALS <= t) for t in grid])
    # Gauss quadrature with m nodes puts each step within ~1/m of the true CDF.
    assert np.max(np.abs(cdf_slq - cdf_exact)) < 0.2
    # Broadened histogram: mass within ±0.05 of the exact eigenvalues' bins.
    bins = np.linspace(EVALS.min() - 0.5, EVALS.max() + 0.5, 6)
    dens_mass = [np.trapezoid(np.where((sd.grid >= a) & (sd.grid < b), sd.density, 0.0),
                              sd.grid) for a, b in itertools.pairwise(bins)]
    exact_mass = np.histogram(EVALS, bins)[0] / N
    np.testing.assert_allclose(dens_mass, exact_mass, atol=0.12)
