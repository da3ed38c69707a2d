# SPDX-License-Identifier: Apache-2.0
"""The Hessian-vector product (gradkit/hessian): exact Hessians, vmap, pmap, shard_map."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

import gradkit
from tests.hessian_problems import N_DEV
from tests.hessian_problems import exact_hessian
from tests.hessian_problems import flat
from tests.hessian_problems import regression_loss
from tests.hessian_problems import regression_problem
from tests.hessian_problems import replicate
from tests.hessian_problems import rows

PARAMS, X, Y = regression_problem()
H = exact_hessian(regression_loss, PARAMS, X, Y)


def test_hvp_equals_exact_hessian_times_v_and_vmaps_over_vectors():
    vs = [jax.tree.map(lambda a, i=i: jax.random.normal(jax.random.key(i), a.shape), PARAMS)
          for i in range(3)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *vs)

    @jax.jit
    def one_by_one_and_batched(stacked):
        loop = [gradkit.hvp(regression_loss, PARAMS,
                            jax.tree.map(lambda a, i=i: a[i], stacked), X, Y)
                for i in range(3)]
        batched = jax.vmap(gradkit.hvp, in_axes=(None, None, 0, None, None))(
            regression_loss, PARAMS, stacked, X, Y)
        return loop, batched

    loop, batched = one_by_one_and_batched(stacked)
    expected = np.stack([H @ flat(v) for v in vs])
    np.testing.assert_allclose(np.stack([flat(h) for h in loop]), expected, rtol=1e-4,
                               atol=1e-5)
    np.testing.assert_allclose(rows(batched), expected, rtol=1e-4, atol=1e-5)


def test_hvp_rejects_mismatched_vector():
    with pytest.raises(ValueError, match="`v` must have the same pytree structure"):
        gradkit.hvp(regression_loss, PARAMS, {"w1": jnp.ones((3, 4))}, X, Y)
    bad = dict(PARAMS, b1=jnp.ones(5))
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        gradkit.hvp(regression_loss, PARAMS, bad, X, Y)


# --- Multi-device ----------------------------------------------------------------------


def test_pmap_hvp_and_eigenvalues_equal_single_device_on_global_batch():
    params, x, y = regression_problem(seed=1, batch=4 * N_DEV)
    v = jax.tree.map(lambda a: jnp.cos(jnp.arange(a.size, dtype=a.dtype)).reshape(a.shape),
                     params)
    expected_hv = gradkit.hvp(regression_loss, params, v, x, y)
    expected_sharpness = gradkit.sharpness(regression_loss, params, x, y, num_iterations=4)

    def local(p, v, xb, yb):
        hv = gradkit.hvp(regression_loss, p, v, xb, yb, axis_name="d")
        return hv, gradkit.sharpness(regression_loss, p, xb, yb, num_iterations=4, axis_name="d")

    hv, vals = jax.pmap(local, axis_name="d")(replicate(params), replicate(v),
                                             x.reshape(N_DEV, 4, -1), y.reshape(N_DEV, 4, -1))
    for i in (0, N_DEV - 1):
        chex.assert_trees_all_close(jax.tree.map(lambda a, i=i: a[i], hv), expected_hv,
                                    rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(vals[i], expected_sharpness, rtol=1e-4)
    # Without axis_name each device sees only its own shard's Hessian.
    per_device = jax.pmap(lambda p, v, xb, yb: gradkit.hvp(regression_loss, p, v, xb, yb))(
        replicate(params), replicate(v), x.reshape(N_DEV, 4, -1), y.reshape(N_DEV, 4, -1))
    assert float(jnp.max(jnp.abs(per_device["w2"][0] - expected_hv["w2"]))) > 1e-3


def test_shard_map_hvp_matches_single_device_and_is_replicated():
    params, x, y = regression_problem(seed=2, batch=2 * N_DEV)
    v = jax.tree.map(jnp.ones_like, params)
    mesh = Mesh(np.array(jax.devices()), ("d",))
    sharded = jax.jit(jax.shard_map(
        lambda p, v, xb, yb: gradkit.hvp(regression_loss, p, v, xb, yb, axis_name="d"),
        mesh=mesh, in_specs=(P(), P(), P("d"), P("d")), out_specs=P()))
    # out_specs=P(): shard_map's replication check proves every device holds the same HVP.
    chex.assert_trees_all_close(sharded(params, v, x, y),
                                gradkit.hvp(regression_loss, params, v, x, y),
                                rtol=1e-5, atol=1e-6)
