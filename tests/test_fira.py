# SPDX-License-Identifier: Apache-2.0
"""Fira and the norm-growth limiter: float64 reference, closed forms, bad input."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradkit
from gradkit.memory import _subspace
from tests import helpers

LR, WD, ALPHA, GAMMA = 1e-2, 0.0, 0.25, 1.01
B1, B2, EPS = 0.9, 0.999, 1e-6
T, STEPS, RANK = 16, 35, 2
SHAPES = {"tall": (7, 4), "wide": (3, 6), "square": (5, 5)}


def _ref_fira(params, grads, projectors):
    """Official ``fira_adamw.AdamW.step`` + ``GradientProjector('std')`` in float64.

    Moments survive a projector change, so the result depends on the signs LAPACK gives
    the singular vectors: the reference takes the run's own projectors
    (``projectors[j]`` at refresh j) after checking that they span the same top-r
    singular subspace as float64 NumPy's, up to the sign of each vector.
    """
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    st = {k: {} for k in p}
    for step, g32 in enumerate(grads):
        for n in p:
            g = np.asarray(g32[n], np.float64)
            s = st[n]
            right = g.shape[0] >= g.shape[1]
            if step % T == 0:
                u, _, vh = np.linalg.svd(g, full_matrices=False)
                ours = np.asarray(projectors[step // T][n], np.float64)
                theirs = vh[:RANK].T if right else u[:, :RANK]
                np.testing.assert_allclose(np.abs(ours.T @ theirs), np.eye(RANK), atol=1e-4)
                s["q"] = ours.T if right else ours
            low = g @ s["q"].T if right else s["q"].T @ g
            if "m" not in s:
                s["m"], s["v"] = np.zeros_like(low), np.zeros_like(low)
            t = step + 1
            s["m"] = B1 * s["m"] + (1 - B1) * low
            s["v"] = B2 * s["v"] + (1 - B2) * low * low
            step_size = LR * np.sqrt(1 - B2**t) / (1 - B1**t)
            psi = s["m"] / (np.sqrt(s["v"]) + EPS)

            def back(x, s=s, right=right):
                return ALPHA * (x @ s["q"] if right else s["q"] @ x)

            norm_dim = 0 if psi.shape[0] < psi.shape[1] else 1
            phi = (np.linalg.norm(psi, axis=norm_dim) / (np.linalg.norm(low, axis=norm_dim) + 1e-8))
            phi = phi[:, None] if norm_dim == 1 else phi[None, :]
            scaled = (g - back(low)) * phi
            if "s" in s:
                norm = np.linalg.norm(scaled)
                limiter = max(norm / (s["s"] + 1e-8), GAMMA) / GAMMA
                scaled = scaled / limiter
                s["s"] = norm / limiter
            else:
                s["s"] = np.linalg.norm(scaled)
            p[n] = p[n] - step_size * (back(psi) + scaled)
    return p


def _data(seed=0):
    rng = np.random.default_rng(seed)
    params = {k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}
    # Gradients whose scale jumps (×4 at step 10, ×0.2 at step 20): the limiter acts.
    scale = [1.0] * 10 + [4.0] * 10 + [0.2] * (STEPS - 20)
    grads = [{k: (c * rng.standard_normal(s)).astype(np.float32) for k, s in SHAPES.items()}
             for c in scale]
    return params, grads


def test_fira_matches_float64_reference_over_refreshes():
    params, grads = _data()
    opt = gradkit.fira(LR, rank=RANK, update_interval=T, scale=ALPHA, b1=B1, b2=B2, eps=EPS,
                       weight_decay=WD, gamma=GAMMA)
    state = opt.init(params)
    update = jax.jit(opt.update)
    p = params
    limited = 0
    projectors = []
    for step, g in enumerate(grads):
        prev = state.inner_states["fira"].inner_state[0].residual_norm
        u, state = update(g, state, p)
        p = optax.apply_updates(p, u)
        now = state.inner_states["fira"].inner_state[0].residual_norm
        if step % T == 0:
            projectors.append(state.inner_states["fira"].inner_state[0].projector)
        limited += sum(float(now[k]) <= GAMMA * float(prev[k]) * (1 + 1e-6) + 1e-8
                       for k in SHAPES if float(prev[k]) > 0)
    expected = _ref_fira(params, grads, projectors)
    chex.assert_trees_all_close(p, expected, rtol=3e-5, atol=3e-5)
    assert limited == len(SHAPES) * (STEPS - 1)  # the bound held at every later step


def test_scaling_factor_is_per_row_for_tall_and_per_column_for_wide():
    # rank = min(m, n): the projection keeps all of G, so the residual is (1 − α)G. At
    # step 1, ψ = (1−β₁)/√(1−β₂)·sign(R) (ε → 0), which the bias correction
    # √(1−β₂)/(1−β₁) cancels: u = α·B(sign R) + φ(1−α)G with φ = ‖sign R‖/‖R‖ per row
    # (tall) or per column (wide).
    g = {"tall": jnp.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]]),
         "wide": jnp.array([[1.0, 0.0, 3.0], [0.0, 2.0, 0.0]])}
    opt = gradkit.scale_by_fira(rank=2, scale=0.5, eps=1e-12)
    u, state = jax.jit(opt.update)(g, opt.init(g))
    # rows of tall G: R = G Q keeps each row's norm; ψ = sign(R) entrywise, so
    # φ_i = ‖sign(R_i)‖/‖R_i‖ = √(nnz of R_i)/‖G_i‖ — check against the update itself.
    for name, axis in (("tall", 1), ("wide", 0)):
        q = np.asarray(state.projector[name], np.float64)
        gg = np.asarray(g[name], np.float64)
        low = gg @ q if axis == 1 else q.T @ gg
        psi = np.sign(low)
        phi = np.linalg.norm(psi, axis=axis, keepdims=True) / np.linalg.norm(low, axis=axis,
                                                                            keepdims=True)
        back = 0.5 * (psi @ q.T if axis == 1 else q @ psi)
        expected = back + phi * (1 - 0.5) * gg
        np.testing.assert_allclose(u[name], expected, rtol=1e-5, atol=1e-6)
    assert state.mu["tall"].shape == (3, 2) and state.mu["wide"].shape == (2, 3)


def test_limiter_closed_form():
    opt = gradkit.limit_norm_growth(gamma=1.5)
    u1 = {"a": jnp.array([3.0, 4.0]), "b": jnp.array([1.0])}  # norms 5, 1
    state = opt.init(u1)
    out, state = opt.update(u1, state)
    chex.assert_trees_all_equal(out, u1)  # first step passes unchanged
    np.testing.assert_allclose([state.norms["a"], state.norms["b"]], [5.0, 1.0])
    u2 = {"a": jnp.array([30.0, 40.0]), "b": jnp.array([-1.2])}  # ×10 (capped), ×1.2 (kept)
    out, state = opt.update(u2, state)
    cap = 1.5 * (5.0 + 1e-8)
    np.testing.assert_allclose(out["a"], np.array([0.6, 0.8]) * cap, rtol=1e-6)
    np.testing.assert_allclose(out["b"], [-1.2], rtol=1e-7)
    np.testing.assert_allclose(state.norms["a"], cap, rtol=1e-6)
    u3 = {"a": jnp.array([0.3, 0.4]), "b": jnp.array([0.0])}  # shrinking is free
    out, state = opt.update(u3, state)
    chex.assert_trees_all_close(out, u3)
    np.testing.assert_allclose(state.norms["b"], 0.0)


def test_limiter_bounds_growth_inside_any_chain():
    opt = optax.chain(optax.sgd(1.0), gradkit.limit_norm_growth())
    x = {"w": jnp.ones(3)}
    state = opt.init(x)
    norms = []
    for c in (1.0, 100.0, 100.0, 100.0):
        u, state = opt.update({"w": c * jnp.ones(3)}, state)
        norms.append(float(jnp.linalg.norm(u["w"])))
    np.testing.assert_allclose(norms, np.sqrt(3) * np.array([1.0, 1.01, 1.01**2, 1.01**3]),
                               rtol=1e-5)


@pytest.mark.parametrize("kwargs,name", [
    (dict(rank=0), "rank"), (dict(rank=2.5), "rank"), (dict(update_interval=0), "update_interval"),
    (dict(scale=0.0), "scale"), (dict(b1=1.0), "b1"), (dict(eps=-1.0), "eps"),
    (dict(gamma=0.99), "gamma")])
def test_bad_hyperparameters_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        gradkit.scale_by_fira(**kwargs)


def test_bad_gamma_and_lr_raise():
    with pytest.raises(ValueError, match="gamma"):
        gradkit.limit_norm_growth(gamma=0.5)
    for lr in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="learning_rate"):
            gradkit.fira(lr)


def test_rank_above_matrix_size_and_non_matrix_raise():
    with pytest.raises(ValueError, match=r"rank.*min\(4, 3\)"):
        gradkit.scale_by_fira(rank=4).init({"w": jnp.zeros((4, 3))})
    with pytest.raises(ValueError, match=r"params.*2-D"):
        gradkit.scale_by_fira(rank=1).init({"v": jnp.zeros(3)})
    # the alias routes vectors to AdamW and accepts them
    gradkit.fira(1e-2, rank=1).init({"v": jnp.zeros(3), "w": jnp.zeros((4, 3))})


def test_limiter_nan_update_gives_nan_as_documented():
    opt = gradkit.limit_norm_growth()
    state = opt.init({"a": jnp.ones(2)})
    _, state = opt.update({"a": jnp.ones(2)}, state)
    out, state = opt.update({"a": jnp.array([jnp.nan, 1.0])}, state)
    assert bool(jnp.all(jnp.isnan(out["a"]))) and bool(jnp.isnan(state.norms["a"]))


def test_jitted_step_can_donate_params_and_state():
    # m and v are separate buffers, so XLA may reuse both in place.
    params = {"tall": jnp.ones((6, 4)), "wide": jnp.ones((3, 5)), "bias": jnp.zeros(4)}
    p = helpers.run_donating_steps(gradkit.fira(1e-2, rank=2), params)
    assert bool(jnp.all(jnp.isfinite(p["tall"])))


def test_moment_dtypes():
    params = {"w": jnp.ones((6, 4), jnp.bfloat16)}
    state = gradkit.scale_by_fira(rank=2).init(params)
    assert state.mu["w"].dtype == jnp.bfloat16 and state.nu["w"].dtype == jnp.float32
    state = gradkit.scale_by_fira(rank=2, mu_dtype=jnp.float32, nu_dtype=jnp.bfloat16).init(
        params)
    assert state.mu["w"].dtype == jnp.float32 and state.nu["w"].dtype == jnp.bfloat16
    with pytest.raises(TypeError, match="nu_dtype"):
        gradkit.scale_by_fira(nu_dtype=jnp.int8)


@pytest.mark.parametrize("m,n,r,low_rank", [
    (64, 32, 8, False), (32, 96, 8, False), (200, 50, 12, False), (50, 300, 20, False),
    (64, 32, 8, True), (32, 96, 8, True), (300, 120, 30, True)])
def test_projector_spans_the_top_singular_subspace(m, n, r, low_rank):
    # The FRUGAL/Fira projector (eigenvectors of the small Gram matrix) against a float64
    # SVD: ‖QQᵀ − VVᵀ‖₂ ≤ 10⁻⁶·σ₁²/(σ_r² − σ_{r+1}²), float32 rounding over the gap.
    rng = np.random.default_rng(m * n + r)
    g = rng.standard_normal((m, n))
    if low_rank:
        g = 3.0 * rng.standard_normal((m, r)) @ rng.standard_normal((r, n)) + 0.1 * g
    right = m >= n
    u, s, vh = np.linalg.svd(g)
    ref = vh[:r].T if right else u[:, :r]
    q = np.asarray(_subspace.top_singular_vectors(jnp.asarray(g, jnp.float32), r, right),
                   np.float64)
    assert q.shape == ((n if right else m), r)
    np.testing.assert_allclose(q.T @ q, np.eye(r), atol=1e-5)
    bound = 1e-6 * s[0] ** 2 / (s[r - 1] ** 2 - s[r] ** 2)
    assert np.linalg.norm(q @ q.T - ref @ ref.T, 2) <= bound
