"""Curvature diagnostics (gradkit/spectrum): checked against exact Hessians of tiny models."""

from __future__ import annotations

import functools
import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

import gradkit
from gradkit.hessian import _hvp
from gradkit.hessian import _sophia as curvature

# --- A tiny model with an exact Hessian ------------------------------------------------

N_DEV = 8  # tests/conftest.py's virtual devices


def _problem(seed: int = 0, batch: int = 16):
    """A 2-layer tanh regression net (3 → 4 → 2, with a bias: 22 parameters)."""
    k = jax.random.split(jax.random.key(seed), 5)
    x = jax.random.normal(k[0], (batch, 3))
    y = jax.random.normal(k[1], (batch, 2))
    params = {"w1": 0.7 * jax.random.normal(k[2], (3, 4)), "b1": 0.1 * jnp.ones(4),
              "w2": 0.7 * jax.random.normal(k[3], (4, 2))}
    return params, x, y


def _loss(params, x, y):
    return jnp.mean((jnp.tanh(x @ params["w1"] + params["b1"]) @ params["w2"] - y) ** 2)


PARAMS, X, Y = _problem()
N = ravel_pytree(PARAMS)[0].size


@functools.partial(jax.jit, static_argnums=0)
def _hessian_jit(loss, params, *extra):
    flat, unravel = ravel_pytree(params)
    return jax.hessian(lambda f: loss(unravel(f), *extra))(flat)


def _exact_hessian(loss, params, *extra):
    return np.asarray(_hessian_jit(loss, params, *extra), np.float64)


H = _exact_hessian(_loss, PARAMS, X, Y)
EVALS, EVECS = np.linalg.eigh(H)  # ascending


def _flat(tree):
    return np.asarray(ravel_pytree(tree)[0], np.float64)


def _rows(vectors):
    """Eigenvector pytree with leading axis k -> [k, n] float64 rows."""
    return np.stack([_flat(jax.tree.map(lambda a, i=i: a[i], vectors))
                     for i in range(jax.tree.leaves(vectors)[0].shape[0])])


# --- hvp ---------------------------------------------------------------------------


def test_hvp_equals_exact_hessian_times_v_and_vmaps_over_vectors():
    vs = [jax.tree.map(lambda a, i=i: jax.random.normal(jax.random.key(i), a.shape), PARAMS)
          for i in range(3)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *vs)

    @jax.jit
    def one_by_one_and_batched(stacked):
        loop = [gradkit.hvp(_loss, PARAMS, jax.tree.map(lambda a, i=i: a[i], stacked), X, Y)
                for i in range(3)]
        batched = jax.vmap(gradkit.hvp, in_axes=(None, None, 0, None, None))(
            _loss, PARAMS, stacked, X, Y)
        return loop, batched

    loop, batched = one_by_one_and_batched(stacked)
    expected = np.stack([H @ _flat(v) for v in vs])
    np.testing.assert_allclose(np.stack([_flat(h) for h in loop]), expected, rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(_rows(batched), expected, rtol=1e-4, atol=1e-5)


def test_hvp_is_the_code_sophias_hutchinson_uses():
    assert curvature._as_varying is _hvp.as_varying
    # Hutchinson's ĥ with Rademacher u is u ⊙ hvp(u): recompute it from gradkit.hvp.
    est = gradkit.hutchinson_diag_hessian(key=3)
    h, _ = est.update(PARAMS, est.init(PARAMS), PARAMS, obj_fn=lambda p: _loss(p, X, Y))
    sub = jax.random.split(jax.random.PRNGKey(3))[1]
    u = optax.tree.random_like(sub, PARAMS, jax.random.rademacher, dtype=jnp.float32)
    expected = jax.tree.map(jnp.multiply, u, gradkit.hvp(_loss, PARAMS, u, X, Y))
    chex.assert_trees_all_close(h, expected, rtol=1e-6)


def test_hvp_rejects_mismatched_vector():
    with pytest.raises(ValueError, match="`v` must have the same pytree structure"):
        gradkit.hvp(_loss, PARAMS, {"w1": jnp.ones((3, 4))}, X, Y)
    bad = dict(PARAMS, b1=jnp.ones(5))
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        gradkit.hvp(_loss, PARAMS, bad, X, Y)


# --- Top eigenvalues --------------------------------------------------------------------


def test_lanczos_top_k_equals_eigh():
    vals, vecs = gradkit.hessian_top_eigenvalues(_loss, PARAMS, X, Y, k=4)
    np.testing.assert_allclose(vals, EVALS[::-1][:4], rtol=1e-4)
    rows = _rows(vecs)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-5)
    # Each Ritz vector is the exact eigenvector up to sign (the top gaps are > 0.1).
    np.testing.assert_allclose(np.abs(np.sum(rows * EVECS[:, ::-1][:, :4].T, axis=1)), 1.0,
                               atol=1e-3)


