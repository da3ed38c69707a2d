# SPDX-License-Identifier: Apache-2.0
"""GCond (gradkit.gcond): transcription of the reference rule, angle map, accumulation."""

from __future__ import annotations

import collections
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradkit


class _ReferenceGCond:
    """Float64 NumPy transcription of the reference GradientConductor's smooth logic
    (``_project``, ``_run_arbitrator``, ``_get_effective_alpha``, ``_momentum_update``)
    on flat vectors, written from its description in docs/multitask.md."""

    def __init__(self, k, dim, thresholds=(-0.8, -0.5, 0.0), beta=0.85, ema_beta=0.95,
                 weights=(0.8, 0.2), window=3, power=2.0, eps=1e-8):
        self.k, self.thr, self.beta, self.ema_beta = k, thresholds, beta, ema_beta
        self.weights, self.window, self.power, self.eps = weights, window, power, eps
        self.prev = [np.zeros(dim) for _ in range(k)]
        self.ema = [1.0] * k
        self.history = collections.deque(maxlen=window)
        self.m = np.zeros(dim)
        self.t = 0
        self.num_proj = 0

    def alpha(self, c):
        t_crit, t_main, t_weak = self.thr
        c = min(max(c, -1.0), 1.0)
        if c >= t_main:
            u = min(max((c - t_main) / (t_weak - t_main + self.eps), 0.0), 1.0)
            return math.pi / 2 * (1 - u)
        if c > t_crit:
            u = (c - t_main) / (t_crit - t_main + self.eps)
            return math.pi / 2 + math.pi / 2 * u**self.power
        return math.pi

    def arbitrate(self, i, j, g):
        if self.window > 0 and len(self.history) == self.window:
            i_dom = self.history.count(i) == self.window
            j_dom = self.history.count(j) == self.window
            if i_dom and not j_dom:
                return j, i
            if j_dom and not i_dom:
                return i, j
        n_i, n_j = np.linalg.norm(g[i]), np.linalg.norm(g[j])
        st_i = g[i] @ self.prev[i] / (n_i * np.linalg.norm(self.prev[i]) + self.eps)
        st_j = g[j] @ self.prev[j] / (n_j * np.linalg.norm(self.prev[j]) + self.eps)
        s_i, s_j = n_i / (self.ema[i] + self.eps), n_j / (self.ema[j] + self.eps)
        str_i, str_j = s_i / (s_i + s_j + self.eps), s_j / (s_i + s_j + self.eps)
        w_st, w_str = self.weights
        score_i = w_st * max(st_i, 0.0) + w_str * str_i
        score_j = w_st * max(st_j, 0.0) + w_str * str_j
        return (j, i) if score_j > score_i else (i, j)

    def step(self, grads):
        g = [np.array(x, np.float64) for x in grads]
        for i in range(self.k):
            new = self.ema_beta * self.ema[i] + (1 - self.ema_beta) * np.linalg.norm(g[i])
            self.ema[i] = max(new, self.eps)
        self.num_proj = 0
        for _ in range(2 * self.k):
            best, pair = self.thr[2], None
            for i in range(self.k):
                for j in range(i + 1, self.k):
                    sq_i, sq_j = g[i] @ g[i], g[j] @ g[j]
                    if sq_i < self.eps or sq_j < self.eps:
                        continue
                    dot = g[i] @ g[j]
                    cos = dot / (math.sqrt(sq_i * sq_j) + self.eps)
                    if cos < best:
                        best, pair = cos, (i, j, dot, sq_i, sq_j)
            if pair is None:
                break
            self.num_proj += 1
            i, j, dot, sq_i, sq_j = pair
            w, lo = self.arbitrate(i, j, g)
            if self.window > 0:
                self.history.append(w)
            n_w, n_l = (sq_i, sq_j) if w == i else (sq_j, sq_i)
            a = self.alpha(best)
            s_w, s_l = math.sin(a), math.sin(min(a, math.pi / 2))
            g_w, g_l = g[w].copy(), g[lo].copy()
            g[w] = g_w - s_w * dot / (n_l + self.eps) * g_l
            g[lo] = g_l - s_l * dot / (n_w + self.eps) * g_w
        total = np.sum(g, axis=0)
        self.prev = g
        self.t += 1
        self.m = self.beta * self.m + (1 - self.beta) * total
        return self.m / (1 - self.beta**self.t)


