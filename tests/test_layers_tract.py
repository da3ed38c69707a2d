# SPDX-License-Identifier: Apache-2.0
"""TrAct (gradkit.layers): closed-form kernel gradients, invariances, jit/vmap/pmap, modules."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import gradkit
from gradkit import layers

LAM = 0.1


def _rand(seed, shape, scale=1.0):
    return scale * jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def _paper_grad(x, g, lam):
    """Gᵀ X (XᵀX/b + λI)⁻¹ (paper's (m, n) layout) with an explicit float64 inverse."""
    x = np.asarray(x, np.float64)
    g = np.asarray(g, np.float64)
    b, n = x.shape
    return g.T @ x @ np.linalg.inv(x.T @ x / b + lam * np.eye(n))


def _forward_and_grads(fn, x, kernel, bias, g):
    """fn(x, kernel, bias) and the gradients of ⟨fn(...), g⟩ w.r.t. (x, kernel, bias), jitted."""

    @jax.jit
    def run(x, kernel, bias, g):
        y, vjp = jax.vjp(fn, x, kernel, bias)
        return y, vjp(g)

    return run(x, kernel, bias, g)


@pytest.mark.parametrize("lead,n", [((5,), 12), ((3, 4), 5), ((7,), 7)],
                         ids=["woodbury_b<n", "b>n_leading_axes_flattened", "b=n"])
def test_dense_kernel_gradient_is_the_closed_form_and_the_rest_is_plain(lead, n):
    m = 3
    x, kernel, bias, g = (_rand(0, (*lead, n)), _rand(1, (n, m)), _rand(2, (m,)),
                          _rand(3, (*lead, m)))
    y, (gx, gk, gb) = _forward_and_grads(
        lambda x, k, bb: gradkit.tract_dense(x, k, bb, lam=LAM), x, kernel, bias, g)
    np.testing.assert_allclose(gk.T, _paper_grad(x.reshape(-1, n), g.reshape(-1, m), LAM),
                               rtol=2e-4, atol=2e-5)
    py, (px, pk, pb) = _forward_and_grads(lambda x, k, bb: x @ k + bb, x, kernel, bias, g)
    np.testing.assert_allclose(gx, px, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gb, pb, rtol=1e-6)
    np.testing.assert_allclose(y, py, rtol=1e-5, atol=1e-6)
    assert not np.allclose(gk, pk, rtol=1e-2)  # the rule really changes the kernel gradient


def _im2col(x, kh, kw, stride, pad):
    """NumPy unfold: rows (n, oh, ow), columns (kh, kw, c) in C order."""
    x = np.pad(np.asarray(x, np.float64), ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    n, h, w, _c = x.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    rows = [x[i, r * stride:r * stride + kh, s * stride:s * stride + kw, :].ravel()
            for i in range(n) for r in range(oh) for s in range(ow)]
    return np.stack(rows), (n, oh, ow)


@pytest.mark.parametrize("batch,size,stride,pad", [(1, 4, 2, 0), (2, 6, 1, 1)],
                         ids=["woodbury_b<n", "b>n"])
def test_conv_kernel_gradient_is_the_closed_form_over_unfolded_patches(batch, size, stride, pad):
    c, f, k = 3, 4, 3
    x, kernel, bias = _rand(0, (batch, size, size, c)), _rand(1, (k, k, c, f)), _rand(2, (f,))
    cols, (nn_, oh, ow) = _im2col(x, k, k, stride, pad)
    assert (cols.shape[0] < cols.shape[1]) == (batch == 1)  # both branches covered
    g = _rand(3, (nn_, oh, ow, f))

    def tract(x, kk, bb):
        return gradkit.tract_conv(x, kk, bb, strides=stride, padding=pad, lam=LAM)

    def plain(x, kk, bb):
        return jax.lax.conv_general_dilated(x, kk, (stride, stride), [(pad, pad)] * 2,
                                            dimension_numbers=("NHWC", "HWIO", "NHWC")) + bb

    y, (gx, gk, gb) = _forward_and_grads(tract, x, kernel, bias, g)
    want = _paper_grad(cols, np.asarray(g).reshape(-1, f), LAM).T.reshape(kernel.shape)
    np.testing.assert_allclose(gk, want, rtol=5e-4, atol=5e-5)
    py, (px, _, pb) = _forward_and_grads(plain, x, kernel, bias, g)
    np.testing.assert_allclose(y, py, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gx, px, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gb, pb, rtol=1e-5)


@pytest.mark.parametrize("b,n", [(6, 16), (24, 8)], ids=["b<n", "b>n"])
def test_preactivation_step_is_scale_invariant_and_equals_minus_lr_b_g(b, n):
    """ΔZ = −η X ∇_W: as λ → 0 it is invariant to X → cX (plain SGD's ΔZ = −η XXᵀG scales
    with c²), and for b ≤ n it is −η·b·G. In float64, λ = 1e-9."""
    lr, lam = 0.01, 1e-9
    with jax.enable_x64(True):
        x = np.asarray(_rand(0, (b, n)), np.float64)
        g = np.asarray(_rand(1, (b, 3)), np.float64)
        kernel = jnp.zeros((n, 3), jnp.float64)

        @jax.jit
        def delta_z(x):
            tract = jax.grad(lambda k: jnp.sum(gradkit.tract_dense(x, k, lam=lam) * g))(kernel)
            sgd = jax.grad(lambda k: jnp.sum((x @ k) * g))(kernel)
            return -lr * x @ tract, -lr * x @ sgd

        tract, sgd = delta_z(x)
        for c in (0.1, 10.0):
            tract_c, sgd_c = delta_z(c * x)
            np.testing.assert_allclose(tract_c, tract, rtol=1e-4, atol=1e-9)
            np.testing.assert_allclose(sgd_c, c**2 * sgd, rtol=1e-10)
        if b <= n:
            np.testing.assert_allclose(tract, -lr * b * g, rtol=1e-6)
        else:  # b > n: the projection of −η·b·G onto the column space of X
            proj = x @ np.linalg.solve(x.T @ x, x.T @ g)
            np.testing.assert_allclose(tract, -lr * b * proj, rtol=1e-6, atol=1e-10)


def test_jit_and_vmap_agree_with_eager():
    x, kernel, g = _rand(0, (4, 5, 9)), _rand(1, (9, 2)), _rand(2, (4, 5, 2))

    def kgrad(x, g):
        return jax.grad(lambda k: jnp.sum(gradkit.tract_dense(x, k) * g))(kernel)

    # Each 5-row problem (5 < 9: the Woodbury branch) against its float64 closed form.
    want = np.stack([_paper_grad(x[i], g[i], LAM).T for i in range(4)])
    np.testing.assert_allclose(jax.vmap(kgrad)(x, g), want, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(jax.jit(jax.vmap(kgrad))(x, g), want, rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(jax.jit(kgrad)(x[1], g[1]), want[1], rtol=2e-4, atol=2e-5)
    # vmap gives each problem its own statistic, not the statistic of all 20 rows.
    assert not np.allclose(want.mean(0), _paper_grad(x.reshape(20, 9), g.reshape(20, 2),
                                                     LAM).T, atol=1e-3)


@pytest.mark.parametrize("rows_per_device,n", [(2, 24), (4, 6)], ids=["global_b<n", "global_b>n"])
def test_pmap_axis_name_gives_the_single_device_global_batch_gradient(rows_per_device, n):
    devices = jax.device_count()
    x = _rand(0, (devices, rows_per_device, n))
    y = _rand(1, (devices, rows_per_device, 3))
    kernel = _rand(2, (n, 3), 0.3)

    def loss(k, x, y, axis_name=None):
        return jnp.mean((gradkit.tract_dense(x, k, axis_name=axis_name) - y) ** 2)

    synced = jax.pmap(lambda k, x, y: jax.lax.pmean(jax.grad(loss)(k, x, y, "d"), "d"),
                      axis_name="d", in_axes=(None, 0, 0))(kernel, x, y)
    glob = jax.grad(loss)(kernel, x.reshape(-1, n), y.reshape(-1, 3))
    for row in synced:
        np.testing.assert_allclose(row, glob, rtol=1e-4, atol=1e-6)
    if rows_per_device * devices >= n:
        return
    # Without axis_name each device uses its own rows (the official DDP behaviour).
    local = jax.pmap(lambda k, x, y: jax.grad(loss)(k, x, y), in_axes=(None, 0, 0))(kernel, x, y)
    for d in range(devices):
        np.testing.assert_allclose(local[d], jax.grad(loss)(kernel, x[d], y[d]), rtol=1e-4,
                                   atol=1e-6)
    assert not np.allclose(local.mean(0), glob, atol=1e-4)


def test_non_finite_input_row_poisons_the_whole_kernel_gradient_only():
    x = _rand(0, (6, 4)).at[2, 1].set(jnp.nan)
    kernel, bias, g = _rand(1, (4, 3)), _rand(2, (3,)), _rand(3, (6, 3))
    _, (gx, gk, gb) = _forward_and_grads(lambda x, k, b: gradkit.tract_dense(x, k, b), x,
                                         kernel, bias, g)
    assert np.isnan(gk).all()  # the solve mixes every row
    assert np.isfinite(gb).all() and np.isfinite(gx).all()  # as a plain dense layer


@pytest.mark.parametrize("lam", [0.0, -0.1, float("nan")])
def test_bad_lambda_is_rejected_naming_the_argument(lam):
    x, kernel = jnp.ones((2, 3)), jnp.ones((3, 2))
    with pytest.raises(ValueError, match="`lam`"):
        gradkit.tract_dense(x, kernel, lam=lam)
    with pytest.raises(ValueError, match="`lam`"):
        gradkit.tract_conv(jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 2)), lam=lam)
    with pytest.raises(ValueError, match="`lam`"):
        layers.nnx.TrActDense(3, 2, lam=lam, rngs=nnx.Rngs(0))


def test_bad_shapes_are_rejected_naming_the_argument():
    with pytest.raises(TypeError, match="`lam`"):
        gradkit.tract_dense(jnp.ones((2, 3)), jnp.ones((3, 2)), lam=jnp.array(0.1))
    with pytest.raises(ValueError, match="`x`"):
        gradkit.tract_dense(jnp.ones((2, 4)), jnp.ones((3, 2)))
    with pytest.raises(ValueError, match="`x`"):
        gradkit.tract_conv(jnp.ones((4, 4, 2)), jnp.ones((3, 3, 2, 2)))
    with pytest.raises(ValueError, match="`padding`"):
        gradkit.tract_conv(jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 2)), padding="FULL")


