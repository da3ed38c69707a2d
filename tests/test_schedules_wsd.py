# SPDX-License-Identifier: Apache-2.0
"""gradkit.schedules.wsd: WSD and WSD-S."""

from __future__ import annotations

import itertools
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradkit
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
