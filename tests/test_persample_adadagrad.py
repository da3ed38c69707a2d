# SPDX-License-Identifier: Apache-2.0
"""AdAdaGrad batch-size tests (gradkit/persample/_adadagrad.py)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
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
