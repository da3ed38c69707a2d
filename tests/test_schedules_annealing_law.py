# SPDX-License-Identifier: Apache-2.0
"""gradkit.schedules.annealing_law: the scaling law with learning-rate annealing."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradkit
from gradkit.schedules import annealing_law as annealing_law_module

# ------------------------------------------------------------------- annealing law


def test_areas_on_a_hand_computed_schedule():
    # η = [1, 1, .5, 0], λ = .5: m = [0, 0, .5, .5·.5 + .5], S2 = cumsum(m).
    a = gradkit.annealing_law_areas([1.0, 1.0, 0.5, 0.0], 4, decay_factor=0.5)
    np.testing.assert_allclose(a.forward, [1.0, 2.0, 2.5, 2.5])
    np.testing.assert_allclose(a.annealing, [0.0, 0.0, 0.5, 1.25])
    # λ = 0: m_i = η_{i−1} − η_i, so S2(s) = η_1 − η_s exactly.
    etas = np.array([3.0, 2.0, 2.5, 1.0, 0.25])
    a0 = gradkit.annealing_law_areas(etas, 5, decay_factor=0.0)
    np.testing.assert_allclose(a0.annealing, etas[0] - etas)


def test_areas_match_a_float64_loop_and_callable_equals_array():
    sched = gradkit.wsd_schedule(2e-3, 300, 20, 90, decay_shape="cosine", final_fraction=0.1)
    lrs = np.asarray(jax.vmap(sched)(jnp.arange(300)), np.float64)
    m, s2, lam = 0.0, [], 0.999
    for i in range(300):
        m = lam * m + (lrs[i - 1] - lrs[i] if i else 0.0)
        s2.append(m)
    s2 = np.cumsum(s2)
    a = gradkit.annealing_law_areas(sched, 300)
    np.testing.assert_allclose(a.forward, np.cumsum(lrs), rtol=1e-12)
    np.testing.assert_allclose(a.annealing, s2, rtol=1e-9, atol=1e-15)
    b = gradkit.annealing_law_areas(lrs, 300)
    np.testing.assert_allclose(b.annealing, a.annealing, rtol=1e-12, atol=1e-15)
    # Warm-up steps counted at the post-warm-up rate (the paper's §3.4 convention).
    w = gradkit.annealing_law_areas(sched, 300, warmup_steps=20)
    np.testing.assert_allclose(w.learning_rates[:21], 2e-3, rtol=1e-6)
    np.testing.assert_allclose(w.annealing[:200], 0.0, atol=1e-15)


def test_objective_gradient_matches_finite_differences():
    a = gradkit.annealing_law_areas(gradkit.wsd_schedule(1e-2, 200, 0, 60), 200)
    steps = np.arange(5, 201, 5)
    s1, s2 = a.forward[steps - 1], a.annealing[steps - 1]
    log_l = np.log(2.0 + 0.3 * s1 ** -0.4 - 1.5 * s2) + 0.002 * np.sin(steps)
    theta = np.array([1.8, 0.4, 0.3, 1.0])
    value, grad = annealing_law_module.fit_objective(theta, s1, s2, log_l, 1e-3)
    eps = 1e-7
    for i in range(4):
        d = np.zeros(4)
        d[i] = eps
        fd = (annealing_law_module.fit_objective(theta + d, s1, s2, log_l, 1e-3)[0]
              - annealing_law_module.fit_objective(theta - d, s1, s2, log_l, 1e-3)[0]) / (2 * eps)
        np.testing.assert_allclose(grad[i], fd, rtol=1e-4, atol=1e-10)
    assert value > 0


SMALL_GRID = {"L0": (0.1, 2.1), "A": (1.0,), "alpha": (0.4,), "C": (1.0, 11.5)}


def test_fit_recovers_the_law_and_predicts_another_schedule():
    truth = gradkit.AnnealingLawParams(L0=1.5, A=0.4, alpha=0.5, C=2.0)
    total = 600
    const = gradkit.wsd_schedule(3e-3, total, 50, 0)
    wsd = gradkit.wsd_schedule(3e-3, total, 50, 120, final_fraction=0.1)
    cosine = optax.warmup_cosine_decay_schedule(0.0, 3e-3, 50, total, 3e-4)
    steps = np.arange(10, total + 1, 10)
    curves = [(s, steps, gradkit.predict_annealing_law(truth, s, steps, warmup_steps=50))
              for s in (const, wsd)]
    fit = gradkit.fit_annealing_law(curves, warmup_steps=50, initial_grid=SMALL_GRID)
    np.testing.assert_allclose(fit.params, truth, rtol=1e-4)
    assert fit.num_points == 2 * steps.size and fit.objective < 1e-12
    want = gradkit.predict_annealing_law(truth, cosine, steps, warmup_steps=50)
    got = gradkit.predict_annealing_law(fit, cosine, steps, warmup_steps=50)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # The annealing term matters: the cosine curve is not the constant one.
    assert np.max(np.abs(want - curves[0][2])) > 0.05


def test_fit_is_robust_to_an_outlier():
    truth = gradkit.AnnealingLawParams(L0=2.0, A=0.5, alpha=0.3, C=1.5)
    sched = gradkit.wsd_schedule(1e-2, 200, 0, 60)
    steps = np.arange(5, 201, 5)
    losses = gradkit.predict_annealing_law(truth, sched, steps)
    losses[10] *= 1.5  # one corrupted point: Huber on log L is ~ℓ1 for it
    fit = gradkit.fit_annealing_law([(sched, steps, losses)], initial_grid=SMALL_GRID)
    np.testing.assert_allclose(fit.params, truth, rtol=2e-2)


@pytest.mark.parametrize("curves, kwargs, match", [
    ([], {}, "`curves` must hold at least one"),
    ([(optax.constant_schedule(1.0), [1, 2], [1.0])], {}, r"`curves\[0\]`: steps and losses"),
    ([(optax.constant_schedule(1.0), [0, 2], [1.0, 1.0])], {}, r"`curves\[0\]`: steps must"),
    ([(optax.constant_schedule(1.0), [1, 2], [1.0, -1.0])], {}, r"losses must be finite and"),
    ([(optax.constant_schedule(1.0), [1, 2], [1.0, np.nan])], {}, r"losses must be finite"),
    ([(optax.linear_schedule(0.0, 1.0, 5), [1, 2], [1.0, 1.0])], {}, "forward area S1 is 0"),
    ([(optax.constant_schedule(1.0), [1, 2], [1.0, 1.0])], {"decay_factor": 1.0},
     "`decay_factor`"),
    ([(optax.constant_schedule(1.0), [1, 2], [1.0, 1.0])], {"initial_grid": {"L0": (1.0,)}},
     "`initial_grid`"),
    ([(optax.constant_schedule(1.0), [1, 2], [1.0, 1.0])], {"huber_delta": 0.0},
     "`huber_delta`"),
    ([(np.ones(3), [1, 5], [1.0, 1.0])], {}, "has 3 learning rates but 5"),
    ([("not a triple",)], {}, r"`curves\[0\]` must be a \(schedule, steps, losses\)"),
])
def test_fit_validation_names_argument(curves, kwargs, match):
    with pytest.raises(ValueError, match=match):
        gradkit.fit_annealing_law(curves, **kwargs)


def test_predict_validation_and_int_steps():
    p = gradkit.AnnealingLawParams(1.0, 1.0, 0.5, 0.0)
    out = gradkit.predict_annealing_law(p, np.ones(4), 4)
    np.testing.assert_allclose(out, 1 + np.arange(1, 5) ** -0.5)
    with pytest.raises(ValueError, match="`steps`"):
        gradkit.predict_annealing_law(p, np.ones(4), [0, 1])
    with pytest.raises(ValueError, match="`params`"):
        gradkit.predict_annealing_law((1.0, 2.0), np.ones(4), 3)
    with pytest.raises(ValueError, match="`warmup_steps`"):
        gradkit.annealing_law_areas(np.ones(4), 4, warmup_steps=4)
    with pytest.raises(ValueError, match="`num_steps`"):
        gradkit.annealing_law_areas(np.ones(4), 0)