def test_linen_and_nnx_modules_match_plain_layers_and_each_other():
    x, xi = _rand(0, (5, 7)), _rand(1, (2, 6, 6, 3))
    dense, conv = layers.TrActDense(4), layers.TrActConv(4, 3, strides=2)
    vd, vc = dense.init(jax.random.key(0), x), conv.init(jax.random.key(1), xi)
    np.testing.assert_allclose(dense.apply(vd, x), nn.Dense(4).apply(vd, x), rtol=1e-6)
    np.testing.assert_allclose(conv.apply(vc, xi), nn.Conv(4, (3, 3), 2).apply(vc, xi),
                               rtol=1e-5, atol=1e-5)
    nd = layers.nnx.TrActDense(7, 4, rngs=nnx.Rngs(0))
    nc = layers.nnx.TrActConv(3, 4, (3, 3), 2, rngs=nnx.Rngs(0))
    for module, v in ((nd, vd), (nc, vc)):
        module.kernel[...] = v["params"]["kernel"]
        module.bias[...] = v["params"]["bias"]
    for linen_module, nnx_module, v, inp in ((dense, nd, vd, x), (conv, nc, vc, xi)):
        want = jax.grad(lambda p, m=linen_module, i=inp: jnp.sum(
            jnp.sin(m.apply({"params": p}, i))))(v["params"])
        got = nnx.grad(lambda m, i=inp: jnp.sum(jnp.sin(m(i))))(nnx_module)
        np.testing.assert_allclose(got.kernel[...], want["kernel"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got.bias[...], want["bias"], rtol=1e-5, atol=1e-6)
