# SPDX-License-Identifier: Apache-2.0
"""Ghost BatchNorm (gradkit.layers): per-ghost statistics by hand, running statistics,
train/eval modes, equality with BatchNorm at ghost size = batch, pmap, linen == NNX."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from gradkit import layers

EPS = 1e-5


def _data(shape, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return 2.0 * jax.random.normal(k1, shape) + jax.random.normal(k2, shape[-1:])


def _by_hand(x, ghost, mean0, var0, momentum, scale, bias):
    """Per-ghost normalisation and one sequential running update per ghost (float64 loops)."""
    x = np.asarray(x, np.float64)
    y = np.empty_like(x)
    mean, var = np.asarray(mean0, np.float64), np.asarray(var0, np.float64)
    for k in range(x.shape[0] // ghost):
        rows = x[k * ghost:(k + 1) * ghost]
        flat = rows.reshape(-1, x.shape[-1])
        mu, sig2 = flat.mean(0), flat.var(0)
        y[k * ghost:(k + 1) * ghost] = (rows - mu) / np.sqrt(sig2 + EPS) * scale + bias
        mean = momentum * mean + (1 - momentum) * mu
        var = momentum * var + (1 - momentum) * sig2
    return y, mean, var


@pytest.mark.parametrize("shape,ghost", [((12, 3), 4), ((6, 2, 2, 3), 2)])
def test_per_ghost_statistics_and_running_updates_by_hand(shape, ghost):
    x = _data(shape)
    module = layers.GhostBatchNorm(ghost, momentum=0.8)
    v = module.init(jax.random.key(0), x, use_running_average=False)
    scale = jnp.linspace(0.5, 1.5, shape[-1])
    bias = jnp.linspace(-1.0, 1.0, shape[-1])
    v = {"params": {"scale": scale, "bias": bias},
         "batch_stats": {"mean": jnp.full(shape[-1], 0.3), "var": jnp.full(shape[-1], 2.0)}}
    y, new = jax.jit(lambda v, x: module.apply(v, x, use_running_average=False,
                                               mutable=["batch_stats"]))(v, x)
    want_y, want_mean, want_var = _by_hand(x, ghost, 0.3, 2.0, 0.8, np.asarray(scale),
                                           np.asarray(bias))
    np.testing.assert_allclose(y, want_y, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(new["batch_stats"]["mean"], want_mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(new["batch_stats"]["var"], want_var, rtol=1e-5, atol=1e-6)
    # Evaluation: the running statistics, nothing updated.
    v2 = {"params": v["params"], "batch_stats": new["batch_stats"]}
    y_eval, unchanged = module.apply(v2, x, use_running_average=True, mutable=["batch_stats"])
    want_eval = ((np.asarray(x) - want_mean) / np.sqrt(want_var + EPS) * np.asarray(scale)
                 + np.asarray(bias))
    np.testing.assert_allclose(y_eval, want_eval, rtol=1e-5, atol=1e-5)
    jax.tree.map(np.testing.assert_array_equal, unchanged, new)


def test_equals_batchnorm_when_the_ghost_batch_is_the_batch():
    x = _data((8, 5))
    gbn = layers.GhostBatchNorm(8, momentum=0.9)
    bn = nn.BatchNorm(momentum=0.9, epsilon=EPS)
    v = bn.init(jax.random.key(0), x, use_running_average=False)
    assert jax.tree.structure(v) == jax.tree.structure(
        gbn.init(jax.random.key(0), x, use_running_average=False))

    def run(module):
        def loss(params, x):
            y, new = module.apply({"params": params, "batch_stats": v["batch_stats"]}, x,
                                  use_running_average=False, mutable=["batch_stats"])
            return jnp.sum(jnp.sin(y) * jnp.arange(5.0)), (y, new)

        return jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))(v["params"], x)

    got, want = run(gbn), run(bn)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5), got, want)
    # A smaller ghost size really changes the result.
    y4, _ = layers.GhostBatchNorm(4).apply(v, x, use_running_average=False,
                                           mutable=["batch_stats"])
    assert not np.allclose(y4, want[1][0], atol=1e-3)


@pytest.mark.parametrize("ghost", [3, 16, 0, 2.0])
def test_ghost_size_that_does_not_divide_the_batch_is_rejected(ghost):
    x = jnp.ones((8, 2))
    with pytest.raises(ValueError, match="`ghost_batch_size`"):
        layers.GhostBatchNorm(ghost).init(jax.random.key(0), x, use_running_average=False)
    if ghost in (3, 16):
        module = layers.nnx.GhostBatchNorm(2, ghost, rngs=nnx.Rngs(0))
        with pytest.raises(ValueError, match=r"`ghost_batch_size` \(\d+\) must divide"):
            module(x)
        np.testing.assert_allclose(module(x, use_running_average=True), x / np.sqrt(1 + EPS),
                                   rtol=1e-6)  # evaluation needs no ghost split
    else:
        with pytest.raises(ValueError, match="`ghost_batch_size`"):
            layers.nnx.GhostBatchNorm(2, ghost, rngs=nnx.Rngs(0))


def test_pmap_axis_name_keeps_replicas_equal_to_one_device_on_the_global_batch():
    devices = jax.device_count()
    ghost = 2
    x = _data((devices * 4, 3))
    module = layers.GhostBatchNorm(ghost, axis_name="d")
    v = module.init(jax.random.key(0), x[:4], use_running_average=False)

    def step(x):
        return module.apply(v, x, use_running_average=False, mutable=["batch_stats"])

    y, new = jax.pmap(step, axis_name="d")(x.reshape(devices, 4, 3))
    want_y, want = layers.GhostBatchNorm(ghost).apply(v, x, use_running_average=False,
                                                      mutable=["batch_stats"])
    np.testing.assert_allclose(y.reshape(-1, 3), want_y, rtol=1e-5, atol=1e-5)
    for d in range(devices):
        np.testing.assert_allclose(new["batch_stats"]["mean"][d], want["batch_stats"]["mean"],
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(new["batch_stats"]["var"][d], want["batch_stats"]["var"],
                                   rtol=1e-5, atol=1e-6)


def test_linen_and_nnx_are_equal_in_train_and_eval_modes():
    x = _data((8, 2, 3))
    linen = layers.GhostBatchNorm(2, momentum=0.7)
    v = linen.init(jax.random.key(0), x, use_running_average=False)
    v = {"params": {"scale": jnp.array([0.5, 1.0, 2.0]), "bias": jnp.array([0.1, 0.2, 0.3])},
         "batch_stats": v["batch_stats"]}
    mod = layers.nnx.GhostBatchNorm(3, 2, momentum=0.7, rngs=nnx.Rngs(0))
    mod.scale[...], mod.bias[...] = v["params"]["scale"], v["params"]["bias"]
    y, new = linen.apply(v, x, use_running_average=False, mutable=["batch_stats"])
    np.testing.assert_allclose(mod(x), y, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(mod.mean[...], new["batch_stats"]["mean"], rtol=1e-6)
    np.testing.assert_allclose(mod.var[...], new["batch_stats"]["var"], rtol=1e-6)
    mod.eval()
    v2 = {"params": v["params"], "batch_stats": new["batch_stats"]}
    np.testing.assert_allclose(mod(x), linen.apply(v2, x, use_running_average=True),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(mod.mean[...], new["batch_stats"]["mean"], rtol=1e-6)  # frozen
