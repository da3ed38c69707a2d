# SPDX-License-Identifier: Apache-2.0
"""ReSTE (gradkit.layers): backward formula at grid points, STE limit, schedule, modules."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import gradkit
from gradkit import layers

GRID = np.array([0.0, 0.05, -0.05, 0.1, -0.1, 0.1001, 0.2, -0.3, 0.5, 1.0, -1.0, 1.2, 1.5,
                 -1.5, 1.5001, 2.0, -3.0], np.float32)


def _expected_slope(x, o, t=1.5, interval=0.1):
    """Hand transcription of the rectified backward: region tests in float32 (as the official
    torch code compares a float32 tensor with a Python float), values in float64."""
    out = []
    for v in np.asarray(x, np.float32):
        a = abs(v)
        if a <= np.float32(interval):
            out.append(interval ** (1.0 / o - 1.0))
        elif a <= np.float32(t):
            out.append((1.0 / o) * float(a) ** (1.0 / o - 1.0))
        else:
            out.append(0.0)
    return np.array(out)


def _slope(x, o, **kw):
    return jax.jit(jax.grad(lambda x, o: jnp.sum(gradkit.reste_sign(x, o, **kw))))(x, o)


@pytest.mark.parametrize("o", [1.0, 1.5, 2.0, 3.0])
def test_backward_equals_the_formula_at_grid_points(o):
    got = _slope(jnp.asarray(GRID), o)
    np.testing.assert_allclose(got, _expected_slope(GRID, o), rtol=1e-6)
    # Spot values by hand: o = 2 at x = 0.25 gives ½·0.25^(−½) = 1; near 0: 0.1^(−½).
    if o == 2.0:
        np.testing.assert_allclose(_slope(jnp.array([0.25, 0.0]), o), [1.0, 0.1**-0.5],
                                   rtol=1e-6)


def test_forward_is_sign_and_upstream_gradient_is_multiplied():
    x = jnp.asarray(GRID)
    np.testing.assert_array_equal(gradkit.reste_sign(x, 2.0), np.sign(GRID))
    up = jnp.linspace(-2.0, 2.0, GRID.size)
    _, vjp = jax.vjp(lambda x: gradkit.reste_sign(x, 2.0), x)
    np.testing.assert_allclose(vjp(up)[0], _expected_slope(GRID, 2.0) * np.asarray(up),
                               rtol=1e-6)


def test_o_equal_one_is_the_clipped_ste():
    x = jnp.asarray(GRID)
    np.testing.assert_array_equal(_slope(x, 1.0), (np.abs(GRID) <= 1.5).astype(np.float32))
    # BinaryConnect / the official STE clip at 1.
    np.testing.assert_array_equal(_slope(x, 1.0, t=1.0), (np.abs(GRID) <= 1.0).astype(np.float32))


def test_o_is_traceable_and_gets_no_gradient_and_vmap_pmap_agree():
    x = jnp.asarray(GRID)
    os_ = jnp.array([1.0, 2.0, 3.0])
    per_o = jax.vmap(lambda o: _slope(x, o))(os_)
    for i, o in enumerate([1.0, 2.0, 3.0]):
        np.testing.assert_allclose(per_o[i], _expected_slope(GRID, o), rtol=1e-6)
    do = jax.grad(lambda o: jnp.sum(gradkit.reste_sign(x, o)), argnums=0)(2.0)
    assert do == 0.0
    devices = jax.device_count()
    xs = jnp.asarray(np.resize(GRID, (devices, 4)))
    pm = jax.pmap(lambda x: jax.grad(lambda x: jnp.sum(gradkit.reste_sign(x, 2.0)))(x))(xs)
    np.testing.assert_allclose(pm.ravel(), _expected_slope(np.asarray(xs).ravel(), 2.0),
                               rtol=1e-6)


def test_non_finite_inputs():
    x = jnp.array([jnp.nan, jnp.inf, -jnp.inf])
    y = gradkit.reste_sign(x, 2.0)
    assert np.isnan(y[0]) and y[1] == 1 and y[2] == -1
    np.testing.assert_array_equal(_slope(x, 2.0), [0.0, 0.0, 0.0])


def test_o_schedule_rises_from_one_to_o_end():
    e = jnp.array([0.0, 50.0, 100.0])
    np.testing.assert_allclose(gradkit.reste_o_schedule(e, 100),
                               [1.0, 1.0 + 2.0 * (1.0 - math.cos(math.pi / 4)), 3.0], rtol=1e-6)
    np.testing.assert_allclose(gradkit.reste_o_schedule(10, 10, o_end=2.0), 2.0, rtol=1e-6)


def test_indicators_trade_fitting_error_against_gradient_stability():
    w = jax.random.uniform(jax.random.key(0), (4096,), minval=-1.5, maxval=1.5)
    os_ = [1.0, 1.5, 2.0, 3.0, 5.0]
    fit = [float(gradkit.reste_fitting_error(w, o)) for o in os_]
    inst = [float(gradkit.reste_gradient_instability(_slope(w, o))) for o in os_]
    assert all(a > b for a, b in itertools.pairwise(fit))  # closer to sign
    assert all(a < b for a, b in itertools.pairwise(inst))  # less stable
    np.testing.assert_allclose(
        fit[0], np.linalg.norm(np.asarray(w) - np.sign(np.asarray(w))), rtol=1e-5)
    np.testing.assert_allclose(gradkit.reste_gradient_instability(jnp.array([1.0, -3.0])),
                               2.0, rtol=1e-6)  # Var(|g|) of (1, 3), unbiased


@pytest.mark.parametrize("kwargs,name", [
    ({"o": 0.5}, "`o`"), ({"o": 2.0, "t": 0.0}, "`t`"), ({"o": 2.0, "interval": 0.0},
                                                        "`interval`"),
    ({"o": 2.0, "t": 1.0, "interval": 1.2}, "`interval`")])
def test_bad_arguments_are_rejected_naming_them(kwargs, name):
    with pytest.raises(ValueError, match=name):
        gradkit.reste_sign(jnp.ones(3), **kwargs)


def test_bad_schedule_and_estimator_arguments():
    with pytest.raises(ValueError, match="`o_end`"):
        gradkit.reste_o_schedule(1, 10, o_end=0.5)
    with pytest.raises(ValueError, match="`num_epochs`"):
        gradkit.reste_o_schedule(1, 0)
    with pytest.raises(ValueError, match="`estimator`"):
        layers.BinaryDense(3, estimator="xnor").init(jax.random.key(0), jnp.ones((2, 4)))
    with pytest.raises(ValueError, match="`estimator`"):
        layers.nnx.BinaryDense(4, 3, estimator="xnor", rngs=nnx.Rngs(0))


def test_binary_dense_forward_and_kernel_gradient_by_hand():
    """y = sign(x) @ (sign(W)·a) + b, a = mean|W|; ∂L/∂W = s(W)⊙M·a + Σ(M⊙sign W)·sign(W)/N
    with M = sign(x)ᵀG and s the ReSTE slope (the scale a is differentiated too)."""
    x = jax.random.normal(jax.random.key(0), (6, 5))
    module = layers.BinaryDense(3)
    params = module.init(jax.random.key(1), x)["params"]
    g = jax.random.normal(jax.random.key(2), (6, 3))
    o = 2.0

    @jax.jit
    def run(params):
        y, vjp = jax.vjp(lambda p: module.apply({"params": p}, x, o), params)
        return y, vjp(g)[0]

    y, grads = run(params)
    w = np.asarray(params["kernel"], np.float64)
    xs, a = np.sign(np.asarray(x)), np.abs(w).mean()
    np.testing.assert_allclose(y, xs @ (np.sign(w) * a) + np.asarray(params["bias"]), rtol=1e-5,
                               atol=1e-6)
    m = xs.T @ np.asarray(g)
    slope = _expected_slope(w.ravel(), o).reshape(w.shape)
    want = slope * m * a + np.sum(m * np.sign(w)) * np.sign(w) / w.size
    np.testing.assert_allclose(grads["kernel"], want, rtol=1e-5, atol=1e-6)


def test_ste_estimator_is_reste_at_o_one_clipped_at_one():
    x = 1.3 * jax.random.normal(jax.random.key(0), (4, 6))
    ste, clipped = layers.BinaryDense(3, estimator="ste"), layers.BinaryDense(3, t=1.0, t_a=1.0)
    v = jax.tree.map(lambda p: 1.3 * p, ste.init(jax.random.key(1), x))  # some |w| > 1

    def grads(module, o):
        return jax.jit(jax.grad(lambda v, x: jnp.sum(jnp.sin(module.apply(v, x, o))),
                                argnums=(0, 1)))(v, x)

    got, want = grads(ste, 3.0), grads(clipped, 1.0)  # the STE ignores o
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), got, want)
    assert not np.allclose(grads(layers.BinaryDense(3), 1.0)[1], want[1])  # t = 1.5 differs


@pytest.mark.parametrize("kind", ["dense", "conv"])
def test_linen_and_nnx_binary_layers_are_equal(kind):
    if kind == "dense":
        x = jax.random.normal(jax.random.key(0), (4, 6))
        linen = layers.BinaryDense(3)
        mod = layers.nnx.BinaryDense(6, 3, rngs=nnx.Rngs(0))
    else:
        x = jax.random.normal(jax.random.key(0), (2, 5, 5, 2))
        linen = layers.BinaryConv(3, 3, strides=2)
        mod = layers.nnx.BinaryConv(2, 3, (3, 3), 2, rngs=nnx.Rngs(0))
    params = linen.init(jax.random.key(1), x)["params"]
    for name, value in params.items():
        getattr(mod, name)[...] = value
    o = 1.7

    def loss_linen(p):
        return jnp.sum(jnp.sin(linen.apply({"params": p}, x, o)))

    want_y = linen.apply({"params": params}, x, o)
    want_g = jax.jit(jax.grad(loss_linen))(params)
    np.testing.assert_allclose(mod(x, o), want_y, rtol=1e-6, atol=1e-6)
    got = nnx.jit(nnx.grad(lambda m: jnp.sum(jnp.sin(m(x, o)))))(mod)
    for name in params:
        np.testing.assert_allclose(getattr(got, name)[...], want_g[name], rtol=1e-5, atol=1e-6)