def test_lanczos_with_n_steps_gives_the_whole_spectrum():
    vals, vecs = gradkit.hessian_top_eigenvalues(_loss, PARAMS, X, Y, k=N, num_iterations=500)
    np.testing.assert_allclose(vals, EVALS[::-1], atol=1e-4 * np.abs(EVALS).max())
    rows = _rows(vecs)
    np.testing.assert_allclose(rows @ H @ rows.T, np.diag(vals), atol=1e-4)


def test_power_iteration_with_deflation_finds_largest_magnitudes():
    vals, vecs = gradkit.hessian_top_eigenvalues(_loss, PARAMS, X, Y, k=3, method="power",
                                                 tol=1e-9, num_iterations=3000)
    by_magnitude = EVALS[np.argsort(-np.abs(EVALS))][:3]
    np.testing.assert_allclose(vals, np.sort(by_magnitude)[::-1], rtol=1e-4)
    # The stopping rule is on λ (error ∝ the vector's error squared): vectors are looser.
    rows = _rows(vecs)
    np.testing.assert_allclose(rows @ H @ rows.T, np.diag(vals), atol=2e-2)


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
    eager = gradkit.hessian_top_eigenvalues(_loss, PARAMS, X, Y, **kwargs)
    jitted = jax.jit(functools.partial(gradkit.hessian_top_eigenvalues, _loss, **kwargs))(
        PARAMS, X, Y)
    chex.assert_trees_all_close(jitted, eager, rtol=1e-4, atol=1e-5)


def test_clear_errors():
    top = functools.partial(gradkit.hessian_top_eigenvalues, _loss, PARAMS, X, Y)
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
        gradkit.hessian_trace(_loss, PARAMS, X, Y, num_samples=1)
    with pytest.raises(ValueError, match="`learning_rate` must be in"):
        gradkit.edge_of_stability_threshold(0.0)
    with pytest.raises(ValueError, match="`b1` must be in"):
        gradkit.edge_of_stability_threshold(0.1, b1=1.0)


def test_non_finite_loss_gives_nan_not_an_error():
    bad = dict(PARAMS, b1=PARAMS["b1"].at[0].set(jnp.nan))
    vals, _ = gradkit.hessian_top_eigenvalues(_loss, bad, X, Y, k=4)
    assert np.isnan(vals).all()


def test_start_vector_is_used():
    # An exact eigenvector as v0: the Krylov space is one-dimensional, λ is exact.
    v0 = jax.flatten_util.ravel_pytree(PARAMS)[1](jnp.asarray(EVECS[:, -1], jnp.float32))
    vals, _ = gradkit.hessian_top_eigenvalues(_loss, PARAMS, X, Y, k=1, method="power",
                                              v0=v0, num_iterations=1)
    np.testing.assert_allclose(vals[0], EVALS[-1], rtol=1e-4)


# --- Preconditioned ---------------------------------------------------------------------


