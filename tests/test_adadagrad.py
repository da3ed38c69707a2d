"""AdAdaGrad batch-size tests and AdaGrad-Norm (gradkit.multitask._adadagrad)."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradkit
from tests import helpers

# Three per-sample gradients in R²; hand-computed below.
G = jnp.array([[1.0, 0.0], [3.0, 2.0], [2.0, 1.0]])


def _numpy_reference(per_sample: dict, eta, theta, nu, per_tensor):
    """Float64 transcription of the reference tests.py (per_tensor) or of the paper."""
    leaves = [np.asarray(x, np.float64).reshape(x.shape[0], -1)
              for x in jax.tree.leaves(per_sample)]
    if not per_tensor:
        leaves = [np.concatenate(leaves, axis=1)]
    b = leaves[0].shape[0]
    var_norm = var_ip = var_orth = g2 = 0.0
    for x in leaves:
        mean = x.mean(0)
        var_norm += np.var(x, axis=0, ddof=1).sum()
        inner = x @ mean
        var_ip += np.var(inner, ddof=1)
        ortho = x - np.outer(inner, mean) / (mean @ mean)
        var_orth += np.var(ortho, axis=0, ddof=1).sum()
        g2 += mean @ mean
    return {
        "norm": max(b, math.ceil(var_norm / (eta**2 * g2))),
        "inner_product": max(b, math.ceil(var_ip / (theta**2 * g2**2))),
        "orthogonality": max(b, math.ceil(var_orth / (nu**2 * g2))),
        "augmented": max(b, math.ceil(max(var_ip / (theta**2 * g2**2),
                                          var_orth / (nu**2 * g2)))),
    }


@pytest.mark.parametrize("test,kwargs,want", [
    ("norm", dict(eta=0.1), 40),           # Σ Var = 2, ‖ḡ‖² = 5: 2 / (0.01·5)
    ("norm", dict(eta=0.5), 3),            # 1.6 < B = 3: never shrinks
    ("inner_product", dict(theta=0.1), 36),  # a = (2, 8, 5), Var = 9: 9 / (0.01·25)
    ("inner_product", dict(theta=0.5), 3),   # 1.44
    ("orthogonality", dict(nu=0.1), 4),      # Σ Var = 0.04 + 0.16: 0.2 / (0.01·5)
    ("augmented", dict(theta=0.1, nu=0.1), 36),
    ("augmented", dict(theta=1.0, nu=0.1), 4),
])
def test_hand_computed_batch_sizes(test, kwargs, want):
    assert int(gradkit.adadagrad_batch_size({"w": G}, test, **kwargs)) == want


def test_per_tensor_variant_of_reference_code_hand_computed():
    split = {"a": G[:, 0], "b": G[:, 1]}
    # Per tensor: inner products (2, 6, 4) and (0, 2, 1), variances 4 + 1 = 5: 5/(0.01·25).
    assert int(gradkit.adadagrad_batch_size(split, "inner_product", theta=0.1,
                                            per_tensor=True)) == 20
    assert int(gradkit.adadagrad_batch_size(split, "inner_product", theta=0.1)) == 36
    # One-dimensional tensors have nothing orthogonal to their own mean.
    assert int(gradkit.adadagrad_batch_size(split, "orthogonality", nu=0.01,
                                            per_tensor=True)) == 3
    assert int(gradkit.adadagrad_batch_size(split, "norm", per_tensor=True)) == 40


@pytest.mark.parametrize("per_tensor", [False, True])
def test_matches_numpy_transcription_on_random_gradients(per_tensor):
    params = helpers.tiny_params()
    for seed in range(3):
        # Per-sample gradients with a common mean (so tests ask for moderate sizes).
        per_sample = jax.tree.map(
            lambda x, seed=seed: 0.7 + jax.random.normal(jax.random.key(seed), (12, *x.shape)),
            params)
        want = _numpy_reference(per_sample, 0.3, 0.4, 0.8, per_tensor)
        for test in gradkit.ADADAGRAD_TESTS:
            got = gradkit.adadagrad_batch_size(per_sample, test, eta=0.3, theta=0.4, nu=0.8,
                                               per_tensor=per_tensor)
            assert int(got) == want[test], (test, seed)
        assert max(want.values()) > 12  # not vacuous: some test grows the batch


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


def test_edge_cases_and_errors():
    zero = {"w": jnp.array([[1.0, -1.0], [-1.0, 1.0]])}  # mean gradient exactly zero
    assert int(gradkit.adadagrad_batch_size(zero, max_batch_size=500)) == 500
    assert int(gradkit.adadagrad_batch_size(zero)) == 2**31 - 1
    nan = {"w": G.at[0, 0].set(jnp.nan)}
    assert int(gradkit.adadagrad_batch_size(nan)) == 3
    with pytest.raises(ValueError, match="at least 2"):
        gradkit.adadagrad_batch_size({"w": G[:1]})
    with pytest.raises(ValueError, match="`test`"):
        gradkit.adadagrad_batch_size({"w": G}, "variance")
    with pytest.raises(ValueError, match="`eta`"):
        gradkit.adadagrad_batch_size({"w": G}, eta=0.0)
    with pytest.raises(ValueError, match="mismatched sample axes"):
        gradkit.adadagrad_batch_size({"w": G, "b": jnp.ones(4)})
    params, data = _mlp_problem()
    with pytest.raises(ValueError, match="chunk_size"):
        gradkit.per_sample_statistics_from_loss(_mlp_loss, params, data, chunk_size=5)


def test_buckets_and_controller_are_monotone():
    assert gradkit.bucket_batch_size(17, minimum=8, maximum=1000) == 32
    assert gradkit.bucket_batch_size(8, minimum=8, maximum=1000) == 8
    assert gradkit.bucket_batch_size(5000, minimum=8, maximum=1000) == 1000
    c = gradkit.AdaptiveBatchSize(initial=8, maximum=100)
    for proposal in (3, 20, 10, 70, 1000, 5):
        c.update(proposal)
    assert c.history == [8, 8, 32, 32, 100, 100, 100]
    c = gradkit.AdaptiveBatchSize(initial=8, maximum=100, bucket=False)
    for proposal in (3, 20, 10, 70):
        c.update(proposal)
    assert c.history == [8, 8, 20, 20, 70]
    with pytest.raises(ValueError, match="maximum"):
        gradkit.AdaptiveBatchSize(initial=8, maximum=4)


def test_adagrad_norm_closed_form_two_steps():
    opt = gradkit.adagrad_norm(learning_rate=0.1, initial_accumulator_value=0.0, eps=0.0)
    params = {"a": jnp.zeros(1), "b": jnp.zeros(1)}
    state = opt.init(params)
    u1, state = opt.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, state, params)
    np.testing.assert_allclose([u1["a"][0], u1["b"][0]], [-0.06, -0.08], rtol=1e-6)
    u2, state = opt.update({"a": jnp.array([0.0]), "b": jnp.array([5.0])}, state, params)
    np.testing.assert_allclose([u2["a"][0], u2["b"][0]], [0.0, -0.1 * 5 / math.sqrt(50)],
                               rtol=1e-6)
    assert float(state[0].sum_of_squares) == pytest.approx(50.0)
    # b_0² = 11: the first step is g / √(11 + 25).
    opt = gradkit.adagrad_norm(learning_rate=1.0, initial_accumulator_value=11.0, eps=0.0)
    u, _ = opt.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, opt.init(params), params)
    np.testing.assert_allclose(u["a"], [-0.5], rtol=1e-6)


def test_adagrad_norm_on_one_scalar_is_optax_adagrad():
    ours = gradkit.adagrad_norm(0.3, initial_accumulator_value=0.1, eps=0.0)
    ref = optax.adagrad(0.3, initial_accumulator_value=0.1, eps=0.0)
    p_ours, _ = helpers.apply_steps(ours, {"x": jnp.array(2.0)},
                                    lambda p, s: jax.grad(helpers.parabola)(p), 5)
    p_ref, _ = helpers.apply_steps(ref, {"x": jnp.array(2.0)},
                                   lambda p, s: jax.grad(helpers.parabola)(p), 5)
    chex.assert_trees_all_close(p_ours, p_ref, rtol=1e-6)


def test_adagrad_norm_zero_gradient_and_validation():
    opt = gradkit.scale_by_adagrad_norm(eps=0.0)
    u, _ = opt.update({"w": jnp.zeros(3)}, opt.init(None))
    np.testing.assert_array_equal(u["w"], 0.0)
    with pytest.raises(ValueError, match="learning_rate"):
        gradkit.adagrad_norm(learning_rate=0.0)
    with pytest.raises(ValueError, match="initial_accumulator_value"):
        gradkit.adagrad_norm(0.1, initial_accumulator_value=-1.0)
