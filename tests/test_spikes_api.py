# SPDX-License-Identifier: Apache-2.0
"""The spikes family's API: periodic reset keeps schedules, second moments in float32
for bf16 params, no device arrays at construction, learning-rate validation, argument
names and keyword-only arguments, the optional spike count."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradkit

ALIASES = {
    "spam": gradkit.spam,
    "spam_sparse": functools.partial(gradkit.spam, density=0.25),
    "stable_spam": functools.partial(gradkit.stable_spam, total_steps=100),
}


# -- with_periodic_reset: only moments -------------------------------------------------

def test_periodic_reset_keeps_a_schedule_decaying():
    # SGD with lr 1 → 0 over 10 steps, moments reset every 5 updates: the schedule's
    # count is not reset (only="all" would give lr 1.0, 0.9, 0.8, 0.7, 1.0, ...).
    opt = gradkit.with_periodic_reset(optax.sgd(optax.linear_schedule(1.0, 0.0, 10)),
                                      reset_interval=5)
    params = {"w": jnp.zeros(())}
    state = opt.init(params)
    lrs = []
    for _ in range(8):
        updates, state = opt.update({"w": jnp.ones(())}, state, params)
        lrs.append(-float(updates["w"]))
    np.testing.assert_allclose(lrs, [1.0 - 0.1 * i for i in range(8)], rtol=1e-6)


def test_periodic_reset_zeroes_moments_not_counts_or_injected_hyperparameters():
    inner = optax.inject_hyperparams(optax.adam)(learning_rate=optax.linear_schedule(1.0, 0.0, 10))
    opt = gradkit.with_periodic_reset(inner, reset_interval=3)
    params = {"w": jnp.zeros(2)}
    state = opt.init(params)
    for _ in range(3):
        _, state = opt.update({"w": jnp.ones(2)}, state, params)
    inner_state = state.inner_state
    adam = inner_state.inner_state[0]
    # Update 3 started from zero moments: m = (1 − β₁)·g, ν = (1 − β₂)·g².
    np.testing.assert_allclose(adam.mu["w"], 0.1, rtol=1e-6)
    np.testing.assert_allclose(adam.nu["w"], 0.001, rtol=1e-4)
    assert int(adam.count) == 3 and int(inner_state.count) == 3
    # The injected learning rate keeps following its schedule (count 2 → 0.8).
    np.testing.assert_allclose(inner_state.hyperparams["learning_rate"], 0.8, rtol=1e-6)


def test_periodic_reset_restarts_clip_spikes_delay_with_its_nu():
    opt = gradkit.with_periodic_reset(gradkit.clip_spikes(clip_delay=2), reset_interval=4)
    state = opt.init({"w": jnp.zeros(3)})
    counts = []
    for _ in range(6):
        _, state = opt.update({"w": jnp.ones(3)}, state)
        counts.append(int(state.inner_state.count))
    assert counts == [1, 2, 3, 1, 2, 3]


def test_with_periodic_reset_needs_reset_interval():
    with pytest.raises(TypeError, match="reset_interval"):
        gradkit.with_periodic_reset(optax.sgd(1.0))
    with pytest.raises(TypeError, match="every"):
        gradkit.with_periodic_reset(optax.sgd(1.0), every=5)


@pytest.mark.parametrize(("factory", "kwargs"), [
    (gradkit.clip_spikes, dict(warmup_steps=3)),  # its delay is `clip_delay`
    (functools.partial(gradkit.spam, 1e-3), dict(warmup=10)),
    (functools.partial(gradkit.spam, 1e-3), dict(seed=1)),
    (functools.partial(gradkit.spam, 1e-3), dict(count_every=1)),
    (gradkit.scale_by_stable_spam, dict(count_every=1)),
])
def test_unknown_argument_names_raise(factory, kwargs):
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        factory(**kwargs)


@pytest.mark.parametrize("factory", [
    functools.partial(gradkit.spam, 1e-3), functools.partial(gradkit.stable_spam, 1e-3),
    gradkit.scale_by_spam, gradkit.scale_by_stable_spam])
def test_only_the_betas_are_positional(factory):
    factory(0.8, 0.99)
    with pytest.raises(TypeError, match="positional"):
        factory(0.8, 0.99, 1e-6)


def test_key_takes_an_int_or_a_jax_key():
    params = {"w": jnp.zeros((8, 8))}
    by_int = gradkit.scale_by_spam(density=0.25, key=3).init(params)
    by_key = gradkit.scale_by_spam(density=0.25, key=jax.random.key(3)).init(params)
    np.testing.assert_array_equal(by_int.index["w"], by_key.index["w"])
    np.testing.assert_array_equal(by_int.key, by_key.key)
    other = gradkit.scale_by_spam(density=0.25, key=4).init(params)
    assert not np.array_equal(by_int.index["w"], other.index["w"])
    with pytest.raises(TypeError, match="`key`"):
        gradkit.scale_by_spam(key="3")


# -- nu_dtype --------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["spam", "stable_spam", "clip_spikes"])
def test_bf16_params_keep_second_moment_in_float32(name):
    factories = {
        "spam": lambda **kw: gradkit.scale_by_spam(reset_interval=None, threshold=0.0, **kw),
        "stable_spam": lambda **kw: gradkit.scale_by_stable_spam(reset_interval=None, **kw),
        "clip_spikes": lambda **kw: gradkit.clip_spikes(threshold=0.0, **kw),
    }
    params = {"w": jnp.zeros(4, jnp.bfloat16)}
    grads = {"w": jnp.ones(4, jnp.bfloat16)}

    def nu_after(opt, steps=3000):
        state = opt.init(params)
        step = jax.jit(lambda s: opt.update(grads, s, params)[1])
        state = jax.lax.fori_loop(0, steps, lambda _, s: step(s), state)
        return np.asarray(optax.tree_utils.tree_get(state, "nu")["w"], np.float64)

    # ν → (1 − β₂³⁰⁰⁰)·E[d²] ≈ 0.950·E[d²]; d = g = 1, except Stable-SPAM's AdaGN
    # direction g/‖g‖·(n̂/√q̂) = g/‖g‖ = 1/2 on 4 entries.
    expected = (1.0 - 0.999**3000) * (0.25 if name == "stable_spam" else 1.0)
    nu = nu_after(factories[name]())
    assert optax.tree_utils.tree_get(factories[name]().init(params), "nu")["w"].dtype == (
        jnp.float32)
    np.testing.assert_allclose(nu, expected, rtol=1e-3)
    # nu_dtype=bfloat16 reproduces the stall (the EMA stops growing at ~1/4 of it).
    stalled = nu_after(factories[name](nu_dtype=jnp.bfloat16))
    assert np.all(stalled < 0.5 * expected)


def test_nu_dtype_defaults_to_params_dtype_for_float32_and_float64():
    state = gradkit.scale_by_spam().init({"w": jnp.zeros(3, jnp.float32)})
    assert state.nu["w"].dtype == jnp.float32


# -- no device arrays at construction --------------------------------------------------

CONSTRUCTORS = {
    "spam": lambda: gradkit.spam(1e-3),
    "spam_sparse": lambda: gradkit.spam(1e-3, density=0.25, weight_decay=0.1),
    "spam_no_reset": lambda: gradkit.spam(1e-3, reset_interval=None),
    "scale_by_spam": lambda: gradkit.scale_by_spam(mu_dtype=jnp.bfloat16),
    "stable_spam": lambda: gradkit.stable_spam(1e-3, total_steps=10),
    "clip_spikes": lambda: gradkit.clip_spikes(nu_dtype=jnp.float32, count_interval=5),
    "post_reset_warmup": lambda: gradkit.post_reset_warmup(500, 150),
    "with_periodic_reset": lambda: gradkit.with_periodic_reset(
        optax.chain(gradkit.clip_spikes(), optax.adam(1e-3)), reset_interval=500),
}


@pytest.mark.parametrize("name", sorted(CONSTRUCTORS))
def test_construction_creates_no_device_array(name):
    # Constructing an optimizer must not touch the backend (it may run before
    # jax.distributed.initialize): under a transfer guard that forbids every
    # host-to-device transfer, creating any jax.Array raises.
    with jax.transfer_guard("disallow"):
        CONSTRUCTORS[name]()


# -- learning rate ---------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(ALIASES))
@pytest.mark.parametrize("lr", [-1e-3, float("nan"), float("inf")])
def test_aliases_reject_negative_or_non_finite_learning_rate(name, lr):
    with pytest.raises(ValueError, match="`learning_rate`"):
        ALIASES[name](lr)


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_learning_rate_zero_freezes_the_params(name):
    opt = ALIASES[name](0.0, weight_decay=0.1)
    params = {"w": jnp.ones((4, 4))}
    updates, _ = jax.jit(opt.update)({"w": jnp.ones((4, 4))}, opt.init(params), params)
    np.testing.assert_array_equal(updates["w"], 0.0)


@pytest.mark.parametrize("name", sorted(ALIASES))
def test_aliases_have_no_default_learning_rate_and_take_schedules(name):
    with pytest.raises(TypeError):
        ALIASES[name]()
    ALIASES[name](optax.linear_schedule(1e-3, 0.0, 10))  # schedules are not validated


# -- optional spike count --------------------------------------------------------------

def test_count_interval_policies():
    g = {"w": jnp.array([1.0, 1.0, 1.0, 1.0])}
    spike = {"w": jnp.array([100.0, 1.0, 1.0, 100.0])}
    seen = {}
    for interval in (None, 1, 3):
        opt = gradkit.scale_by_spam(reset_interval=None, clip_delay=2, threshold=5000.0,
                                    count_interval=interval)
        state = opt.init(g)
        update = jax.jit(opt.update)
        counts = []
        for t in range(1, 7):
            _, state = update(spike if t in (2, 3, 6) else g, state)
            counts.append(None if state.num_clipped is None else int(state.num_clipped))
        seen[interval] = counts
    assert seen[None] == [None] * 6
    assert seen[1] == [0, 2, 2, 0, 0, 2]
    assert seen[3] == [0, 0, 2, 2, 2, 2]  # counted at t = 3 and t = 6
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="`count_interval`"):
            gradkit.spam(1e-3, count_interval=bad)


@pytest.mark.parametrize("name", ["spam", "stable_spam", "clip_spikes"])
def test_spike_count_is_absent_from_the_state_when_off(name):
    factories = {
        "spam": lambda **kw: gradkit.spam(1e-3, **kw),
        "stable_spam": lambda **kw: gradkit.stable_spam(1e-3, **kw),
        "clip_spikes": gradkit.clip_spikes,
    }
    params = {"w": jnp.zeros((4, 4))}
    off = factories[name]().init(params)
    on = factories[name](count_interval=1).init(params)
    assert optax.tree_utils.tree_get(off, "num_clipped") is None
    assert optax.tree_utils.tree_get(on, "num_clipped").dtype == jnp.int32
    assert len(jax.tree.leaves(on)) == len(jax.tree.leaves(off)) + 1


def test_spike_count_is_free_when_off():
    # With the count off the compiled SPAM update has no reduction over the params.
    opt = gradkit.scale_by_spam()
    p = {"w": jnp.zeros((64, 64))}
    assert "reduce" not in jax.jit(opt.update).lower(p, opt.init(p)).as_text()
    on = gradkit.scale_by_spam(count_interval=1)
    assert "reduce" in jax.jit(on.update).lower(p, on.init(p)).as_text()
