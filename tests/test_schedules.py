"""gradkit.schedules: WSD, WSD-S, refined schedules and the annealing scaling law."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradkit
from gradkit.schedules import annealing_law as annealing_law_module
from tests import helpers
from tests.registry import ROWS

SHAPES = {
    "linear": lambda x: 1.0 - x,
    "cosine": lambda x: 0.5 * (1.0 + math.cos(math.pi * x)),
    "1-sqrt": lambda x: 1.0 - math.sqrt(x),
    "1-square": lambda x: 1.0 - x * x,
}


def _values(schedule, steps) -> np.ndarray:
    return np.array([float(schedule(t)) for t in steps], dtype=np.float64)


# ----------------------------------------------------------------------------- WSD


def _wsd_reference(t, peak, total, warmup, decay, shape, r):
    """float64 transcription of η(t) in docs/schedules.md."""
    t = max(t, 0)
    if t < warmup:
        return peak * t / warmup
    if t < total - decay:
        return peak
    x = min((t - (total - decay)) / decay, 1.0)
    return peak * (r + (1 - r) * SHAPES[shape](x))


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("r", [0.0, 0.1])
def test_wsd_closed_form_every_shape_and_floor(shape, r):
    sched = gradkit.wsd_schedule(2.0, total_steps=20, warmup_steps=4, decay_steps=8,
                                 decay_shape=shape, final_fraction=r)
    # Hand values: warm-up, stable, start / middle / end of the decay, after T.
    mid = {"linear": 0.5, "cosine": 0.5, "1-sqrt": 1 - math.sqrt(0.5), "1-square": 0.75}
    want = {-3: 0.0, 0: 0.0, 2: 1.0, 4: 2.0, 11: 2.0, 12: 2.0,
            16: 2.0 * (r + (1 - r) * mid[shape]), 20: 2.0 * r, 37: 2.0 * r}
    for t, v in want.items():
        np.testing.assert_allclose(float(sched(t)), v, rtol=1e-6, atol=1e-7, err_msg=f"t={t}")
    steps = np.arange(-2, 25)
    np.testing.assert_allclose(
        _values(sched, steps),
        [_wsd_reference(int(t), 2.0, 20, 4, 8, shape, r) for t in steps], rtol=1e-6, atol=1e-7)


def test_wsd_without_warmup_or_decay():
    const = gradkit.wsd_schedule(0.5, 10, warmup_steps=0, decay_steps=0)
    np.testing.assert_array_equal(_values(const, range(0, 15)), 0.5)
    full = gradkit.wsd_schedule(1.0, 10, warmup_steps=0, decay_steps=10)  # linear to 0
    np.testing.assert_allclose(_values(full, range(11)), 1 - np.arange(11) / 10, atol=1e-7)


@pytest.mark.parametrize("kwargs, match", [
    (dict(decay_steps=11), "`decay_steps` must be <= `total_steps`"),
    (dict(warmup_steps=6, decay_steps=5), "`warmup_steps` \\+ `decay_steps`"),
    (dict(peak_value=-1e-3), "`peak_value`"),
    (dict(peak_value=0.0), "`peak_value`"),
    (dict(peak_value=float("nan")), "`peak_value`"),
    (dict(total_steps=0), "`total_steps`"),
    (dict(warmup_steps=-1), "`warmup_steps`"),
    (dict(decay_steps=2.5), "`decay_steps`"),
    (dict(decay_shape="exp"), "`decay_shape`"),
    (dict(final_fraction=1.5), "`final_fraction`"),
])
def test_wsd_validation_names_argument(kwargs, match):
    args = dict(peak_value=1e-3, total_steps=10, warmup_steps=2, decay_steps=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        gradkit.wsd_schedule(**args)


class JitTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_schedules_trace_and_agree(self):
        counts = jnp.arange(0, 40, dtype=jnp.int32)
        for sched in (
            gradkit.wsd_schedule(1e-2, 30, 3, 9, decay_shape="1-sqrt", final_fraction=0.1),
            gradkit.wsd_s_schedule(1e-2, 30, [10, 20], warmup=2, decay=0.3, rewarmup=0.2,
                                   decay_shape="cosine"),
            gradkit.refined_schedule(np.linspace(2.0, 1.0, 30), 1e-2, warmup_steps=3),
        ):
            got = jax.vmap(self.variant(sched))(counts)
            want = _values(sched, range(40))
            chex.assert_shape(got, (40,))
            assert got.dtype == jnp.float32
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-9)


def test_inject_hyperparams_sees_the_schedule_at_each_count():
    sched = gradkit.wsd_s_schedule(1e-2, 12, 2, warmup=2, decay=0.5, final_fraction=0.0)
    opt = optax.inject_hyperparams(optax.adamw)(learning_rate=sched)
    params = {"w": jnp.ones(3)}
    state = opt.init(params)
    seen = []
    step = jax.jit(lambda s, p: opt.update(jax.tree.map(jnp.ones_like, p), s, p))
    for _ in range(12):
        _, state = step(state, params)
        seen.append(float(state.hyperparams["learning_rate"]))
    np.testing.assert_allclose(seen, _values(sched, range(12)), rtol=1e-6)


@pytest.mark.parametrize("row", [r for r in ROWS if r.kind == "alias"], ids=lambda r: r.name)
def test_every_gradkit_alias_takes_wsd_s(row):
    """Each alias of the registry runs under jit with a WSD-S rate and uses its values:
    the same as with a hand-written schedule of rates peak, peak, peak, peak/2."""
    peak = row.kwargs["learning_rate"]
    sched = gradkit.wsd_s_schedule(peak, 8, [4], warmup=0, decay=2, final_fraction=0.0)
    params = helpers.tiny_params()

    def run(learning_rate):
        opt = row.factory(**{**row.kwargs, "learning_rate": learning_rate})

        def step(carry, _):
            p, state = carry
            extra = row.extra_args(helpers.parabola, p, state)
            updates, state = opt.update(jax.grad(helpers.parabola)(p), state, p, **extra)
            p = optax.apply_updates(p, updates)
            return (p, state), p

        @jax.jit
        def four_steps(p):
            return jax.lax.scan(step, (p, opt.init(p)), length=4)[1]

        return four_steps(params)

    got = run(sched)
    want = run(lambda c: jnp.where(c == 3, peak / 2, peak))
    chex.assert_trees_all_close(got, want, rtol=1e-6, atol=1e-7)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(got))


# --------------------------------------------------------------------------- WSD-S


def _levanter_frac_or_steps(v, n):
    if v < 0 or (v > 1 and v % 1 != 0):
        raise ValueError(v)
    return int(v * n) if v <= 1 else int(v)


def _levanter_schedule(peak, total, cycles, warmup, decay, rewarmup, lr_schedule, ratio):
    """Transcription of levanter OptimizerConfig.lr_scheduler (src/levanter/optim/config.py,
    Apache-2.0) for cycles given as a count or a list, no cooldown, linear/cosine decay."""
    if isinstance(cycles, int):
        points = [int(total / cycles * (i + 1)) for i in range(cycles - 1)]
    else:
        points = list(cycles)
    points.insert(0, 0)
    if points[-1] != total:
        points.append(total)
    min_lr = peak * ratio
    schedules, boundaries, previous_end = [], [], 0.0
    for k, (start, end) in enumerate(itertools.pairwise(points)):
        n = end - start
        w = _levanter_frac_or_steps(warmup if k == 0 else rewarmup, n)
        if w != 0:
            schedules.append(optax.linear_schedule(previous_end, peak, w))
            boundaries.append(start + w)
        d = _levanter_frac_or_steps(decay, n) if decay is not None else n - w
        stable = n - w - d
        if stable != 0:
            schedules.append(optax.constant_schedule(peak))
            boundaries.append(start + w + stable)
        if lr_schedule == "cosine":
            main = optax.cosine_decay_schedule(peak, d, ratio)
        else:
            main = optax.linear_schedule(peak, min_lr, d)
        previous_end = main(d)
        schedules.append(main)
        boundaries.append(end)
    return optax.join_schedules(schedules, boundaries) if len(schedules) > 1 else schedules[0]


LEVANTER_CONFIGS = [
    # (total, cycles, warmup, decay, rewarmup, shape, min_lr_ratio)
    (600, 3, 0.01, 0.2, 0.0, "linear", 0.1),
    (600, [200, 400, 600], 0.05, 0.1, 0.0, "cosine", 0.1),
    (600, [150, 400], 10, 0.25, 0.1, "linear", 0.0),
    (500, 4, 0.02, None, 0.0, "cosine", 0.1),  # cyclic cosine (full decay every cycle)
    (500, [100, 300], 0.1, 30, 20, "cosine", 0.3),
    (97, 3, 0.0, 0.5, 0.05, "linear", 0.2),
]


@pytest.mark.parametrize("config", LEVANTER_CONFIGS, ids=lambda c: f"{c[1]}-{c[5]}-{c[3]}")
def test_wsd_s_equals_levanter_formula(config):
    total, cycles, warmup, decay, rewarmup, shape, ratio = config
    ours = gradkit.wsd_s_schedule(3e-3, total, cycles, warmup=warmup, decay=decay,
                                  rewarmup=rewarmup, decay_shape=shape, final_fraction=ratio)
    theirs = _levanter_schedule(3e-3, total, cycles, warmup, decay, rewarmup, shape, ratio)
    steps = jnp.arange(0, total + 5)
    np.testing.assert_allclose(np.asarray(ours(steps)), np.asarray(theirs(steps)),
                               rtol=2e-5, atol=1e-9)


def test_wsd_s_one_cycle_is_wsd_and_jumps_back_without_rewarmup():
    one = gradkit.wsd_s_schedule(1.0, 100, 1, warmup=10, decay=30, decay_shape="1-sqrt",
                                 final_fraction=0.2)
    wsd = gradkit.wsd_schedule(1.0, 100, 10, 30, decay_shape="1-sqrt", final_fraction=0.2)
    np.testing.assert_allclose(_values(one, range(110)), _values(wsd, range(110)), atol=1e-7)
    s = gradkit.wsd_s_schedule(1.0, 300, [100, 200], warmup=0, decay=0.2, final_fraction=0.1)
    # Decay at the end of each cycle: 80..99 → 1 - 0.9·x, then straight back to 1.
    np.testing.assert_allclose(float(s(90)), 0.1 + 0.9 * 0.5, rtol=1e-6)
    np.testing.assert_allclose(float(s(99)), 0.1 + 0.9 * 0.05, rtol=1e-6)
    assert float(s(100)) == 1.0 and float(s(179)) == 1.0
    np.testing.assert_allclose(float(s(300)), 0.1, rtol=1e-6)
    # A re-warm-up of 10 steps ramps linearly from the floor 0.1 to 1.
    r = gradkit.wsd_s_schedule(1.0, 300, [100, 200], warmup=0, decay=0.2, rewarmup=10,
                               final_fraction=0.1)
    np.testing.assert_allclose(_values(r, range(100, 111)),
                               0.1 + 0.9 * np.arange(11) / 10, rtol=1e-6)


def test_wsd_s_cycle_points():
    from gradkit.schedules import wsd_s_cycle_points

    assert wsd_s_cycle_points(600, 3) == [0, 200, 400, 600]
    assert wsd_s_cycle_points(100, 3) == [0, 33, 66, 100]
    assert wsd_s_cycle_points(600, [200, 400]) == [0, 200, 400, 600]
    assert wsd_s_cycle_points(600, [200, 600]) == [0, 200, 600]


@pytest.mark.parametrize("kwargs, match", [
    (dict(cycles=[300, 200]), "`cycles` end points must be strictly increasing"),
    (dict(cycles=[200, 700]), "`cycles` end points must be <= total_steps"),
    (dict(cycles=[]), "`cycles` must not be an empty list"),
    (dict(cycles=0), "`cycles` must be in"),
    (dict(cycles=[100.5]), "`cycles` end points must be integers"),
    (dict(decay=1.5), "`decay`"),
    (dict(decay=-3), "`decay`"),
    (dict(warmup=0.5, decay=0.6), "`decay`"),
    (dict(rewarmup="x"), "`rewarmup`"),
    (dict(peak_value=-1.0), "`peak_value`"),
    (dict(decay_shape="step"), "`decay_shape`"),
    (dict(final_fraction=-0.1), "`final_fraction`"),
])
def test_wsd_s_validation_names_argument(kwargs, match):
    args = dict(peak_value=1e-3, total_steps=600, cycles=3, warmup=0.01, decay=0.2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        gradkit.wsd_s_schedule(**args)


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
