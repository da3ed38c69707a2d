# SPDX-License-Identifier: Apache-2.0
"""Drop-Muon: frozen prefix bit-identical, s ≡ 0 is optax Muon, truncated backward."""

from __future__ import annotations

import functools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradkit


def _mlp_params(seed=0):
    ks = jax.random.split(jax.random.key(seed), 6)
    return {
        "Dense_0": {"kernel": jax.random.normal(ks[0], (4, 8)), "bias": jnp.zeros(8)},
        "Dense_1": {"kernel": jax.random.normal(ks[1], (8, 8)) / 3, "bias": jnp.zeros(8)},
        "Dense_2": {"kernel": jax.random.normal(ks[2], (8, 2)) / 3, "bias": jnp.zeros(2)},
    }


def _mlp_loss(params, x):
    h = x
    for name in ("Dense_0", "Dense_1"):
        h = jnp.tanh(h @ params[name]["kernel"] + params[name]["bias"])
    out = h @ params["Dense_2"]["kernel"] + params["Dense_2"]["bias"]
    return jnp.mean((out - 1.0) ** 2)


X = jax.random.normal(jax.random.key(9), (16, 4))


def test_forced_start_layer_freezes_prefix_weights_and_momenta_bit_for_bit():
    params = _mlp_params()
    opt = gradkit.drop_muon(0.02, weight_decay=0.1)
    state = opt.init(params)
    update = jax.jit(opt.update)
    for s in (0, 2, 1):  # warm all moments up, then freeze layers 0 (and 0-1).
        before_p, before_s = params, state
        grads = jax.grad(_mlp_loss)(params, X)
        updates, state = update(grads, state, params, start_layer=s)
        params = optax.apply_updates(params, updates)
        inner_b, inner_a = before_s[0], state[0]
        assert int(inner_a.start_layer) == s
        for i in range(3):
            name = f"Dense_{i}"
            same = i < s
            for leaf in ("kernel", "bias"):
                moved = not np.array_equal(params[name][leaf], before_p[name][leaf])
                assert moved != same, (s, name, leaf)
                mu_same = np.array_equal(inner_a.mu[name][leaf], inner_b.mu[name][leaf])
                assert mu_same == same, (s, name, leaf)
            assert np.array_equal(inner_a.nu[name]["bias"], inner_b.nu[name]["bias"]) == same
        np.testing.assert_array_equal(inner_a.layer_counts - inner_b.layer_counts,
                                      (np.arange(3) >= s).astype(np.int32))


def test_start_layer_zero_every_step_is_optax_muon():
    params = _mlp_params(1)
    ours = gradkit.drop_muon(0.02, weight_decay=0.05)
    theirs = optax.contrib.muon(0.02, weight_decay=0.05)
    s_ours, s_theirs = ours.init(params), theirs.init(params)
    p_ours = p_theirs = params
    # Python-int start layer closed over: the static (no control flow) path.
    update_ours = jax.jit(functools.partial(ours.update, start_layer=0))
    update_theirs = jax.jit(theirs.update)
    for _ in range(3):
        u, s_ours = update_ours(jax.grad(_mlp_loss)(p_ours, X), s_ours, p_ours)
        p_ours = optax.apply_updates(p_ours, u)
        u, s_theirs = update_theirs(jax.grad(_mlp_loss)(p_theirs, X), s_theirs, p_theirs)
        p_theirs = optax.apply_updates(p_theirs, u)
    chex.assert_trees_all_close(p_ours, p_theirs, rtol=2e-5, atol=1e-6)


def test_key_accepts_an_int_or_a_typed_key_and_stores_key_data():
    params = _mlp_params()
    from_int = gradkit.drop_muon(0.02, key=3).init(params)[0].key
    from_key = gradkit.drop_muon(0.02, key=jax.random.key(3)).init(params)[0].key
    np.testing.assert_array_equal(from_int, from_key)
    assert from_int.dtype == jnp.uint32


def test_wide_kernel_takes_the_muon_aspect_factor():
    # Dense_0 (4, 8): fan_out/fan_in = 2, so the active step is √2 × the orthogonalised
    # momentum, as optax.contrib.muon's width scaling (and AuON's aspect factor).
    params = {"Dense_0": {"kernel": jnp.zeros((4, 8))}}
    grads = {"Dense_0": {"kernel": jax.random.normal(jax.random.key(1), (4, 8))}}
    opt = gradkit.scale_by_drop_muon()
    u, _ = opt.update(grads, opt.init(params), params)
    plain = optax.contrib.scale_by_muon()  # no shape scaling
    g = grads["Dense_0"]["kernel"]
    v, _ = plain.update(g, plain.init(g))
    np.testing.assert_allclose(u["Dense_0"]["kernel"], math.sqrt(2) * v, rtol=1e-4, atol=1e-6)