def test_preconditioned_eigenpairs_solve_generalised_problem():
    pvec = np.asarray(jnp.exp(jax.random.normal(jax.random.key(7), (N,))), np.float64)
    pre = ravel_pytree(PARAMS)[1](jnp.asarray(pvec, jnp.float32))
    s = H / np.sqrt(np.outer(pvec, pvec))  # P^{-1/2} H P^{-1/2}
    exact = np.linalg.eigvalsh(s)[::-1]
    vals, vecs = gradkit.hessian_top_eigenvalues(_loss, PARAMS, X, Y, k=2, preconditioner=pre)
    np.testing.assert_allclose(vals, exact[:2], rtol=1e-4)
    for lam, u in zip(np.asarray(vals), _rows(vecs), strict=True):  # H u = λ P u
        np.testing.assert_allclose(H @ u, lam * pvec * u, atol=1e-4 * abs(lam))


def test_adam_preconditioner_matches_optax_step():
    opt = optax.chain(optax.adam(1e-3, b1=0.8, b2=0.95), optax.add_decayed_weights(0.0))
    state = opt.init(PARAMS)
    for i in range(3):
        g = jax.grad(_loss)(jax.tree.map(lambda a, i=i: a + 0.1 * i, PARAMS), X, Y)
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
        gi = jax.grad(_loss)(jax.tree.map(lambda a, i=i: a + 0.1 * i, PARAMS), X, Y)
        step, s = sgd_like.update(gi, s, PARAMS)
    chex.assert_trees_all_close(jax.tree.map(lambda u: -u, step),
                                jax.tree.map(lambda m, p: m / p, adam_state.mu, pre), rtol=1e-5)
    with pytest.raises(ValueError, match="exactly one ScaleByAdamState"):
        gradkit.adam_preconditioner(optax.sgd(0.1).init(PARAMS))


def test_sophia_preconditioner_and_thresholds():
    opt = gradkit.sophia(1e-3, update_interval=1)
    state = opt.init(PARAMS)
    _, state = opt.update(jax.grad(_loss)(PARAMS, X, Y), state, PARAMS,
                          obj_fn=lambda p: _loss(p, X, Y))
    nu = optax.tree_utils.tree_get(state, "nu")
    chex.assert_trees_all_close(gradkit.sophia_preconditioner(state, gamma=0.01),
                                jax.tree.map(lambda h: jnp.maximum(0.01 * h, 1e-12), nu))
    assert gradkit.edge_of_stability_threshold(0.01) == pytest.approx(200.0)
    assert gradkit.edge_of_stability_threshold(0.01, b1=0.9) == pytest.approx(3800.0)


# --- Trace ---------------------------------------------------------------------------


@pytest.mark.parametrize("distribution", ["rademacher", "gaussian"])
def test_trace_within_three_standard_errors(distribution):
    est = gradkit.hessian_trace(_loss, PARAMS, X, Y, num_samples=300,
                                distribution=distribution, seed=1)
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
    sd = gradkit.hessian_spectral_density(_loss, PARAMS, X, Y, num_iterations=N,
                                          num_probes=2, grid_len=4000)
    np.testing.assert_allclose(np.sort(sd.nodes, axis=1), np.tile(EVALS, (2, 1)),
                               atol=1e-4 * np.abs(EVALS).max())
    np.testing.assert_allclose(np.sum(sd.weights, axis=1), 1.0, rtol=1e-5)
    assert np.trapezoid(sd.density, sd.grid) == pytest.approx(1.0, abs=1e-3)


def test_slq_density_matches_exact_histogram():
    # Order 8 < n = 22, 30 probes: the quadrature's CDF follows the exact eigenvalue CDF,
    # and its first 2m−1 moments are unbiased estimates of tr(Hʲ)/n.
    sd = gradkit.hessian_spectral_density(_loss, PARAMS, X, Y, num_iterations=8,
                                          num_probes=30, grid_len=3000, seed=2)
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


