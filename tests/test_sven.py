# SPDX-License-Identifier: Apache-2.0
"""Sven (gradkit.scale_by_sven / gradkit.sven): pseudo-inverse step, truncation, devices."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradkit


def _problem(b, p, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jax.random.normal(k1, (b, p)), jax.random.normal(k2, (b,))


@pytest.mark.parametrize("b,p", [(6, 10), (10, 4)])
def test_full_rank_step_is_the_lstsq_minimum_norm_solution(b, p):
    m, r = _problem(b, p)
    opt = gradkit.scale_by_sven(k=min(b, p), rtol=0.0)
    delta, state = opt.update(jnp.zeros(p), opt.init(None), residuals=r, jacobian=m)
    want = np.linalg.lstsq(np.asarray(m, np.float64), np.asarray(r, np.float64), rcond=None)[0]
    np.testing.assert_allclose(delta, want, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(delta, jnp.linalg.lstsq(m, r)[0], rtol=2e-4, atol=2e-5)
    assert int(state.rank) == min(b, p)


def test_truncation_to_k_and_rtol_matches_numpy_svd():
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    v, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    sigma = np.array([10.0, 3.0, 1.0, 5e-3, 2e-5])
    m = (u * sigma) @ v[:, :5].T
    r = rng.normal(size=5)

    def reference(keep):
        return v[:, :keep] @ ((u[:, :keep].T @ r) / sigma[:keep])

    for k, rtol, keep in [(2, 1e-3, 2), (5, 1e-3, 3), (5, 1e-4, 4), (4, 0.0, 4)]:
        opt = gradkit.scale_by_sven(k=k, rtol=rtol)
        delta, state = opt.update(jnp.zeros(8), opt.init(None), residuals=jnp.asarray(r),
                                  jacobian=jnp.asarray(m))
        assert int(state.rank) == keep, (k, rtol)
        np.testing.assert_allclose(delta, reference(keep), rtol=5e-3, atol=1e-4)
    # σ ≤ 1e-10 is never inverted, even with rtol = 0: a tiny Jacobian gives a zero step.
    opt = gradkit.scale_by_sven(k=5, rtol=0.0)
    delta, state = opt.update(jnp.zeros(8), opt.init(None), residuals=jnp.asarray(r),
                              jacobian=jnp.asarray(m * 1e-12))
    assert int(state.rank) == 0
    np.testing.assert_array_equal(delta, 0.0)


def _linear_case(seed=0):
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(k1, (12, 3))
    y = jax.random.normal(k2, (12,))
    params = {"w": jax.random.normal(k3, (3,)), "c": jnp.zeros(())}
    losses = lambda p: (x @ p["w"] + p["c"] - y) ** 2  # noqa: E731
    return x, y, params, losses


def test_kappa_one_is_gauss_newton_one_step_to_least_squares():
    x, y, params, losses = _linear_case()
    opt = gradkit.sven(learning_rate=1.0, k=4, rtol=0.0, kappa=1.0)
    updates, _ = opt.update(params, opt.init(params), params, per_sample_loss_fn=losses)
    new = optax.apply_updates(params, updates)
    design = np.concatenate([np.asarray(x, np.float64), np.ones((12, 1))], axis=1)
    want = np.linalg.lstsq(design, np.asarray(y, np.float64), rcond=None)[0]
    np.testing.assert_allclose(np.append(new["w"], new["c"]), want, rtol=1e-3, atol=1e-4)


def test_loss_fn_path_equals_residual_and_jacobian_paths():
    _, _, params, losses = _linear_case(1)
    opt = gradkit.scale_by_sven(k=3)
    a, _ = opt.update(params, opt.init(params), params, per_sample_loss_fn=losses)
    jac = jax.jacrev(losses)(params)
    b, _ = opt.update(params, opt.init(params), params, residuals=losses(params), jacobian=jac)
    flat = jnp.concatenate([v.reshape(12, -1) for v in jax.tree.leaves(jac)], axis=1)
    c, _ = opt.update(params, opt.init(params), params, residuals=losses(params), jacobian=flat)
    chex.assert_trees_all_close(a, b, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(a, c, rtol=1e-5, atol=1e-6)
    # κ = 1: residuals √ℓ.
    half = gradkit.scale_by_sven(k=3, kappa=1.0)
    d, _ = half.update(params, half.init(params), params, per_sample_loss_fn=losses)
    sqrt_losses = lambda p: jnp.sqrt(losses(p))  # noqa: E731
    e, _ = opt.update(params, opt.init(params), params, per_sample_loss_fn=sqrt_losses)
    chex.assert_trees_all_close(d, e, rtol=1e-5, atol=1e-6)


def test_default_k_is_half_the_batch_and_jit_works():
    _, _, params, losses = _linear_case(2)
    opt = gradkit.sven(learning_rate=0.1)
    step = jax.jit(lambda p, s: opt.update(p, s, p, per_sample_loss_fn=losses))
    _, state = step(params, opt.init(params))
    assert int(state[0].rank) == 4  # min(B // 2 = 6, P = 4)


def test_eight_devices_equal_one_device():
    n = jax.device_count()
    m, r = _problem(2 * n, 20, seed=3)
    opt = gradkit.scale_by_sven(k=n, axis_name="i")
    state = opt.init(None)
    states = jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *x.shape)), state)
    out, _ = jax.pmap(lambda rr, mm, s: opt.update(jnp.zeros(20), s, residuals=rr,
                                                   jacobian=mm), axis_name="i")(
        r.reshape(n, 2), m.reshape(n, 2, 20), states)
    single = gradkit.scale_by_sven(k=n)
    want, _ = single.update(jnp.zeros(20), single.init(None), residuals=r, jacobian=m)
    np.testing.assert_allclose(out[0], want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[n - 1], want, rtol=1e-4, atol=1e-5)


def test_bf16_params_keep_dtype():
    _, _, params, losses = _linear_case(4)
    params = jax.tree.map(lambda x: x.astype(jnp.bfloat16), params)
    opt = gradkit.sven(learning_rate=0.1, k=4)
    updates, _ = opt.update(params, opt.init(params), params, per_sample_loss_fn=losses)
    chex.assert_trees_all_equal_dtypes(updates, params)


def test_errors():
    m, r = _problem(4, 6)
    opt = gradkit.scale_by_sven(k=5)
    with pytest.raises(ValueError, match="larger than the batch"):
        opt.update(jnp.zeros(6), opt.init(None), residuals=r, jacobian=m)
    with pytest.raises(ValueError, match="expected \\(B, P\\)"):
        gradkit.scale_by_sven(k=2).update(jnp.zeros(7), opt.init(None), residuals=r,
                                          jacobian=m)
    with pytest.raises(ValueError, match="residuals"):
        gradkit.scale_by_sven(k=2).update(jnp.zeros(6), opt.init(None))
    with pytest.raises(ValueError, match="mismatched sample axes"):
        gradkit.scale_by_sven(k=2).update({"a": jnp.zeros(2), "b": jnp.zeros(3)},
                                          opt.init(None), residuals=r,
                                          jacobian={"a": jnp.zeros((4, 2)),
                                                    "b": jnp.zeros((3, 3))})
    with pytest.raises(TypeError, match="static Python int"):
        gradkit.scale_by_sven(k=jnp.asarray(3))
    with pytest.raises(ValueError, match="`k`"):
        gradkit.scale_by_sven(k=0)
    with pytest.raises(ValueError, match="rtol"):
        gradkit.scale_by_sven(rtol=1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        gradkit.sven(learning_rate=-1.0)