def test_sampled_start_layers_are_uniform_and_predictable():
    params = _mlp_params()
    opt = gradkit.drop_muon(0.02, key=3)
    state = opt.init(params)
    grads = jax.tree.map(jnp.ones_like, params)

    @jax.jit
    def step(state):
        predicted = gradkit.drop_muon_next_start_layer(state)
        _, state = opt.update(grads, state, params)
        return state, predicted

    seen = []
    for _ in range(90):
        state, predicted = step(state)
        assert int(predicted) == int(state[0].start_layer)
        seen.append(int(predicted))
    counts = np.bincount(seen, minlength=3)
    assert counts.min() >= 15, counts  # uniform over {0, 1, 2}: 30 expected each
    np.testing.assert_array_equal(state[0].layer_counts, [counts[0], counts[:2].sum(), 90])


def test_custom_start_probs_and_layer_order():
    params = _mlp_params()
    order = ["Dense_2", "Dense_1", "Dense_0"]  # reversed: Dense_2 is now layer 0
    opt = gradkit.scale_by_drop_muon(layers=order, start_probs=(0.0, 0.0, 1.0))
    state = opt.init(params)
    grads = jax.tree.map(jnp.ones_like, params)
    u, state = opt.update(grads, state, params)
    assert int(state.start_layer) == 2
    assert float(jnp.abs(u["Dense_0"]["kernel"]).max()) > 0
    assert float(jnp.abs(u["Dense_2"]["kernel"]).max()) == 0.0
    idx = gradkit.drop_muon_layer_indices({"Conv_10": 0, "Conv_2": 0, "Dense_0": 0})
    assert idx == {"Conv_2": 0, "Conv_10": 1, "Dense_0": 2}  # natural order


def test_truncated_value_and_grad_matches_full_gradient_on_active_layers():
    params = _mlp_params()
    vg = gradkit.drop_muon_value_and_grad(_mlp_loss)
    chex.clear_trace_counter()
    traced = jax.jit(chex.assert_max_traces(vg, n=1))
    loss_full, g_full = jax.value_and_grad(_mlp_loss)(params, X)
    for s in range(3):
        loss, g = traced(params, jnp.int32(s), X)  # one compilation for every s
        np.testing.assert_allclose(loss, loss_full, rtol=1e-6)
        for i in range(3):
            for leaf in ("kernel", "bias"):
                got, full = g[f"Dense_{i}"][leaf], g_full[f"Dense_{i}"][leaf]
                if i >= s:
                    np.testing.assert_allclose(got, full, rtol=1e-5, atol=1e-7)
                else:
                    assert float(jnp.abs(got).max()) == 0.0


def _count_prims(jaxpr, name):
    n = 0
    for eqn in jaxpr.eqns:
        n += eqn.primitive.name == name
        for sub in jax.core.subjaxprs(eqn) if hasattr(jax.core, "subjaxprs") else ():
            n += _count_prims(sub, name)
        for p in eqn.params.values():
            if hasattr(p, "jaxpr"):
                n += _count_prims(p.jaxpr, name)
    return n


def test_truncated_backward_skips_the_frozen_layers_matmuls():
    # Branch s of the switch: forward 3 matmuls, backward: weight gradients of layers
    # s..2 (3 − s matmuls) and input cotangents of layers s+1..2 (2 − s): 8 − 2s in all.
    vg = gradkit.drop_muon_value_and_grad(_mlp_loss)
    jaxpr = jax.make_jaxpr(vg)(_mlp_params(), 0, X).jaxpr
    (cond,) = [e for e in jaxpr.eqns if e.primitive.name == "cond"]
    counts = [_count_prims(branch.jaxpr, "dot_general") for branch in cond.params["branches"]]
    assert counts == [8, 6, 4], counts


@pytest.mark.parametrize("kwargs, match", [
    (dict(layers=["Dense_0", "Dense_1"]), "missing"),
    (dict(start_probs=(0.5, 0.5)), "one entry per layer"),
    (dict(start_probs=(0.5, 0.6, -0.1)), "`start_probs`"),
    (dict(beta=1.5), "`beta`"),
    (dict(ns_steps=0), "`ns_steps`"),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gradkit.scale_by_drop_muon(**kwargs).init(_mlp_params())
