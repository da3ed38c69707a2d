# SPDX-License-Identifier: Apache-2.0
"""gradkit.schedules.refined: schedules refined from a previous run's gradient norms."""

from __future__ import annotations

from fractions import Fraction

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradkit


def _values(schedule, steps) -> np.ndarray:
    return np.array([float(schedule(t)) for t in steps], dtype=np.float64)


class JitTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_refined_schedule_traces_and_agrees(self):
        counts = jnp.arange(0, 40, dtype=jnp.int32)
        for sched in (
            gradkit.refined_schedule(np.linspace(2.0, 1.0, 30), 1e-2, warmup_steps=3),
        ):
            got = jax.vmap(self.variant(sched))(counts)
            want = _values(sched, range(40))
            chex.assert_shape(got, (40,))
            assert got.dtype == jnp.float32
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------------- refined


def test_refining_constant_norms_gives_linear_decay():
    for kind in ("sgd", "adam"):
        lr = gradkit.refined_schedule([3.0] * 6, base_lr=1.0, optimizer_kind=kind)
        np.testing.assert_allclose(_values(lr, range(6)), [1, 0.8, 0.6, 0.4, 0.2, 0],
                                   atol=1e-7)
        assert float(lr(10)) == 0.0
    lr = gradkit.refined_schedule(np.full(101, 0.7), base_lr=2e-3)
    np.testing.assert_allclose(_values(lr, range(101)), 2e-3 * (1 - np.arange(101) / 100),
                               rtol=1e-5, atol=1e-10)


def test_refined_closed_form_two_levels():
    # Width ⌊0.1·4⌋ → 1: no smoothing. SGD: w = [1, 1, 1/4, 1/4], tails [3/2, 1/2, 1/4, 0].
    sgd = gradkit.refined_schedule([1.0, 1.0, 2.0, 2.0], 1.0, "sgd")
    np.testing.assert_allclose(_values(sgd, range(4)), [1, 1 / 3, 1 / 24, 0], rtol=1e-6)
    # Adam: w = [1, 1, 1/2, 1/2], tails [2, 1, 1/2, 0] → ρ = [2, 1, 1/4, 0]/2.
    adam = gradkit.refined_schedule([1.0, 1.0, 2.0, 2.0], 1.0, "adam")
    np.testing.assert_allclose(_values(adam, range(4)), [1, 0.5, 0.125, 0], rtol=1e-6)


def _median_filter_paper(g, tau):
    """Transcription of the paper's filter (Alg. 1, the authors' README recipe): odd width
    2·⌊⌊τT⌋/2⌋ + 1, a centred window, indices before the start read G_1 (nearest), indices
    past the end read the mirror image without repeating the edge (… c b a | b c …)."""
    n = len(g)
    width = 2 * (int(tau * n) // 2) + 1
    half = width // 2

    def at(i):
        if i < 0:
            return g[0]
        return g[i] if i < n else g[2 * (n - 1) - i]

    return np.array([np.median([at(j) for j in range(i - half, i + half + 1)])
                     for i in range(n)])


def _rho(smoothed, kind):
    w = smoothed ** -2 if kind == "sgd" else 1 / smoothed
    rho = np.array([w[t] * w[t + 1:].sum() for t in range(len(w))])
    return rho / rho.max()


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("tau", [0.4, 0.5])
def test_refined_filter_odd_width_nearest_start_reflected_end(kind, tau):
    # G = 1..10, τT = 4 or 5 → width 5 (4 is made odd). Start: nearest (1 1 | 1 2 3 → 1,
    # 1 | 1 2 3 4 → 2); end: reflection (7 8 9 10 | 9 → 9, 8 9 10 | 9 8 → 9).
    g = np.arange(1.0, 11.0)
    smoothed = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 9], dtype=np.float64)
    np.testing.assert_array_equal(_median_filter_paper(g, tau), smoothed)
    w = [Fraction(1, int(s) ** (2 if kind == "sgd" else 1)) for s in smoothed]
    rho = [w[t] * sum(w[t + 1:]) for t in range(10)]
    want = np.array([float(r / max(rho)) for r in rho])
    np.testing.assert_allclose(gradkit.schedules.refined_schedule_values(g, kind, tau), want,
                               rtol=1e-12)