def _random_task_grads(rng, k, dim):
    # Random directions with a shared negative drift and varied norms: frequent conflicts
    # across all three angle zones.
    base = rng.normal(size=dim)
    out = []
    for i in range(k):
        sign = -1.0 if i % 2 else 1.0
        out.append((sign * base * rng.uniform(0.2, 1.5) + rng.normal(size=dim))
                   * rng.uniform(0.3, 3.0))
    return np.stack(out)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_matches_transcription_over_random_gradient_sets(k):
    rng = np.random.default_rng(k)
    dim = 7
    ref = _ReferenceGCond(k, dim)
    opt = gradkit.gcond(num_tasks=k)
    params = {"a": jnp.zeros(3), "b": jnp.zeros(4)}
    state = opt.init(params)
    zones, total_proj = set(), 0
    for _ in range(12):
        g = _random_task_grads(rng, k, dim)
        want = ref.step(g)
        stacked = {"a": jnp.asarray(g[:, :3], jnp.float32),
                   "b": jnp.asarray(g[:, 3:], jnp.float32)}
        cos = [g[i] @ g[j] / np.linalg.norm(g[i]) / np.linalg.norm(g[j])
               for i in range(k) for j in range(i + 1, k)]
        zones |= {int(np.digitize(min(cos), [-0.8, -0.5, 0.0]))}
        out, state = opt.update(stacked, state, params)
        got = np.concatenate([out["a"], out["b"]])
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)
        assert int(state.num_projections) == ref.num_proj
        np.testing.assert_array_equal(np.asarray(state.history)[-len(ref.history):],
                                      list(ref.history))
        total_proj += ref.num_proj
    assert total_proj > 0 and len(zones) >= 2  # the loop and several angle zones were hit


def test_effective_angle_zones():
    f = lambda c: float(gradkit.gcond_effective_angle(jnp.asarray(c)))  # noqa: E731
    assert f(0.2) == pytest.approx(0.0, abs=1e-6)  # u clipped to 1 above t_weak
    assert f(0.0) == pytest.approx(0.0, abs=1e-6)
    assert f(-0.25) == pytest.approx(math.pi / 4, rel=1e-5)
    assert f(-0.5) == pytest.approx(math.pi / 2, rel=1e-6)
    assert f(-0.65) == pytest.approx(math.pi / 2 * (1 + 0.25), rel=1e-5)  # u' = 0.5, p = 2
    assert f(-0.9) == pytest.approx(math.pi)


def test_two_opposed_tasks_closed_form_first_step():
    # cos = -1 (critical): α = π, the loser is projected fully, the winner unchanged
    # (sin π ≈ 0). Equal norms, zero stability on step 1: strengths tie, task 0 wins.
    opt = gradkit.gcond(num_tasks=2, momentum=0.0)
    g = {"w": jnp.array([[1.0, 0.0], [-1.0, 0.0]])}
    out, state = opt.update(g, opt.init({"w": jnp.zeros(2)}))
    np.testing.assert_allclose(out["w"], [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(state.prev["w"], [[1.0, 0.0], [0.0, 0.0]], atol=1e-6)
    assert list(state.history) == [-1, -1, 0]


def test_dominance_window_flips_the_winner():
    opt = gradkit.gcond(num_tasks=2, momentum=0.0, dominance_window=2)
    state = opt.init({"w": jnp.zeros(2)})
    g = {"w": jnp.array([[2.0, 0.0], [-1.0, 0.0]])}  # task 0 stronger: wins by score
    winners = []
    for _ in range(3):
        _, state = opt.update(g, state)
        winners.append(int(state.history[-1]))
    assert winners == [0, 0, 1]


def test_no_conflict_is_plain_sum_with_bias_corrected_momentum():
    opt = gradkit.gcond(num_tasks=3, momentum=0.5)
    state = opt.init({"w": jnp.zeros(2)})
    g1 = {"w": jnp.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])}
    out, state = opt.update(g1, state)
    np.testing.assert_allclose(out["w"], [1.5, 1.5], rtol=1e-6)
    g2 = {"w": jnp.array([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])}
    out, state = opt.update(g2, state)
    # m = 0.5·(0.5·[1.5, 1.5]) + 0.5·[1, 1]; corrected by 1 − 0.25.
    np.testing.assert_allclose(out["w"], (0.375 + 0.5) / 0.75 * np.ones(2), rtol=1e-6)
    assert int(state.num_projections) == 0


