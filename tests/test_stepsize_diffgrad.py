# SPDX-License-Identifier: Apache-2.0
"""diffGrad: float64 transcription of the official diffGrad_v2.py, closed form, 1-D toy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradkit


def _diffgrad_v2_numpy(p0, grads_fn, steps, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0,
                       aliased_prev=False):
    """float64 transcription of shivram1987/diffGrad ``diffGrad_v2.py`` ``step()``.

    ``aliased_prev``: the first ``diffGrad.py``, whose previous_grad *is* the gradient
    tensor from step 2 on (PyTorch reuses ``p.grad`` in place), so |g_prev − g| = 0.
    """
    p = np.array(p0, np.float64)
    m, v, prev = np.zeros_like(p), np.zeros_like(p), np.zeros_like(p)
    for t in range(1, steps + 1):
        g = np.array(grads_fn(p, t - 1), np.float64)
        if wd != 0:
            g = g + wd * p  # grad.add_(weight_decay, p.data): coupled L2
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        denom = np.sqrt(v) + eps
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        dfc = 1.0 / (1.0 + np.exp(-np.abs((g if aliased_prev and t > 1 else prev) - g)))
        prev = g.copy()
        step_size = lr * np.sqrt(bc2) / bc1
        p = p - step_size * (m * dfc) / denom
    return p


def _noisy_grads(p, step):
    rng = np.random.default_rng(step)
    return 0.5 * p + rng.normal(size=p.shape)


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_matches_float64_transcription_of_diffgrad_v2_over_100_steps(wd):
    p0 = np.random.default_rng(0).normal(size=(3, 4))
    expected = _diffgrad_v2_numpy(p0, _noisy_grads, 100, lr=1e-2, wd=wd)
    opt = gradkit.diffgrad(1e-2, weight_decay=wd, coupled_weight_decay=True)
    params = jnp.asarray(p0, jnp.float32)
    state = opt.init(params)
    update = jax.jit(opt.update)
    for step in range(100):
        g = jnp.asarray(_noisy_grads(np.asarray(params, np.float64), step), jnp.float32)
        updates, state = update(g, state, params)
        params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(np.asarray(params), expected, rtol=2e-4, atol=2e-5)
    # The first official version (ξ ≡ 1/2 after step 1) is far outside that tolerance.
    buggy = _diffgrad_v2_numpy(p0, _noisy_grads, 100, lr=1e-2, wd=wd, aliased_prev=True)
    assert np.abs(buggy - expected).max() > 100 * 2e-4


def test_first_two_steps_closed_form():
    b1, b2, eps = 0.9, 0.999, 1e-8
    g1, g2 = np.array([2.0, -0.5]), np.array([1.0, 3.0])
    opt = gradkit.scale_by_diffgrad()
    state = opt.init(jnp.zeros(2))
    u1, state = opt.update(jnp.asarray(g1, jnp.float32), state)
    xi1 = 1 / (1 + np.exp(-np.abs(g1)))
    m, v = (1 - b1) * g1, (1 - b2) * g1**2
    want1 = np.sqrt(1 - b2) / (1 - b1) * xi1 * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(u1, want1, rtol=2e-5)
    u2, state = opt.update(jnp.asarray(g2, jnp.float32), state)
    xi2 = 1 / (1 + np.exp(-np.abs(g1 - g2)))
    m, v = b1 * m + (1 - b1) * g2, b2 * v + (1 - b2) * g2**2
    want2 = np.sqrt(1 - b2**2) / (1 - b1**2) * xi2 * m / (np.sqrt(v) + eps)
    np.testing.assert_allclose(u2, want2, rtol=2e-5)
    np.testing.assert_array_equal(state.prev_grad, g2.astype(np.float32))


def test_constant_gradient_is_adam_at_half_the_step_after_step_one():
    # ξ = sigmoid(0) = 1/2 once g stops changing: what the first official diffGrad.py did
    # at *every* step (its previous_grad aliased the gradient tensor).
    g = jnp.array([0.3, -2.0])
    dg, adam = gradkit.scale_by_diffgrad(eps=0.0), optax.scale_by_adam(eps=0.0)
    s_dg, s_adam = dg.init(g), adam.init(g)
    for step in range(4):
        u_dg, s_dg = dg.update(g, s_dg)
        u_adam, s_adam = adam.update(g, s_adam)
        if step > 0:
            np.testing.assert_allclose(u_dg, 0.5 * u_adam, rtol=2e-5)


def _toy_grad(x):
    return jnp.where(x <= 0, 2 * x + 0.6, 2 * x - 0.4)


def _toy_final_x(opt, steps=299):
    """The repo's diffGrad_analytical.ipynb: x0 = −1, 300 iterates (299 updates)."""

    def body(carry, _):
        x, state = carry
        updates, state = opt.update(_toy_grad(x), state, x)
        return (x + updates, state), None

    x0 = jnp.asarray(-1.0)
    (x, _), _ = jax.lax.scan(body, (x0, opt.init(x0)), length=steps)
    return float(x)


def test_one_dimensional_toy_global_minimum_and_half_lr_adam_control():
    # f' = 2x + 0.6 (x ≤ 0) | 2x − 0.4 (x > 0): minima −0.3 (f = −0.09, global) and
    # 0.2 (f = −0.04). lr 0.1, β1 0.95 as in the official notebook.
    diffgrad = _toy_final_x(gradkit.diffgrad(0.1, b1=0.95))
    adam = _toy_final_x(optax.adam(0.1, b1=0.95))
    adam_half = _toy_final_x(optax.adam(0.05, b1=0.95))
    assert abs(diffgrad - (-0.3)) < 0.01, diffgrad
    assert abs(adam - 0.2) < 0.01, adam  # Adam overshoots into the local minimum
    assert abs(adam_half - (-0.3)) < 0.01, adam_half  # ... but at half the lr it does not


@pytest.mark.parametrize("kwargs, name", [
    (dict(learning_rate=1e-3, b1=1.0), "b1"),
    (dict(learning_rate=1e-3, b2=-0.1), "b2"),
    (dict(learning_rate=1e-3, eps=-1.0), "eps"),
    (dict(learning_rate=-1e-3), "learning_rate"),
    (dict(learning_rate=1e-3, weight_decay=-1.0), "weight_decay"),
])
def test_bad_hyperparameters_raise_naming_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        gradkit.diffgrad(**kwargs)


def test_mismatched_updates_raise():
    opt = gradkit.scale_by_diffgrad()
    state = opt.init({"a": jnp.zeros(2)})
    with pytest.raises(ValueError, match="pytree structure"):
        opt.update({"b": jnp.zeros(2)}, state)


def test_nan_gradient_propagates_to_that_coordinate_only():
    opt = gradkit.scale_by_diffgrad()
    state = opt.init(jnp.zeros(3))
    u, _ = opt.update(jnp.array([1.0, jnp.nan, -1.0]), state)
    u = np.asarray(u)
    assert np.isnan(u[1]) and np.isfinite(u[[0, 2]]).all()
