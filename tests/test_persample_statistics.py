# SPDX-License-Identifier: Apache-2.0
"""Per-sample gradient statistics (gradkit/persample/_statistics.py)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradkit


def _mlp_loss(params, example):
    x, y = example
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((h @ params["w2"] - y) ** 2)


def _mlp_problem(batch=16):
    k = jax.random.split(jax.random.key(0), 4)
    params = {"w1": jax.random.normal(k[0], (3, 5)), "b1": jnp.zeros(5),
              "w2": jax.random.normal(k[1], (5, 2))}
    data = (jax.random.normal(k[2], (batch, 3)), jax.random.normal(k[3], (batch, 2)))
    return params, data


def test_memory_aware_statistics_equal_per_sample_gradient_ones():
    params, data = _mlp_problem()
    grads = jax.vmap(jax.grad(_mlp_loss), in_axes=(None, 0))(params, data)
    want, want_mean = gradkit.per_sample_statistics(grads)
    got, got_mean = jax.jit(lambda p, d: gradkit.per_sample_statistics_from_loss(
        _mlp_loss, p, d, chunk_size=4))(params, data)
    chex.assert_trees_all_close(got, want, rtol=1e-5)
    chex.assert_trees_all_close(got_mean, want_mean, rtol=1e-5, atol=1e-7)
    assert int(gradkit.adadagrad_batch_size_from_statistics(got, "augmented")) == int(
        gradkit.adadagrad_batch_size(grads, "augmented"))


def test_eight_devices_equal_one_device():
    n = jax.device_count()
    params, data = _mlp_problem(batch=4 * n)
    grads = jax.vmap(jax.grad(_mlp_loss), in_axes=(None, 0))(params, data)
    want, _ = gradkit.per_sample_statistics(grads)
    shard = lambda x: x.reshape(n, x.shape[0] // n, *x.shape[1:])  # noqa: E731

    def per_device(g, d):
        stats, _ = gradkit.per_sample_statistics(g, axis_name="i")
        stats2, _ = gradkit.per_sample_statistics_from_loss(_mlp_loss, params, d,
                                                             axis_name="i")
        sizes = jnp.stack([gradkit.adadagrad_batch_size(g, t, axis_name="i")
                           for t in ("norm", "augmented")])
        return stats, stats2, sizes

    stats, stats2, sizes = jax.pmap(per_device, axis_name="i")(
        jax.tree.map(shard, grads), jax.tree.map(shard, data))
    for d in (0, n - 1):
        chex.assert_trees_all_close(jax.tree.map(lambda x, d=d: x[d], stats), want, rtol=1e-5)
        chex.assert_trees_all_close(jax.tree.map(lambda x, d=d: x[d], stats2), want,
                                    rtol=1e-5)
    one = [int(gradkit.adadagrad_batch_size(grads, t)) for t in ("norm", "augmented")]
    np.testing.assert_array_equal(sizes[0], one)
    assert min(one) == 4 * n  # the global batch, not the per-device one


def test_chunk_size_must_divide_the_batch():
    params, data = _mlp_problem()
    with pytest.raises(ValueError, match="chunk_size"):
        gradkit.per_sample_statistics_from_loss(_mlp_loss, params, data, chunk_size=5)
