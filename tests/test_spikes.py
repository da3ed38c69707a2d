# SPDX-License-Identifier: Apache-2.0
"""Tests for gradkit.spikes: clip_spikes, with_periodic_reset, post_reset_warmup, SPAM,
Stable-SPAM. The generic optax behaviour is covered by tests/test_conformance.py."""

from __future__ import annotations

import functools
import json
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized

import gradkit
from tests import helpers

# --------------------------------------------------------------------------------------
# NumPy transcriptions of the official optimizers' step (one tensor per dict entry),
# written from the official code's behaviour, to compare whole trajectories against.


def _official_warmup_scale(current_step: int, n: int) -> float:
    """1 − CosineDecay(0.99, n).get_dr(current_step) of the official SPAM code."""
    if current_step >= n:
        return 1.0
    return 1.0 - 0.99 * 0.5 * (1.0 + math.cos(math.pi * current_step / (n + 1)))


def _reference_spam(params, grads_fn, steps, *, lr, b1, b2, eps, theta, delta_t, n_warm,
                    clip_delay):
    """The official SPAM ``AdamW.step`` (density 1, weight decay 0), in float64."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(x) for k, x in p.items()}
    total_step, current_step = 0, n_warm + 1
    clipped = []
    for i in range(steps):
        scale = _official_warmup_scale(current_step, n_warm)
        g_all = grads_fn(i)
        n_clip = 0
        for k in p:
            g = np.asarray(g_all[k], np.float64).copy()
            if (total_step + 1) % delta_t == 0:
                m[k] = np.zeros_like(g)
                v[k] = np.zeros_like(g)
            t = total_step + 1
            if t >= clip_delay and t % delta_t >= clip_delay:
                mask = g**2 > theta * v[k]
                g[mask] = np.sign(g[mask]) * np.sqrt(v[k][mask] * theta)
                n_clip += int(mask.sum())
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            step_size = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
            p[k] = p[k] - step_size * scale * m[k] / (np.sqrt(v[k]) + eps)
        clipped.append(n_clip)
        total_step += 1
        current_step += 1
        if (total_step + 1) % delta_t == 0:
            current_step = 0
    return p, clipped


def _reference_stable_spam(params, grads_fn, steps, *, lr, b1, b2, gamma1, gamma2, gamma3,
                           eps, total_t, eta_min, delta_t):
    """The official ``StableSPAM.step`` (weight decay 0), in float64, with m and v zeroed
    before the update at a reset step as the paper (the official file does it one step
    late, see ``test_reset_step_updates_from_fresh_moments_as_the_paper``)."""
    p = {k: np.asarray(x, np.float64) for k, x in params.items()}
    st = {k: dict(step=0, m=np.zeros_like(x), v=np.zeros_like(x), mn=0.0, vn=0.0, mmax=0.0)
          for k, x in p.items()}
    for i in range(steps):
        total = i + 1
        scale = eta_min + (1 - eta_min) * 0.5 * (1 + math.cos(math.pi * total / (total_t + 1)))
        g_all = grads_fn(i)
        for k in p:
            s = st[k]
            g = np.asarray(g_all[k], np.float64).copy()
            max_g = np.max(np.abs(g))
            s["step"] += 1
            s["mmax"] = gamma3 * s["mmax"] + (1 - gamma3) * max_g
            mmax_hat = s["mmax"] / (1 - gamma3 ** s["step"])
            mask = np.abs(g) > mmax_hat
            g[mask] = g[mask] / max_g * mmax_hat
            norm = np.linalg.norm(g)
            s["mn"] = gamma1 * scale * s["mn"] + (1 - gamma1 * scale) * norm
            s["vn"] = gamma2 * s["vn"] + (1 - gamma2) * norm**2
            mn_hat = s["mn"] / (1 - (gamma1 * scale) ** s["step"])
            vn_hat = s["vn"] / (1 - gamma2 ** s["step"])
            c = mn_hat / (math.sqrt(vn_hat) + eps)
            if norm > 0:
                g = g / norm * c
            if total % delta_t == 0:
                s["m"] = np.zeros_like(g)
                s["v"] = np.zeros_like(g)
                s["step"] = 1
            beta1 = b1 * scale
            bc1 = 1 - beta1 ** s["step"]
            bc2 = 1 - b2 ** s["step"]
            s["m"] = beta1 * s["m"] + (1 - beta1) * g
            s["v"] = b2 * s["v"] + (1 - b2) * g * g
            denom = np.sqrt(s["v"]) / math.sqrt(bc2) + eps
            p[k] = p[k] - lr / bc1 * s["m"] / denom
    return p


def _noisy_grads_with_spikes(params, spike_steps, seed=0):
    """Step-indexed gradients: N(0, 1) noise, ×1e4 at `spike_steps`."""
    def grads_fn(i):
        g = helpers.random_like(params, seed=seed + i)
        if i in spike_steps:
            g = jax.tree.map(lambda x: x * 1e4, g)
        return g
    return grads_fn


def _run(opt, params, grads_fn, steps):
    state = opt.init(params)
    step = jax.jit(opt.update)
    clipped = []
    for i in range(steps):
        updates, state = step(grads_fn(i), state, params)
        params = optax.apply_updates(params, updates)
        n = optax.tree_utils.tree_get(state, "num_clipped", None)  # None: not counted
        clipped.append(0 if n is None else int(n))
    return params, state, clipped


SMALL = {"w": jnp.zeros((3, 4)), "b": jnp.zeros((4,))}


# --------------------------------------------------------------------------------------
# SPAM


class SpamClosedFormTest(chex.TestCase):

    def test_two_steps_with_a_spike_by_hand(self):
        # b1 = b2 = 1/2, θ = 4, ε = 0, clipping from t = 2, no reset.
        opt = gradkit.scale_by_spam(b1=0.5, b2=0.5, eps=0.0, threshold=4.0, count_interval=1,
                                    reset_interval=None, clip_delay=2)
        params = {"a": jnp.zeros(3)}
        state = opt.init(params)
        u1, state = opt.update({"a": jnp.array([1.0, -2.0, 0.5])}, state)
        # First Adam step is sign(g) (ε = 0).
        np.testing.assert_allclose(u1["a"], [1.0, -1.0, 1.0], rtol=1e-6)
        assert int(state.num_clipped) == 0
        # v1 = g1²/2 = [0.5, 2, 0.125]; bound √(θ v1) = [√2, √8, √0.5].
        g2 = jnp.array([100.0, -100.0, 0.5])  # two spikes, one normal entry
        u2, state = opt.update({"a": g2}, state)
        g2c = np.array([math.sqrt(2.0), -math.sqrt(8.0), 0.5])
        m2 = 0.25 * np.array([1.0, -2.0, 0.5]) + 0.5 * g2c
        v2 = 0.25 * np.array([1.0, 4.0, 0.25]) + 0.5 * g2c**2
        expected = math.sqrt(1 - 0.25) / (1 - 0.25) * m2 / np.sqrt(v2)
        np.testing.assert_allclose(u2["a"], expected, rtol=1e-5)
        np.testing.assert_allclose(state.nu["a"], v2, rtol=1e-6)
        assert int(state.num_clipped) == 2

    def test_matches_official_trajectory_with_resets_spikes_and_warmup(self):
        params = {"w": jnp.zeros((3, 4)), "b": jnp.zeros((4,))}
        spikes = {12, 27, 33, 47}
        grads_fn = _noisy_grads_with_spikes(params, spikes)
        hp = dict(b1=0.9, b2=0.999, eps=1e-6, threshold=50.0)
        steps, delta_t, n_warm, delay = 60, 20, 8, 5
        opt = gradkit.spam(1e-2, reset_interval=delta_t, warmup_steps=n_warm, clip_delay=delay,
                           count_interval=1, **hp)
        got, _, clipped = _run(opt, params, grads_fn, steps)
        ref, ref_clipped = _reference_spam(
            params, grads_fn, steps, lr=1e-2, theta=hp["threshold"], b1=hp["b1"],
            b2=hp["b2"], eps=hp["eps"], delta_t=delta_t, n_warm=n_warm, clip_delay=delay)
        for k in params:
            np.testing.assert_allclose(got[k], ref[k], rtol=2e-4, atol=2e-5)
        assert clipped == ref_clipped
        # The spikes at steps 12, 27, 33, 47 (0-based) are all clipped; the one at
        # 0-based step 20 would not be (t % ΔT = 1 < clip delay), none is there.
        assert all(clipped[i] > 0 for i in spikes)

    def test_reset_happens_exactly_at_multiples_of_interval(self):
        b1, delta_t = 0.9, 5
        opt = gradkit.scale_by_spam(b1=b1, reset_interval=delta_t, threshold=0.0)
        params = {"a": jnp.zeros(2)}
        state = opt.init(params)
        g = {"a": jnp.array([1.0, -1.0])}
        since = 0
        for t in range(1, 13):
            _, state = opt.update(g, state)
            since = 1 if t % delta_t == 0 else since + 1
            # Constant g: m = (1 − b1^n)·g with n the steps since the last reset.
            np.testing.assert_allclose(state.mu["a"], (1 - b1**since) * g["a"], rtol=1e-6)
            assert int(state.count) == t  # the bias-correction count is never reset

    def test_reset_count_option_restarts_bias_correction(self):
        opt = gradkit.scale_by_spam(reset_interval=3, threshold=0.0, reset_count=True,
                                    eps=0.0)
        state = opt.init({"a": jnp.zeros(2)})
        for _ in range(3):
            u, state = opt.update({"a": jnp.array([2.0, -3.0])}, state)
        # At the reset step the update is a debiased first step again: sign(g).
        np.testing.assert_allclose(u["a"], [1.0, -1.0], rtol=1e-6)
        official = gradkit.scale_by_spam(reset_interval=3, threshold=0.0, eps=0.0)
        state = official.init({"a": jnp.zeros(2)})
        for _ in range(3):
            u, state = official.update({"a": jnp.array([2.0, -3.0])}, state)
        b1, b2, t = 0.9, 0.999, 3
        # Official: m = (1−b1)g, v = (1−b2)g², debiased with t = 3.
        expected = math.sqrt(1 - b2**t) / (1 - b1**t) * (1 - b1) / math.sqrt(1 - b2)
        np.testing.assert_allclose(u["a"], [expected, -expected], rtol=1e-5)

    @parameterized.parameters(0.0, 1e-3)
    def test_equals_optax_adam_without_clip_reset_and_sparsity(self, eps):
        # optax adds ε to √v̂; the official SPAM adds it to √v (then debiases). With
        # eps_convention="optax" the two agree for every ε; with the official
        # convention only for ε = 0.
        params = helpers.tiny_params()
        grads_fn = _noisy_grads_with_spikes(params, {3})
        spam = gradkit.scale_by_spam(eps=eps, threshold=math.inf, reset_interval=None,
                                     eps_convention="optax")
        adam = optax.scale_by_adam(eps=eps)
        p_spam, _, _ = _run(optax.chain(spam, optax.scale(-1e-2)), params, grads_fn, 8)
        p_adam, _, _ = _run(optax.chain(adam, optax.scale(-1e-2)), params, grads_fn, 8)
        chex.assert_trees_all_close(p_spam, p_adam, rtol=1e-5, atol=1e-6)
        official = gradkit.scale_by_spam(eps=eps, threshold=math.inf, reset_interval=None)
        p_off, _, _ = _run(optax.chain(official, optax.scale(-1e-2)), params, grads_fn, 8)
        if eps == 0.0:
            chex.assert_trees_all_close(p_off, p_adam, rtol=1e-5, atol=1e-6)
        else:
            diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in
                       zip(jax.tree.leaves(p_off), jax.tree.leaves(p_adam), strict=True))
            assert diff > 1e-6  # the conventions really differ for ε > 0

    def test_threshold_zero_disables_clipping(self):
        opt = gradkit.scale_by_spam(threshold=0.0, clip_delay=0, reset_interval=None,
                                    count_interval=1)
        state = opt.init({"a": jnp.zeros(2)})
        _, state = opt.update({"a": jnp.array([1.0, 1e6])}, state)
        assert int(state.num_clipped) == 0
        # (1 − b2 is computed in float32: 0.000999987.)
        np.testing.assert_allclose(state.nu["a"], 1e-3 * np.array([1.0, 1e12]), rtol=1e-4)


class WarmupScheduleTest(parameterized.TestCase):

    def test_values(self):
        sched = gradkit.post_reset_warmup(reset_interval=10, warmup_steps=9)
        # count = t − 1. No warm-up before the first reset.
        assert [float(sched(c)) for c in range(9)] == [1.0] * 9
        assert float(sched(9)) == pytest.approx(0.01)  # t = 10, the reset step: k = 0
        # k = 5 = (N+1)/2: cos(π/2) = 0, so 1 − 0.99/2.
        assert float(sched(14)) == pytest.approx(0.505, rel=1e-6)
        assert float(sched(18)) > float(sched(17)) > float(sched(16))
        assert float(sched(19)) == pytest.approx(0.01)  # next reset (N = 9 = ΔT − 1)

    def test_matches_official_cosine_decay_and_composes_with_base(self):
        base = optax.linear_schedule(1.0, 0.0, 1000)
        sched = gradkit.post_reset_warmup(500, 150, base=base)
        for t in (1, 499, 500, 501, 575, 649, 650, 651, 1000):
            official = 1.0 if t < 500 else _official_warmup_scale(t % 500, 150)
            assert float(sched(t - 1)) == pytest.approx(float(base(t - 1)) * official,
                                                        rel=1e-5, abs=1e-7)

    def test_spam_alias_applies_warmup_but_not_to_weight_decay(self):
        params = {"a": jnp.ones(2)}
        opt = gradkit.spam(1.0, reset_interval=3, warmup_steps=2, weight_decay=0.5,
                           threshold=0.0, eps=0.0)
        state = opt.init(params)
        g = {"a": jnp.array([1.0, -1.0])}
        for _ in range(3):
            u, state = opt.update(g, state, params)
        direction = math.sqrt(1 - 0.999**3) / (1 - 0.9**3) * 0.1 / math.sqrt(1e-3)
        expected = -(0.01 * direction * np.array([1.0, -1.0]) + 0.5 * np.ones(2))
        np.testing.assert_allclose(u["a"], expected, rtol=1e-5)


class SparseMomentumTest(chex.TestCase):

    def test_state_holds_only_masked_entries(self):
        params = {"w": jnp.zeros((8, 4)), "b": jnp.zeros((4,)), "k": jnp.zeros((2, 2, 2))}
        state = gradkit.scale_by_spam(density=0.25).init(params)
        assert state.mu["w"].shape == (8,) and state.nu["w"].shape == (8,)
        assert state.index["w"].dtype == jnp.int32 and state.index["w"].shape == (8,)
        assert len(set(np.asarray(state.index["w"]).tolist())) == 8  # distinct
        assert state.mu["b"].shape == (4,) and state.mu["k"].shape == (2, 2, 2)  # dense
        assert state.key.dtype == jnp.uint32

    def test_bytes_per_param_at_quarter_density(self):
        params = {"w": jnp.zeros((256, 256))}
        nbytes = lambda s: sum(x.nbytes for x in jax.tree.leaves(s))  # noqa: E731
        adam = nbytes(optax.scale_by_adam().init(params)) / 256**2
        dense = nbytes(gradkit.scale_by_spam().init(params)) / 256**2
        sparse = nbytes(gradkit.scale_by_spam(density=0.25).init(params)) / 256**2
        assert adam == pytest.approx(8.0, abs=1e-3)
        assert dense == pytest.approx(8.0, abs=1e-3)
        assert sparse == pytest.approx(3.0, abs=1e-3)  # 4 (m) + 4 (v) + 4 (index) × 0.25

    def test_masked_entries_follow_adam_and_others_get_no_update(self):
        params = {"w": jnp.zeros((6, 5))}
        grads_fn = _noisy_grads_with_spikes(params, set())
        kw = dict(threshold=math.inf, reset_interval=None, eps_convention="optax")
        sparse = gradkit.scale_by_spam(density=0.4, **kw)
        state = sparse.init(params)
        dense_state = optax.scale_by_adam().init(params)
        idx = np.asarray(state.index["w"])
        update = jax.jit(sparse.update)
        for i in range(4):
            u, state = update(grads_fn(i), state)
            ud, dense_state = optax.scale_by_adam().update(grads_fn(i), dense_state)
        flat = np.asarray(u["w"]).reshape(-1)
        np.testing.assert_allclose(flat[idx], np.asarray(ud["w"]).reshape(-1)[idx],
                                   rtol=1e-5)
        others = np.setdiff1d(np.arange(30), idx)
        assert np.all(flat[others] == 0.0)

    def test_masks_redrawn_at_each_reset_overlap_moments_kept(self):
        params = {"w": jnp.zeros((10, 10))}
        opt = gradkit.scale_by_spam(density=0.5, reset_interval=4, threshold=0.0,
                                    reset_moments=False)
        state = opt.init(params)
        g = {"w": jnp.arange(100.0).reshape(10, 10) + 1.0}
        indices = [np.asarray(state.index["w"])]
        update = jax.jit(opt.update)
        for _ in range(4):
            old_state = state
            _, state = update(g, state)
            indices.append(np.asarray(state.index["w"]))
        # Unchanged for t = 1..3, re-drawn at t = 4.
        assert all(np.array_equal(indices[0], x) for x in indices[1:4])
        assert not np.array_equal(indices[3], indices[4])
        # Moments on the overlap were carried over (then updated), new entries start at 0.
        old_idx, new_idx = indices[3], indices[4]
        old_mu = dict(zip(old_idx.tolist(), np.asarray(old_state.mu["w"]).tolist(),
                          strict=True))
        gf = np.asarray(g["w"]).reshape(-1)
        for j, e in enumerate(new_idx.tolist()):
            carried = old_mu.get(e, 0.0)
            np.testing.assert_allclose(state.mu["w"][j], 0.9 * carried + 0.1 * gf[e],
                                       rtol=1e-5)
        assert 0 < len(set(old_idx) & set(new_idx)) < 50

    def test_inject_hyperparams_needs_static_density(self):
        opt = optax.inject_hyperparams(gradkit.spam, static_args=("density",))(
            learning_rate=1e-2, density=0.5)
        params = {"w": jnp.zeros((4, 4))}
        state = opt.init(params)
        updates, state = jax.jit(opt.update)({"w": jnp.ones((4, 4))}, state, params)
        assert int(jnp.sum(updates["w"] != 0)) == 8


# --------------------------------------------------------------------------------------
# Composable pieces


class ClipSpikesTest(chex.TestCase):

    def test_closed_form_and_warmup(self):
        opt = gradkit.clip_spikes(threshold=4.0, b2=0.5, clip_delay=1, count_interval=1)
        state = opt.init({"a": jnp.zeros(2)})
        # No clipping while ν holds fewer than clip_delay gradients.
        u, state = opt.update({"a": jnp.array([1.0, -1e6])}, state)
        np.testing.assert_allclose(u["a"], [1.0, -1e6])
        np.testing.assert_allclose(state.nu["a"], [0.5, 0.5e12], rtol=1e-6)
        u, state = opt.update({"a": jnp.array([100.0, 1.0])}, state)
        np.testing.assert_allclose(u["a"], [math.sqrt(2.0), 1.0], rtol=1e-6)
        assert int(state.num_clipped) == 1
        np.testing.assert_allclose(state.nu["a"], [0.25 + 1.0, 0.25e12 + 0.5], rtol=1e-6)

    def test_eps_floors_the_bound(self):
        opt = gradkit.clip_spikes(threshold=10.0, clip_delay=0, eps=4.0)
        u, _ = opt.update({"a": jnp.array([3.0, -1.0])}, opt.init({"a": jnp.zeros(2)}))
        np.testing.assert_allclose(u["a"], [2.0, -1.0])

    def test_chained_before_sgd_and_lion(self):
        for inner in (optax.sgd(1e-2), optax.lion(1e-3)):
            opt = optax.chain(
                gradkit.clip_spikes(threshold=25.0, b2=0.5, clip_delay=3, count_interval=1),
                inner)
            params = {"a": jnp.zeros(3)}
            grads_fn = _noisy_grads_with_spikes(params, {6})
            _, _, clipped = _run(opt, params, grads_fn, 8)
            assert clipped[6] == 3 and sum(clipped) == 3

    def test_with_periodic_reset_composition_equals_fused_spam(self):
        # clip_spikes + Adam, fully reset every ΔT = fused SPAM with reset_count=True
        # and the optax ε convention. (At the very start the fused form may clip one
        # step earlier, t = clip_delay; β₂ = 0.9 makes ν large enough that the N(0, 1)
        # noise is not clipped there.) Spikes at t = 13, 21, 29: t % 8 = 5 ≥ 4.
        params = {"w": jnp.zeros((3, 4))}
        grads_fn = _noisy_grads_with_spikes(params, {12, 20, 28}, seed=3)
        composed = gradkit.with_periodic_reset(
            optax.chain(
                gradkit.clip_spikes(threshold=50.0, b2=0.9, clip_delay=4, count_interval=1),
                optax.scale_by_adam(b2=0.9, eps=1e-6)),
            reset_interval=8, only="all")
        fused = gradkit.scale_by_spam(b2=0.9, threshold=50.0, reset_interval=8,
                                      clip_delay=4, reset_count=True, eps=1e-6,
                                      eps_convention="optax", count_interval=1)
        p1, _, c1 = _run(optax.chain(composed, optax.scale(-1e-2)), params, grads_fn, 30)
        p2, _, c2 = _run(optax.chain(fused, optax.scale(-1e-2)), params, grads_fn, 30)
        chex.assert_trees_all_close(p1, p2, rtol=1e-5, atol=1e-6)
        assert c1 == c2 and all(c1[i] > 0 for i in (12, 20, 28))


class WithPeriodicResetTest(chex.TestCase):

    def test_adam_state_reset_at_multiples(self):
        opt = gradkit.with_periodic_reset(optax.scale_by_adam(), reset_interval=3, only="all")
        state = opt.init({"a": jnp.zeros(2)})
        counts = []
        for _ in range(7):
            _, state = opt.update({"a": jnp.ones(2)}, state)
            counts.append(int(state.inner_state.count))
        # Re-initialised before the 3rd and 6th updates: Adam's count restarts.
        assert counts == [1, 2, 1, 2, 3, 1, 2]
        assert int(state.count) == 7

    def test_only_resets_selected_fields(self):
        opt = gradkit.with_periodic_reset(optax.scale_by_adam(), reset_interval=2,
                                          only=("mu", "nu"))
        state = opt.init({"a": jnp.zeros(2)})
        for _ in range(2):
            _, state = opt.update({"a": jnp.ones(2)}, state)
        assert int(state.inner_state.count) == 2  # kept
        np.testing.assert_allclose(state.inner_state.mu["a"], 0.1)  # reset, then 1 step

    def test_with_inject_hyperparams_and_schedule(self):
        inner = optax.inject_hyperparams(optax.adam)(
            learning_rate=optax.linear_schedule(1.0, 0.0, 10))
        opt = gradkit.with_periodic_reset(inner, reset_interval=4, only=("mu", "nu"))
        params = {"a": jnp.zeros(2)}
        state = opt.init(params)
        step = jax.jit(opt.update)
        for _ in range(5):
            _, state = step({"a": jnp.ones(2)}, state, params)
        assert int(state.inner_state.count) == 5  # the schedule was not restarted
        # The hyperparameter recorded is the one used by the 5th update (count 4).
        assert float(state.inner_state.hyperparams["learning_rate"]) == pytest.approx(0.6)


# --------------------------------------------------------------------------------------
# Stable-SPAM


class StableSpamTest(chex.TestCase):

    def test_first_step_is_adam_sign_step(self):
        # s = 1: M̂ = max|g| (nothing clipped), AdaGN keeps ‖g‖ (up to ε), so u = sign(g).
        opt = gradkit.scale_by_stable_spam(count_interval=1)
        u, state = opt.update({"a": jnp.array([3.0, -0.5, 0.0])},
                              opt.init({"a": jnp.zeros(3)}))
        np.testing.assert_allclose(u["a"], [1.0, -1.0, 0.0], atol=1e-6)
        assert int(state.num_clipped) == 0 and int(state.step) == 1

    def test_matches_official_trajectory(self):
        params = {"w": jnp.zeros((3, 4)), "b": jnp.zeros((4,))}
        grads_fn = _noisy_grads_with_spikes(params, {5, 13, 22})
        hp = dict(b1=0.9, b2=0.999, gamma1=0.7, gamma2=0.9, gamma3=0.999, eps=1e-8)
        opt = gradkit.stable_spam(1e-2, total_steps=40, reset_interval=10, count_interval=1,
                                  **hp)
        got, _, clipped = _run(opt, params, grads_fn, 30)
        ref = _reference_stable_spam(params, grads_fn, 30, lr=1e-2, total_t=40,
                                     eta_min=0.5, delta_t=10, **hp)
        for k in params:
            np.testing.assert_allclose(got[k], ref[k], rtol=2e-4, atol=2e-5)
        assert clipped[5] > 0

    def test_step_set_back_to_one_at_reset(self):
        opt = gradkit.scale_by_stable_spam(reset_interval=3)
        state = opt.init({"a": jnp.zeros(2)})
        steps = []
        for _ in range(7):
            _, state = opt.update({"a": jnp.ones(2)}, state)
            steps.append(int(state.step))
        assert steps == [1, 2, 1, 2, 3, 1, 2]

    def test_reset_step_updates_from_fresh_moments_as_the_paper(self):
        # Constant g, κ = 1, ε = 0: AdaClip keeps g and AdaGN gives d = g/‖g‖. At the
        # reset step T = 3 m and v are zeroed before the update, so it is a first Adam
        # step: m = (1 − β₁)d and u = sign(g). The official stablespam.py resets one
        # step late: its step-3 update advances the old moments, debiased with s = 1.
        b1, b2 = 0.9, 0.999
        opt = gradkit.scale_by_stable_spam(b1, b2, eps=0.0, reset_interval=3)
        g = {"a": jnp.array([2.0, -1.0])}
        state = opt.init(g)
        for _ in range(3):
            u, state = opt.update(g, state)
        d = g["a"] / jnp.linalg.norm(g["a"])
        np.testing.assert_allclose(state.mu["a"], (1 - b1) * d, rtol=1e-5)
        np.testing.assert_allclose(u["a"], [1.0, -1.0], rtol=1e-5)
        official = (1 - b1**3) / (1 - b1) / (math.sqrt(1 - b2**3) / math.sqrt(1 - b2))
        assert official == pytest.approx(1.565, abs=1e-3)  # the one-step-late reset


# --------------------------------------------------------------------------------------
# Shared behaviour: variants, devices, diagnostics, NaN/Inf, errors


FACTORIES = {
    "spam": lambda: gradkit.spam(1e-2, reset_interval=4, warmup_steps=2, clip_delay=2,
                                 count_interval=1),
    "spam_sparse": lambda: gradkit.spam(1e-2, density=0.5, reset_interval=4, clip_delay=2,
                                        count_interval=1),
    "stable_spam": lambda: gradkit.stable_spam(1e-2, total_steps=10, reset_interval=4,
                                               count_interval=1),
    "clip_adam": lambda: gradkit.with_periodic_reset(
        optax.chain(gradkit.clip_spikes(clip_delay=2, count_interval=1), optax.adam(1e-2)),
        reset_interval=4),
}


class VariantsTest(chex.TestCase):

    # Eager sparse updates are slow (op-by-op lax.cond); the sparse, Stable-SPAM and
    # composed forms run under jit and pmap in the next test and in conformance.
    @chex.variants(with_jit=True, without_jit=True, with_pmap=True)
    @parameterized.named_parameters(("spam", "spam"))
    def test_variants_agree(self, name):
        opt = FACTORIES[name]()
        params = helpers.tiny_params()
        grads_fn = _noisy_grads_with_spikes(params, {4})
        ref, _, _ = _run(opt, params, grads_fn, 6)
        update = self.variant(opt.update)
        state, p = opt.init(params), params
        for i in range(6):
            u, state = update(grads_fn(i), state, p)
            p = optax.apply_updates(p, u)
        chex.assert_trees_all_close(p, ref, rtol=1e-5, atol=1e-6)

    @parameterized.named_parameters(*[(k, k) for k in FACTORIES])
    def test_pmap_on_8_devices_matches_single_device_on_mean_gradient(self, name):
        n = jax.device_count()
        assert n == 8
        opt = FACTORIES[name]()
        params = helpers.tiny_params()
        per_device = [_noisy_grads_with_spikes(params, {3}, seed=10 * d) for d in range(n)]

        def grads(i):
            return jax.tree.map(lambda *x: jnp.stack(x), *[f(i) for f in per_device])

        @functools.partial(jax.pmap, axis_name="batch")
        def step(g, state, p):
            g = jax.lax.pmean(g, "batch")
            u, state = opt.update(g, state, p)
            return optax.apply_updates(p, u), state

        rep = lambda t: jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *x.shape)), t)  # noqa: E731
        p_dev, s_dev = rep(params), rep(opt.init(params))
        state, p = opt.init(params), params
        single = jax.jit(opt.update)
        for i in range(6):
            g = grads(i)
            p_dev, s_dev = step(g, s_dev, p_dev)
            u, state = single(jax.tree.map(lambda x: jnp.mean(x, 0), g), state, p)
            p = optax.apply_updates(p, u)
        for d in (0, n - 1):
            on_device = jax.tree.map(lambda x, d=d: x[d], p_dev)
            chex.assert_trees_all_close(on_device, p, rtol=1e-5, atol=1e-6)


class DiagnosticsAndNonFiniteTest(chex.TestCase):

    @parameterized.named_parameters(*[(k, k) for k in FACTORIES])
    def test_num_clipped_found_with_tree_get(self, name):
        opt = FACTORIES[name]()
        params = {"w": jnp.zeros((4, 4))}
        state = opt.init(params)
        update = jax.jit(opt.update)
        for i in range(3):
            g = {"w": jnp.full((4, 4), 1e6 if i == 2 else 1.0)}
            _, state = update(g, state, params)
        n = optax.tree_utils.tree_get(state, "num_clipped")
        assert n.dtype == jnp.int32 and n.shape == ()
        assert int(n) > 0

    def test_spam_huge_spike_is_bounded(self):
        opt = gradkit.scale_by_spam(reset_interval=None, clip_delay=2, count_interval=1)
        params = {"a": jnp.zeros(4)}
        state = opt.init(params)
        for _ in range(3):
            _, state = opt.update({"a": jnp.ones(4)}, state)
        nu_before = state.nu["a"]
        u, state = opt.update({"a": jnp.full(4, 1e6)}, state)
        # The clipped value √(θν) enters ν: at most (β2 + (1−β2)θ)·ν_before.
        assert np.all(np.asarray(state.nu["a"]) <= (0.999 + 0.001 * 5000) * nu_before * 1.0001)
        assert np.all(np.abs(np.asarray(u["a"])) < 10.0)
        assert int(state.num_clipped) == 4

    def test_inf_is_clipped_nan_propagates(self):
        opt = gradkit.scale_by_spam(reset_interval=None, clip_delay=2, count_interval=1)
        state = opt.init({"a": jnp.zeros(3)})
        _, state = opt.update({"a": jnp.ones(3)}, state)
        u, state = opt.update({"a": jnp.array([jnp.inf, -jnp.inf, 1.0])}, state)
        assert np.all(np.isfinite(np.asarray(u["a"])))
        np.testing.assert_allclose(np.sign(u["a"]), [1.0, -1.0, 1.0])
        u, state = opt.update({"a": jnp.array([jnp.nan, 1.0, 1.0])}, state)
        assert np.isnan(float(u["a"][0])) and np.all(np.isfinite(np.asarray(u["a"][1:])))

    @parameterized.named_parameters(*[(k, k) for k in FACTORIES])
    def test_apply_if_finite_skips_nonfinite_steps(self, name):
        opt = optax.apply_if_finite(FACTORIES[name](), max_consecutive_errors=3)
        params = {"w": jnp.ones((4, 4))}
        state = opt.init(params)
        step = jax.jit(opt.update)
        u, state = step({"w": jnp.ones((4, 4))}, state, params)
        params = optax.apply_updates(params, u)
        bad = {"w": jnp.ones((4, 4)).at[0, 0].set(jnp.nan)}
        u, state_bad = step(bad, state, params)
        assert np.all(np.asarray(u["w"]) == 0.0)
        assert int(state_bad.notfinite_count) == 1
        chex.assert_trees_all_equal(state_bad.inner_state, state.inner_state)
        u, state = step({"w": jnp.ones((4, 4)).at[1, 1].set(jnp.inf)}, state_bad, params)
        assert int(state.notfinite_count) == 2
        u, state = step({"w": 0.5 * jnp.ones((4, 4))}, state, params)
        assert int(state.notfinite_count) == 0
        assert np.all(np.isfinite(np.asarray(u["w"]))) and np.any(np.asarray(u["w"]) != 0)

    @parameterized.named_parameters(*[(k, k) for k in FACTORIES])
    def test_mismatched_pytree_raises(self, name):
        opt = FACTORIES[name]()
        state = opt.init({"w": jnp.zeros((4, 4)), "b": jnp.zeros(4)})
        with pytest.raises((ValueError, TypeError)):
            opt.update({"w": jnp.zeros((4, 4))}, state, {"w": jnp.zeros((4, 4))})


_spam = functools.partial(gradkit.spam, 1e-3)
_stable_spam = functools.partial(gradkit.stable_spam, 1e-3)

BAD_ARGS = [
    (_spam, dict(b1=1.0), "b1"),
    (_spam, dict(b2=-0.1), "b2"),
    (_spam, dict(eps=-1.0), "eps"),
    (_spam, dict(threshold=-1.0), "threshold"),
    (_spam, dict(reset_interval=2.5), "reset_interval"),
    (_spam, dict(reset_interval=-3), "reset_interval"),
    (_spam, dict(clip_delay=-1), "clip_delay"),
    (_spam, dict(density=0.0), "density"),
    (_spam, dict(density=1.5), "density"),
    (_spam, dict(warmup_steps=-1), "warmup_steps"),
    (_spam, dict(weight_decay=-1.0), "weight_decay"),
    (_spam, dict(eps_convention="torch"), "eps_convention"),
    (_stable_spam, dict(gamma1=1.5), "gamma1"),
    (_stable_spam, dict(gamma2=1.0), "gamma2"),
    (_stable_spam, dict(gamma3=-0.5), "gamma3"),
    (_stable_spam, dict(eta_min=2.0), "eta_min"),
    (_stable_spam, dict(total_steps=0), "total_steps"),
    (_stable_spam, dict(reset_interval=-1), "reset_interval"),
    (gradkit.clip_spikes, dict(threshold=-5.0), "threshold"),
    (gradkit.clip_spikes, dict(clip_delay=-1), "clip_delay"),
    (gradkit.clip_spikes, dict(b2=1.0), "b2"),
    (gradkit.post_reset_warmup, dict(reset_interval=0), "reset_interval"),
    (gradkit.post_reset_warmup, dict(initial_scale=1.5), "initial_scale"),
]


@pytest.mark.parametrize(("factory", "kwargs", "name"), BAD_ARGS)
def test_bad_hyperparameters_raise(factory, kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        factory(**kwargs)


def test_with_periodic_reset_bad_interval():
    with pytest.raises(ValueError, match="`reset_interval`"):
        gradkit.with_periodic_reset(optax.adam(1e-3), reset_interval=0)


# --------------------------------------------------------------------------------------
# Fault injection: a small MLP on generated data, gradient spikes of 1e3..1e6×.


def _fault_injection_final_losses(opt, steps=600, first=150, every=150):
    """Final losses (clean, spiked) of a tiny MLP trained with `opt`; spikes of ×1e3,
    ×1e4, ×1e5 on the whole gradient at steps 150, 300, 450 (0-based)."""
    kx, kw1, kw2, kp1, kp2 = jax.random.split(jax.random.key(0), 5)
    x = jax.random.normal(kx, (128, 8))
    y = jnp.tanh(x @ jax.random.normal(kw1, (8, 16)) / math.sqrt(8)) @ (
        jax.random.normal(kw2, (16, 1)) / 4.0)
    params = {"w1": jax.random.normal(kp1, (8, 32)) / math.sqrt(8), "b1": jnp.zeros(32),
              "w2": jax.random.normal(kp2, (32, 1)) / math.sqrt(32), "b2": jnp.zeros(1)}

    def loss_fn(p):
        return jnp.mean((jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"] - y) ** 2)

    scales = jnp.asarray([1e3, 1e4, 1e5, 1e6])

    @jax.jit
    def train(spikes):
        def body(carry, t):
            p, s = carry
            g = jax.grad(loss_fn)(p)
            hit = spikes & (t >= first) & ((t - first) % every == 0)
            factor = jnp.where(hit, scales[((t - first) // every) % 4], 1.0)
            u, s = opt.update(jax.tree.map(lambda a: a * factor, g), s, p)
            return (optax.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(body, (params, opt.init(params)), jnp.arange(steps))
        return loss_fn(p)

    return float(train(jnp.asarray(False))), float(train(jnp.asarray(True)))


def test_fault_injection_adam_damaged_spam_not():
    # SPAM's reset (0-based step 499) and its 20-step clip pause are away from the
    # spikes. Measured (CPU, this seed): Adam's final loss ×12 (2.2e-3 → 2.6e-2), SPAM's
    # ×3.2 (5.6e-4 → 1.8e-3): a clipped spike (√θ ≈ 70× the RMS) still inflates v 6×.
    adam_clean, adam_spiked = _fault_injection_final_losses(optax.adam(1e-3))
    spam_clean, spam_spiked = _fault_injection_final_losses(gradkit.spam(1e-3))
    adam_ratio, spam_ratio = adam_spiked / adam_clean, spam_spiked / spam_clean
    assert adam_ratio > 8.0, (adam_clean, adam_spiked)
    assert spam_ratio < 0.5 * adam_ratio, (spam_ratio, adam_ratio)
    assert spam_spiked < 0.2 * adam_spiked, (spam_spiked, adam_spiked)


@pytest.mark.slow
def test_example_runs_end_to_end(tmp_path):
    from examples.spikes import train
    from examples.spikes.configs import default

    config = default.get_config()
    config.update(steps=40, spike_first=20, spike_interval=10, log_interval=10,
                  optimizers=("adam", "spam"), also_clean=False, progress=False)
    train.train_and_evaluate(config, str(tmp_path))
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert {r["optimizer"] for r in rows} == {"adam", "spam"} and len(rows) == 8
    assert any(r["num_clipped"] > 0 for r in rows if r["optimizer"] == "spam")
    assert (tmp_path / "spikes.png").stat().st_size > 0
    assert set(json.load(open(tmp_path / "summary.json"))) == {"adam", "spam"}