def test_refined_rising_then_settling_norms():
    # Norms rise over 5 steps and settle at 1; width ⌊0.1·50⌋ = 5 → 5. The paper's filter
    # keeps this sequence as it is (nearest start padding repeats 0.2; the flat tail
    # reflects onto itself), so ρ_t ∝ w_t·Σ_{p>t} w_p with w = G⁻² exactly:
    # w = [25, 6.25, 25/9, 1.5625, 1 (46 times)], ρ_1/ρ_0 = 6.25·(25/9 + 1.5625 + 46) /
    # (25·(6.25 + 25/9 + 1.5625 + 46)) = 0.2224…
    g = np.concatenate([[0.2, 0.4, 0.6, 0.8], np.ones(46)])
    np.testing.assert_array_equal(_median_filter_paper(g, 0.1), g)
    got = gradkit.schedules.refined_schedule_values(g, "sgd", 0.1)
    w = g ** -2
    want = np.array([w[t] * w[t + 1:].sum() for t in range(50)])
    np.testing.assert_allclose(got, want / want.max(), rtol=1e-12)
    tail = 25 / 9 + 1.5625 + 46
    np.testing.assert_allclose(got[1], 6.25 * tail / (25 * (6.25 + tail)), rtol=1e-12)


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("tau", [0.05, 0.1, 0.3])
def test_refined_matches_float64_transcription(kind, tau):
    rng = np.random.default_rng(0)
    g = np.exp(rng.normal(0, 0.5, 200)) * np.linspace(3, 1, 200)
    rho = _rho(_median_filter_paper(g, tau), kind)
    np.testing.assert_allclose(gradkit.schedules.refined_schedule_values(g, kind, tau), rho,
                               rtol=1e-12)
    lr = gradkit.refined_schedule(g, 3e-3, kind, tau)
    np.testing.assert_allclose(np.asarray(jax.vmap(lr)(jnp.arange(200))), 3e-3 * rho,
                               rtol=1e-5, atol=1e-12)


def test_refined_median_filter_ignores_a_spike_and_warmup_multiplies():
    g = np.ones(20)
    g[5] = 100.0
    lr = gradkit.refined_schedule(g, 1.0, tau=0.25)  # width 5
    np.testing.assert_allclose(_values(lr, range(20)), 1 - np.arange(20) / 19, atol=1e-6)
    warm = gradkit.refined_schedule(g, 1.0, tau=0.25, warmup_steps=4)
    np.testing.assert_allclose(_values(warm, range(20)),
                               np.minimum(np.arange(20) / 4, 1) * (1 - np.arange(20) / 19),
                               atol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    (dict(grad_norms=[]), "`grad_norms` must not be empty"),
    (dict(grad_norms=[[1.0, 2.0]]), "`grad_norms` must be a 1-D"),
    (dict(grad_norms=[1.0, float("nan"), 1.0]), "`grad_norms` must be finite and > 0; step "
                                                 "index 1"),
    (dict(grad_norms=[1.0, 0.0]), "`grad_norms` must be finite and > 0"),
    (dict(grad_norms=[1.0, -2.0]), "`grad_norms`"),
    (dict(base_lr=-1e-3), "`base_lr`"),
    (dict(base_lr=0.0), "`base_lr`"),
    (dict(optimizer_kind="lion"), "`optimizer_kind`"),
    (dict(tau=0.0), "`tau`"),
    (dict(tau=1.5), "`tau`"),
    (dict(warmup_steps=-1), "`warmup_steps`"),
])
def test_refined_validation_names_argument(kwargs, match):
    args = dict(grad_norms=[1.0, 2.0, 3.0], base_lr=1e-3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        gradkit.refined_schedule(**args)