# --- Multi-device ----------------------------------------------------------------------


def _replicate(tree):
    return jax.tree.map(lambda a: jnp.broadcast_to(a, (N_DEV, *a.shape)), tree)


def test_pmap_hvp_and_eigenvalues_equal_single_device_on_global_batch():
    params, x, y = _problem(seed=1, batch=4 * N_DEV)
    v = jax.tree.map(lambda a: jnp.cos(jnp.arange(a.size, dtype=a.dtype)).reshape(a.shape),
                     params)
    expected_hv = gradkit.hvp(_loss, params, v, x, y)
    expected_sharpness = gradkit.sharpness(_loss, params, x, y, num_iterations=4)

    def local(p, v, xb, yb):
        hv = gradkit.hvp(_loss, p, v, xb, yb, axis_name="d")
        return hv, gradkit.sharpness(_loss, p, xb, yb, num_iterations=4, axis_name="d")

    hv, vals = jax.pmap(local, axis_name="d")(_replicate(params), _replicate(v),
                                             x.reshape(N_DEV, 4, -1), y.reshape(N_DEV, 4, -1))
    for i in (0, N_DEV - 1):
        chex.assert_trees_all_close(jax.tree.map(lambda a, i=i: a[i], hv), expected_hv,
                                    rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(vals[i], expected_sharpness, rtol=1e-4)
    # Without axis_name each device sees only its own shard's Hessian.
    per_device = jax.pmap(lambda p, v, xb, yb: gradkit.hvp(_loss, p, v, xb, yb))(
        _replicate(params), _replicate(v), x.reshape(N_DEV, 4, -1), y.reshape(N_DEV, 4, -1))
    assert float(jnp.max(jnp.abs(per_device["w2"][0] - expected_hv["w2"]))) > 1e-3


def test_shard_map_hvp_matches_single_device_and_is_replicated():
    params, x, y = _problem(seed=2, batch=2 * N_DEV)
    v = jax.tree.map(jnp.ones_like, params)
    mesh = Mesh(np.array(jax.devices()), ("d",))
    sharded = jax.jit(jax.shard_map(
        lambda p, v, xb, yb: gradkit.hvp(_loss, p, v, xb, yb, axis_name="d"),
        mesh=mesh, in_specs=(P(), P(), P("d"), P("d")), out_specs=P()))
    # out_specs=P(): shard_map's replication check proves every device holds the same HVP.
    chex.assert_trees_all_close(sharded(params, v, x, y), gradkit.hvp(_loss, params, v, x, y),
                                rtol=1e-5, atol=1e-6)


# --- Periodic hook ---------------------------------------------------------------------


def test_track_sharpness_measures_every_k_steps_and_keeps_inner_updates():
    scales = jnp.array([1.0, 3.0, 0.5])

    def quad(p):  # λ_max = 2·3·(1 + 0.1·p₀²)-ish: changes as p moves
        return jnp.sum(scales * p**2) * (1.0 + 0.05 * p[0] ** 2)

    inner = optax.sgd(0.05)
    opt = gradkit.track_sharpness(inner, every=3, num_iterations=3)
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
    with pytest.raises(ValueError, match="needs the keyword extra arg `obj_fn`"):
        opt.update(g, state, params)


def test_track_sharpness_preconditioned_with_adam():
    params, x, y = _problem(seed=3)
    inner = optax.adam(1e-2)
    opt = gradkit.track_sharpness(inner, every=2, num_iterations=N,
                                  preconditioner_fn=gradkit.adam_preconditioner)
    obj_fn = functools.partial(_loss, x=x, y=y)
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
            hp = _exact_hessian(_loss, params, x, y)
            pv = _flat(pre)
            exact = np.linalg.eigvalsh(hp / np.sqrt(np.outer(pv, pv)))[-1]
            np.testing.assert_allclose(state.preconditioned_sharpness, exact, rtol=1e-3)
        params = optax.apply_updates(params, updates)