def test_accumulation_modes_and_evaluation_counts():
    params = {"w": jnp.array([1.0, -2.0])}
    xs = jnp.arange(8.0).reshape(4, 2)  # 4 micro-batches

    def task_loss(p, b, task):
        return jnp.sum((p["w"] - b) ** 2) if task == 0 else jnp.sum(p["w"] * b)

    grads, evals = gradkit.gcond_accumulate(task_loss, params, xs, 2)
    assert evals == 4
    np.testing.assert_allclose(grads["w"][0], 2 * (params["w"] - xs[:2].mean(0)))
    np.testing.assert_allclose(grads["w"][1], xs[2:].mean(0))
    grads, evals = gradkit.gcond_accumulate(task_loss, params, xs, 2, stochastic=False,
                                            task_weights=(1.0, 0.5))
    assert evals == 8
    np.testing.assert_allclose(grads["w"][0], 2 * (params["w"] - xs.mean(0)))
    np.testing.assert_allclose(grads["w"][1], 0.5 * xs.mean(0))
    with pytest.raises(ValueError, match="divisible"):
        gradkit.gcond_accumulate(task_loss, params, xs[:3], 2)


def test_eight_devices_equal_one_device():
    n = jax.device_count()
    rng = np.random.default_rng(0)
    local = jnp.asarray(np.stack([_random_task_grads(rng, 3, 5) for _ in range(n)]),
                        jnp.float32)
    opt = gradkit.gcond(num_tasks=3, axis_name="d")
    params = {"w": jnp.zeros(5)}
    state = opt.init(params)
    states = jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *x.shape)), state)
    out, _ = jax.pmap(lambda g, s: opt.update({"w": g}, s), axis_name="d")(local, states)
    single = gradkit.gcond(num_tasks=3)
    want, _ = single.update({"w": local.mean(0)}, single.init(params))
    np.testing.assert_allclose(out["w"][0], want["w"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["w"][n - 1], want["w"], rtol=1e-5, atol=1e-5)


def test_jit_nan_and_errors():
    opt = gradkit.gcond(num_tasks=2)
    params = {"w": jnp.zeros(2)}
    g = {"w": jnp.array([[1.0, 0.0], [-1.0, 0.3]])}
    a, _ = jax.jit(opt.update)(g, opt.init(params))
    b, _ = opt.update(g, opt.init(params))
    chex.assert_trees_all_close(a, b)
    bad, _ = opt.update({"w": g["w"].at[0, 0].set(jnp.nan)}, opt.init(params))
    assert bool(jnp.all(jnp.isnan(bad["w"])))
    with pytest.raises(ValueError, match="num_tasks=2"):
        opt.update({"w": jnp.ones((3, 2))}, opt.init(params))
    with pytest.raises(ValueError, match="mismatched task axes"):
        opt.update({"w": jnp.ones((2, 2)), "v": jnp.ones(3)}, opt.init(params))
    with pytest.raises(ValueError, match="thresholds"):
        gradkit.gcond(2, thresholds=(0.0, -0.5, -0.8))
    with pytest.raises(ValueError, match="momentum"):
        gradkit.gcond(2, momentum=1.0)
    with pytest.raises(ValueError, match="num_tasks"):
        gradkit.gcond(0)
