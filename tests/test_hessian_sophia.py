# SPDX-License-Identifier: Apache-2.0
"""What is special about Sophia (gradkit/hessian); its estimators: test_hessian_estimators."""

from __future__ import annotations

import inspect
from typing import NamedTuple

import chex
import flax.linen as nn
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax import contrib

import gradkit
from tests.hessian_problems import ce
from tests.hessian_problems import logits
from tests.hessian_problems import softmax_problem


class _CountingState(NamedTuple):
    calls: jax.Array  # int32 scalar


def _counting_estimator(diag_per_call: dict) -> optax.GradientTransformationExtraArgs:
    """Deterministic estimator: at its n-th call (n = 1, 2, ...) returns n·diag."""

    def init_fn(params):
        del params
        return _CountingState(jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None, **extra):
        del updates, params, extra
        calls = state.calls + 1
        return jax.tree.map(lambda d: calls * d, diag_per_call), _CountingState(calls)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def test_missing_extra_args_name_the_keyword():
    params = {"w": jnp.ones(3)}
    with pytest.raises(ValueError, match="`obj_fn`"):
        opt = gradkit.sophia(1e-3, estimator="hutchinson")
        opt.update(params, opt.init(params), params)
    with pytest.raises(ValueError, match="`logits_fn`"):
        opt = gradkit.sophia(1e-3, estimator="gnb")
        opt.update(params, opt.init(params), params, obj_fn=lambda p: 0.0)
    with pytest.raises(ValueError, match="params"):
        opt = gradkit.sophia(1e-3)
        opt.update(params, opt.init(params), obj_fn=lambda p: 0.0)


# --- Sophia --------------------------------------------------------------------------


def test_closed_form_three_steps_refresh_only_every_k():
    b1, b2, gamma, eps, k = 0.9, 0.5, 0.1, 1e-12, 2
    d = {"w": jnp.array([1.0, 10.0, -1.0, 0.0])}
    opt = gradkit.scale_by_sophia(b1=b1, b2=b2, gamma=gamma, eps=eps, update_interval=k,
                                  estimator=_counting_estimator(d), track_win_rate=True)
    params = {"w": jnp.zeros(4)}
    step = jax.jit(opt.update)
    grads = [np.array([1.0, 2.0, 3.0, -4.0]), np.array([-1.0, 0.5, 2.0, 1.0]),
             np.array([0.5, -3.0, 1.0, 2.0])]
    state = opt.init(params)
    m, h, calls = np.zeros(4), np.zeros(4), 0
    dd = np.asarray(d["w"])
    for t, g in enumerate(grads, start=1):
        upd, state = step({"w": jnp.asarray(g)}, state, params)
        m = b1 * m + (1 - b1) * g
        if t % k == 1:  # Algorithm 3: refresh at t mod k = 1, before the update
            calls += 1
            h = b2 * h + (1 - b2) * calls * dd
        r = m / np.maximum(gamma * h, eps)
        np.testing.assert_allclose(upd["w"], np.clip(r, -1, 1), rtol=1e-5)
        assert int(state.estimator_state.calls) == calls  # lax.cond skipped the others
        np.testing.assert_allclose(state.win_rate, np.mean(np.abs(r) < 1), rtol=1e-6)
        np.testing.assert_allclose(state.nu["w"], h, rtol=1e-6)
    assert calls == 2
    # h ≤ 0 coordinates (entries 2, 3) take sign steps.
    np.testing.assert_allclose(np.abs(upd["w"][2:]), 1.0)
    assert 0.0 < float(state.win_rate) < 1.0


@pytest.mark.parametrize("bias_correction", [False, True])
@pytest.mark.parametrize("refresh_at_start", [True, False])
def test_refresh_schedule_closed_form(refresh_at_start, bias_correction):
    """Paper (True): ĥ at t = 1, k+1, 2k+1, …; official (False): at t = k+1, 2k+1, … only.

    With False the first k updates are ρ·sign(m) (h = 0 exactly, estimator not called),
    and from t = k+1 on every update follows the closed form with the later refreshes.
    ``bias_correction`` divides m by 1 − β₁ᵗ and h by 1 − β₂ⁿ (n refreshes so far) in the
    ratio only; the stored m and h are unchanged.
    """
    b1, b2, gamma, eps, rho, k = 0.9, 0.5, 0.1, 1e-12, 0.5, 3
    d = {"w": jnp.array([1.0, 10.0, 4.0, 0.01])}
    opt = gradkit.scale_by_sophia(b1=b1, b2=b2, gamma=gamma, eps=eps, clip_threshold=rho,
                                  update_interval=k, estimator=_counting_estimator(d),
                                  refresh_at_start=refresh_at_start,
                                  bias_correction=bias_correction, track_win_rate=True)
    params = {"w": jnp.zeros(4)}
    step = jax.jit(opt.update)
    rng = np.random.default_rng(0)
    state = opt.init(params)
    m, h, calls = np.zeros(4), np.zeros(4), 0
    dd = np.asarray(d["w"])
    for t in range(1, 2 * k + 3):
        g = 0.2 * rng.normal(size=4)
        upd, state = step({"w": jnp.asarray(g, jnp.float32)}, state, params)
        m = b1 * m + (1 - b1) * g
        if t % k == 1 and (refresh_at_start or t > 1):
            calls += 1
            h = b2 * h + (1 - b2) * calls * dd
        assert int(state.estimator_state.calls) == calls
        np.testing.assert_allclose(state.nu["w"], h, rtol=1e-6)
        if calls == 0:  # official schedule, t ≤ k: h = 0, a pure sign step of size ρ
            assert t <= k and not refresh_at_start
            np.testing.assert_array_equal(state.nu["w"], 0.0)
            np.testing.assert_allclose(upd["w"], rho * np.sign(m), rtol=1e-6)
            assert float(state.win_rate) == 0.0
        m_hat = m / (1 - b1**t) if bias_correction else m
        h_hat = h / (1 - b2**calls) if bias_correction and calls else h
        r = m_hat / np.maximum(gamma * h_hat, eps)
        np.testing.assert_allclose(upd["w"], np.clip(r, -rho, rho), rtol=1e-5)
        np.testing.assert_allclose(state.win_rate, np.mean(np.abs(r) < rho), rtol=1e-6)
    # k+1 and 2k+1 are refreshes under both schedules; True adds t = 1.
    assert calls == (3 if refresh_at_start else 2)
    assert 0.0 < float(state.win_rate) < 1.0  # some coordinates are unclipped at the end


def test_official_schedule_sophia_trajectory_on_quadratic():
    """``sophia(refresh_at_start=False)`` under jit vs a NumPy simulation of the official
    loop on f(θ) = ½ Σ a_i θ_i², where every Rademacher Hutchinson draw is exactly a."""
    a = np.array([0.5, 2.0, 8.0], np.float32)
    lr, b1, b2, gamma, wd, k = 0.1, 0.9, 0.9, 0.2, 0.1, 2
    opt = gradkit.sophia(lr, b1=b1, b2=b2, gamma=gamma, update_interval=k, weight_decay=wd,
                         refresh_at_start=False)
    obj_fn = lambda p: 0.5 * jnp.sum(jnp.asarray(a) * p**2)  # noqa: E731
    step = jax.jit(lambda p, s: opt.update(jax.grad(obj_fn)(p), s, p, obj_fn=obj_fn))
    theta = jnp.array([1.0, -2.0, 0.5])
    state = opt.init(theta)
    th, m, h = np.asarray(theta, np.float64), np.zeros(3), np.zeros(3)
    for it in range(6):  # 0-based official iteration number
        m = b1 * m + (1 - b1) * a * th
        ratio = np.minimum(np.abs(m) / np.maximum(gamma * h, 1e-12), 1.0)
        th = th - lr * wd * th - lr * np.sign(m) * ratio
        u, state = step(theta, state)
        theta = optax.apply_updates(theta, u)
        np.testing.assert_allclose(theta, th, rtol=1e-5, atol=1e-6)
        if it % k == k - 1:  # official: update_hessian() after this step, at new params
            h = b2 * h + (1 - b2) * a
        if it < k:  # ours refreshes before iteration k, at the same params
            np.testing.assert_array_equal(state[0].nu, 0.0)


def _sub_jaxprs(value):
    if isinstance(value, jax.extend.core.ClosedJaxpr):
        yield value.jaxpr
    elif isinstance(value, jax.extend.core.Jaxpr):
        yield value
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _sub_jaxprs(v)


def _primitives(jaxpr, *, into_cond: bool = True) -> set[str]:
    """Primitive names in `jaxpr` and its sub-jaxprs (cond branches only if `into_cond`)."""
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        if eqn.primitive.name == "cond" and not into_cond:
            continue
        for value in eqn.params.values():
            for sub in _sub_jaxprs(value):
                names |= _primitives(sub, into_cond=into_cond)
    return names


# sin/cos appear only in the HVP of this objective, so they mark where the estimator runs.
_SIN_OBJ = lambda q: jnp.sum(jnp.sin(q["w"]))  # noqa: E731
_ESTIMATOR_MARKS = {"sin", "cos", "random_bits"}


def _assert_estimator_only_in_cond_branch(jaxpr):
    """The estimator's primitives occur in the refresh branch of the single top-level cond
    and nowhere outside it (so the other k−1 steps skip it)."""
    conds = [e for e in jaxpr.eqns if e.primitive.name == "cond"]
    assert len(conds) == 1, [e.primitive.name for e in jaxpr.eqns]
    skip, refresh = conds[0].params["branches"]  # index = predicate (False, True)
    assert _ESTIMATOR_MARKS <= _primitives(refresh.jaxpr)
    assert not _ESTIMATOR_MARKS & _primitives(skip.jaxpr)
    assert not _ESTIMATOR_MARKS & _primitives(jaxpr, into_cond=False)


def test_estimator_runs_inside_cond():
    opt = gradkit.sophia(1e-3)
    params = {"w": jnp.ones(3)}
    jaxpr = jax.make_jaxpr(lambda g, s, p: opt.update(g, s, p, obj_fn=_SIN_OBJ))(
        params, opt.init(params), params)
    _assert_estimator_only_in_cond_branch(jaxpr.jaxpr)


def _vmapped_sophia(k: int, calls: list):
    """sophia-H under jax.vmap over 3 independent states; `calls` logs estimator runs."""
    hutch = gradkit.hutchinson_diag_hessian(key=0)

    def update_fn(updates, state, params=None, **extra):
        jax.debug.callback(lambda c: calls.append(int(np.asarray(c).size)), state.key[..., 0])
        return hutch.update(updates, state, params, **extra)

    logged = optax.GradientTransformationExtraArgs(hutch.init, update_fn)
    opt = gradkit.sophia(0.1, update_interval=k, estimator=logged, weight_decay=0.0)
    step = jax.jit(jax.vmap(lambda g, s, p: opt.update(g, s, p, obj_fn=_SIN_OBJ)))
    return opt, step


def test_vmap_keeps_the_refresh_a_branch_and_runs_the_estimator_every_k_steps():
    """Under vmap a batched predicate would turn lax.cond into a select that runs the
    estimator at every step (k× the cost); ours ORs the predicate over the mapped axis."""
    k, members = 4, 3
    calls = []
    opt, step = _vmapped_sophia(k, calls)
    params = {"w": jnp.stack([jnp.linspace(-1.0, 1.0, 5) * (i + 1) for i in range(members)])}
    states = jax.vmap(opt.init)(params)
    jaxpr = jax.make_jaxpr(jax.vmap(lambda g, s, p: opt.update(g, s, p, obj_fn=_SIN_OBJ)))(
        params, states, params)
    _assert_estimator_only_in_cond_branch(jaxpr.jaxpr)
    refresh_steps = []
    for t in range(2 * k + 1):
        before = len(calls)
        _, states = step(params, states, params)
        if len(calls) > before:
            refresh_steps.append(t)
    assert refresh_steps == [0, k, 2 * k]


def test_vmap_members_at_different_steps_match_unbatched_runs():
    """Members whose counts differ: each refreshes on its own schedule (select inside the
    branch), exactly as when run one by one, also under nested vmap."""
    k = 3
    opt = gradkit.sophia(0.1, update_interval=k, weight_decay=0.0, key=1)
    base = {"w": jnp.linspace(-1.0, 1.0, 5)}
    state = opt.init(base)
    update = lambda g, s, p: opt.update(g, s, p, obj_fn=_SIN_OBJ)  # noqa: E731
    single = jax.jit(update)
    states = [state]
    for _ in range(3):  # members at counts 0, 1, 2, 3
        states.append(single(base, states[-1], base)[1])
    batched = jax.tree.map(lambda *xs: jnp.stack(xs).reshape(2, 2, *xs[0].shape), *states)
    pb = {"w": jnp.broadcast_to(base["w"], (2, 2, 5))}
    nested = jax.jit(jax.vmap(jax.vmap(update)))
    u_b, s_b = pb, batched
    for _ in range(2 * k):
        u_b, s_b = nested(pb, s_b, pb)
        for i, s in enumerate(states):
            u, states[i] = single(base, s, base)
            chex.assert_trees_all_close(jax.tree.map(lambda x, i=i: x.reshape(4, -1)[i], u_b),
                                        jax.tree.map(lambda x: x.reshape(-1), u), rtol=1e-6)
    chex.assert_trees_all_close(
        jax.tree.map(lambda x: x.reshape(4, -1)[3], s_b[0].nu),
        jax.tree.map(lambda x: x.reshape(-1), states[3][0].nu), rtol=1e-6)


def test_bf16_params_keep_h_in_float32_and_accurate():
    """h of bf16 params is float32 by default: a bf16 EMA with β₂ = 0.99 of a constant
    ĥ = 1 stalls near 0.8 (increments 0.01·(1−h) fall below half a bf16 ulp)."""
    ones = _counting_estimator({"w": jnp.ones(4, jnp.bfloat16)})
    const = optax.GradientTransformationExtraArgs(
        ones.init, lambda u, s, p=None, **e: (jax.tree.map(jnp.ones_like, p), s))
    params = {"w": jnp.ones(4, jnp.bfloat16)}
    steps = 400

    def run(nu_dtype):
        opt = gradkit.scale_by_sophia(b2=0.99, update_interval=1, estimator=const,
                                      nu_dtype=nu_dtype)
        body = lambda s, _: (opt.update(params, s, params)[1], None)  # noqa: E731
        return jax.lax.scan(body, opt.init(params), length=steps)[0].nu["w"]

    nu = jax.jit(run, static_argnums=0)(None)
    assert nu.dtype == jnp.float32
    np.testing.assert_allclose(nu, 1.0 - 0.99**steps, rtol=1e-4)
    nu_bf16 = jax.jit(run, static_argnums=0)(jnp.bfloat16)  # explicit opt-in keeps bf16
    assert nu_bf16.dtype == jnp.bfloat16
    assert float(nu_bf16[0]) < 0.9 < 1.0 - 0.99**steps


def test_win_rate_is_off_by_default_and_absent_from_the_state():
    const = _counting_estimator({"w": jnp.array([1.0, 100.0, 0.5])})
    p = {"w": jnp.zeros(3)}
    g = {"w": jnp.array([0.1, 0.1, -0.1])}
    on = gradkit.scale_by_sophia(estimator=const, track_win_rate=True)
    off = gradkit.scale_by_sophia(estimator=const)
    u_on, s_on = jax.jit(on.update)(g, on.init(p), p)
    u_off, s_off = jax.jit(off.update)(g, off.init(p), p)
    chex.assert_trees_all_equal(u_on, u_off)
    assert float(s_on.win_rate) == pytest.approx(1 / 3)
    assert s_off.win_rate is None and off.init(p).win_rate is None
    assert optax.tree.get(s_off, "win_rate") is None
    # The only difference is the win_rate leaf: no −1 placeholder when off.
    assert len(jax.tree.leaves(s_on)) == len(jax.tree.leaves(s_off)) + 1
    chex.assert_trees_all_equal(s_on._replace(win_rate=None), s_off)


def test_signature_follows_optax_contrib_sophia():
    """learning_rate, b1, b2 positional as in optax.contrib.sophia; the rest keyword-only
    (so no positional call can bind a value to a differently ordered argument)."""
    theirs = list(inspect.signature(contrib.sophia).parameters)
    for ours, names in ((gradkit.sophia, theirs[:3]), (gradkit.scale_by_sophia, theirs[1:3])):
        ps = list(inspect.signature(ours).parameters.values())
        assert [p.name for p in ps[:len(names)]] == names
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in ps[len(names):])
    common = {"eps", "gamma", "clip_threshold", "update_interval", "mu_dtype", "weight_decay"}
    assert common <= set(inspect.signature(gradkit.sophia).parameters)
    assert common <= set(inspect.signature(contrib.sophia).parameters)


@pytest.mark.parametrize("b1,k", [(0.965, 5), (0.0, 1), (0.5, 3)])
def test_relation_to_optax_contrib_sophia(b1, k):
    """optax = ours with bias-corrected m and the h from one step earlier.

    Same seed, same gradients, same params sequence, both Hutchinson: the estimator is
    called at the same steps with the same probes, so m and h agree after every step;
    optax's update at step t is clip((m_t/(1−b1ᵗ)) / max(γ h_{t−1}, ε), ρ).
    """
    x, y, params0 = softmax_problem(seed=1)
    b2, gamma, eps = 0.5, 0.5, 1e-8  # large γ(1−b2): some coordinates stay unclipped
    ours = gradkit.scale_by_sophia(b1=b1, b2=b2, gamma=gamma, eps=eps, update_interval=k,
                                   key=5, track_win_rate=True)
    # optax's public alias with learning rate −1 and no weight decay: its scale_by_sophia
    # output times exactly 1 (its state is the first of the chain's).
    theirs = contrib.sophia(
        -1.0, b1=b1, b2=b2, eps=eps, weight_decay=0.0, gamma=gamma, update_interval=k,
        hessian_diagonal_fn=contrib.hutchinson_estimator_diag_hessian(jax.random.PRNGKey(5)))
    so, st = ours.init(params0), theirs.init(params0)
    obj_fn = lambda p: ce(p, x, y)  # noqa: E731
    step_o = jax.jit(lambda g, s, p: ours.update(g, s, p, obj_fn=obj_fn))
    step_t = jax.jit(lambda g, s, p: theirs.update(g, s, p, obj_fn=obj_fn))
    for t in range(1, 2 * k + 3):
        params = jax.tree.map(lambda p, t=t: p + 0.01 * t, params0)  # a fixed path
        g = jax.grad(obj_fn)(params)
        nu_prev = so.nu
        uo, so = step_o(g, so, params)
        ut, st = step_t(g, st, params)
        chex.assert_trees_all_close(so.mu, st[0].mu, rtol=1e-6)
        chex.assert_trees_all_close(so.nu, st[0].nu, rtol=1e-6)
        expected = jax.tree.map(
            lambda m, h, t=t: jnp.clip(m / (1 - b1**t) / jnp.maximum(gamma * h, eps), -1, 1),
            so.mu, nu_prev)
        chex.assert_trees_all_close(ut, expected, rtol=1e-5, atol=1e-7)
        if t == 1:  # optax's first step is sign(m̂); ours already uses ĥ_1.
            chex.assert_trees_all_close(ut, jax.tree.map(jnp.sign, g))
            assert float(so.win_rate) > 0.0
            assert not np.allclose(np.asarray(uo["w"]), np.asarray(ut["w"]))


def test_state_structure_dtypes_and_win_rate_lookup():
    params = {"w": jnp.ones((2, 3), jnp.bfloat16), "b": jnp.ones(3)}
    opt = gradkit.sophia(1e-3, estimator="gnb", mu_dtype=jnp.float32, track_win_rate=True)
    state = opt.init(params)
    logits_fn = lambda p: jnp.ones((4, 2)) @ p["w"].astype(jnp.float32) + p["b"]  # noqa: E731
    _, state = jax.jit(lambda s: opt.update(params, s, params, logits_fn=logits_fn))(state)
    inner = state[0]
    assert isinstance(inner, gradkit.ScaleBySophiaState)
    assert inner.count.dtype == jnp.int32 and int(inner.count) == 1
    assert inner.mu["w"].dtype == jnp.float32
    # nu_dtype=None: float32 for the bf16 leaf (and the float32 one).
    assert inner.nu["w"].dtype == jnp.float32 and inner.nu["b"].dtype == jnp.float32
    assert isinstance(inner.estimator_state, gradkit.GNBDiagHessianState)
    assert inner.estimator_state.key.dtype == jnp.uint32
    win = optax.tree.get(state, "win_rate")
    assert win.dtype == jnp.float32 and win.shape == ()


def test_default_gamma_follows_paper_per_estimator():
    x, y, params = softmax_problem()
    extra = dict(obj_fn=lambda p: ce(p, x, y), logits_fn=lambda p: logits(p, x))
    g = jax.tree.map(lambda v: 1e-4 * v, jax.grad(ce)(params, x, y))  # small: few clip

    def first_update(estimator, gamma=None):
        opt = gradkit.scale_by_sophia(estimator=estimator, gamma=gamma)
        return opt.update(g, opt.init(params), params, **extra)[0]

    for estimator, gamma in (("hutchinson", 0.01), ("gnb", 0.05)):
        default = jax.jit(first_update, static_argnums=0)(estimator)
        explicit = jax.jit(first_update, static_argnums=0)  # γ traced: one compile for both
        chex.assert_trees_all_equal(default, explicit(estimator, gamma))
        other = explicit(estimator, 2 * gamma)
        assert not np.allclose(np.asarray(default["w"]), np.asarray(other["w"]))


@pytest.mark.parametrize("kwargs,name", [
    (dict(b1=1.0), "b1"), (dict(b1=-0.1), "b1"), (dict(b2=1.0), "b2"),
    (dict(gamma=0.0), "gamma"), (dict(eps=0.0), "eps"), (dict(eps=-1.0), "eps"),
    (dict(clip_threshold=0.0), "clip_threshold"), (dict(update_interval=0), "update_interval"),
    (dict(update_interval=2.5), "update_interval"), (dict(estimator="newton"), "estimator"),
    (dict(weight_decay=-1.0), "weight_decay"),
])
def test_bad_hyperparameters_raise(kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        gradkit.sophia(1e-3, **kwargs)


def test_bad_estimator_dtype_and_key():
    with pytest.raises(TypeError, match="estimator"):
        gradkit.sophia(1e-3, estimator=lambda p: p)
    with pytest.raises(TypeError, match="`mu_dtype`"):
        gradkit.sophia(1e-3, mu_dtype=jnp.int32)
    with pytest.raises(TypeError, match="`nu_dtype`"):
        gradkit.scale_by_sophia(nu_dtype=jnp.int8)
    with pytest.raises(TypeError):
        gradkit.sophia(1e-3, seed=0)
    params = {"w": jnp.ones(2)}
    chex.assert_trees_all_equal(
        gradkit.sophia(1e-3, key=jax.random.key(4)).init(params),
        gradkit.sophia(1e-3, key=4).init(params))


def test_nan_inf_and_spikes():
    const = _counting_estimator({"w": jnp.ones(3)})
    opt = gradkit.scale_by_sophia(gamma=1.0, estimator=const)
    p = {"w": jnp.zeros(3)}
    step = jax.jit(opt.update)
    # A 1e6× spike moves a coordinate by at most clip_threshold.
    u, _ = step({"w": jnp.array([1e6, 1e-3, -1e6])}, opt.init(p), p)
    np.testing.assert_allclose(u["w"], [1.0, 0.035e-3 / 0.01, -1.0], rtol=1e-5)
    # NaN stays in its coordinate; ±Inf becomes ±clip_threshold.
    u, s = step({"w": jnp.array([jnp.nan, jnp.inf, -1e-3])}, opt.init(p), p)
    assert np.isnan(u["w"][0]) and float(u["w"][1]) == 1.0 and np.isfinite(u["w"][2])
    assert np.isnan(s.mu["w"][0])
    # apply_if_finite skips the whole step, as documented.
    safe = optax.apply_if_finite(opt, max_consecutive_errors=3)
    u, s = jax.jit(safe.update)({"w": jnp.array([jnp.nan, 1.0, 1.0])}, safe.init(p), p)
    chex.assert_trees_all_equal(u, {"w": jnp.zeros(3)})
    # A non-finite Hessian estimate poisons h (and so the update) of its coordinate.
    bad = _counting_estimator({"w": jnp.array([jnp.nan, 1.0, 1.0])})
    opt = gradkit.scale_by_sophia(gamma=1.0, estimator=bad)
    u, _ = jax.jit(opt.update)({"w": jnp.full(3, 1e-3)}, opt.init(p), p)
    assert np.isnan(u["w"][0]) and np.all(np.isfinite(u["w"][1:]))


def test_mismatched_pytrees_raise():
    opt = gradkit.sophia(1e-3)
    params = {"w": jnp.ones(3)}
    with pytest.raises(ValueError):
        opt.update({"v": jnp.ones(3)}, opt.init(params), params, obj_fn=lambda p: 0.0)


# --- Multi-device ------------------------------------------------------------------


@pytest.mark.parametrize("estimator", ["hutchinson", "gnb"])
def test_pmap_replicas_identical_with_axis_name_and_diverge_without(estimator):
    n = jax.device_count()
    x, y, params = softmax_problem(seed=2, batch=8 * n)
    xs, ys = x.reshape(n, 8, -1), y.reshape(n, 8)

    def run(axis_name, num_steps):
        opt = gradkit.sophia(0.1, b2=0.0, gamma=1.0, update_interval=1, estimator=estimator,
                             weight_decay=0.0, axis_name=axis_name, track_win_rate=True)

        def steps(params, xb, yb):
            state = opt.init(params)
            extra = dict(obj_fn=lambda p: ce(p, xb, yb), logits_fn=lambda p: logits(p, xb))
            for _ in range(num_steps):
                g = jax.lax.pmean(jax.grad(ce)(params, xb, yb), "d")
                u, state = opt.update(g, state, params, **extra)
                params = optax.apply_updates(params, u)
            return params, state[0].win_rate

        rep = jax.tree.map(lambda a: jnp.broadcast_to(a, (n, *a.shape)), params)
        return jax.pmap(steps, axis_name="d")(rep, xs, ys)

    same, win = run("d", num_steps=2)
    spread = jax.tree.map(lambda a: float(jnp.max(jnp.abs(a - a[0]))), same)
    assert max(jax.tree.leaves(spread)) == 0.0
    assert float(win[0]) > 0.0  # some coordinates are unclipped, so h matters
    diff, _ = run(None, num_steps=1)  # the first step already uses per-device ĥ
    spread = jax.tree.map(lambda a: float(jnp.max(jnp.abs(a - a[0]))), diff)
    assert max(jax.tree.leaves(spread)) > 1e-4


# --- Flax helper ---------------------------------------------------------------------


def test_sophia_extra_args_from_flax_apply():
    model = nn.Dense(3)
    x = jax.random.normal(jax.random.key(0), (6, 2))
    y = jnp.array([0, 1, 2, 0, 1, 2])
    mask = jnp.array([1, 1, 1, 1, 0, 0])
    params = model.init(jax.random.key(1), x)["params"]
    extra = gradkit.sophia_extra_args(model.apply, x, y, mask=mask)
    logits = model.apply({"params": params}, x)
    chex.assert_trees_all_close(extra["logits_fn"](params), logits)
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    np.testing.assert_allclose(extra["obj_fn"](params), ce[:4].mean(), rtol=1e-6)
    assert extra["mask"] is mask
    assert set(gradkit.sophia_extra_args(model.apply, x)) == {"logits_fn"}
    for est in ("hutchinson", "gnb"):
        opt = gradkit.sophia(1e-2, estimator=est)
        u, _ = jax.jit(lambda g, s, opt=opt: opt.update(g, s, params, **extra))(
            jax.grad(extra["obj_fn"])(params), opt.init(params))
        assert all(bool(jnp.all(jnp.isfinite(v))) for v in jax.tree.leaves(u))


@pytest.mark.parametrize("estimator", ["hutchinson", "gnb"])
def test_shard_map_sophia_matches_pmap_and_stays_replicated(estimator):
    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as P

    n = jax.device_count()
    x, y, params = softmax_problem(seed=5, batch=8 * n)
    opt = gradkit.sophia(0.1, b2=0.0, gamma=1.0, update_interval=1, estimator=estimator,
                         weight_decay=0.0, axis_name="d")

    def steps(params, xb, yb):
        state = opt.init(params)
        extra = dict(obj_fn=lambda p: ce(p, xb, yb), logits_fn=lambda p: logits(p, xb))
        for _ in range(2):
            # Differentiate per device (pcast: varying), then average, as under pmap.
            local = jax.lax.pcast(params, "d", to="varying")
            g = jax.lax.pmean(jax.grad(ce)(local, xb, yb), "d")
            u, state = opt.update(g, state, params, **extra)
            params = optax.apply_updates(params, u)
        return params

    mesh = Mesh(np.array(jax.devices()), ("d",))
    # out_specs=P(): shard_map's replication check proves every device holds the same params.
    sharded = jax.jit(jax.shard_map(steps, mesh=mesh, in_specs=(P(), P("d"), P("d")),
                                    out_specs=P()))(params, x, y)
    def steps_pmap(params, xb, yb):
        state = opt.init(params)
        extra = dict(obj_fn=lambda p: ce(p, xb, yb), logits_fn=lambda p: logits(p, xb))
        for _ in range(2):
            g = jax.lax.pmean(jax.grad(ce)(params, xb, yb), "d")
            u, state = opt.update(g, state, params, **extra)
            params = optax.apply_updates(params, u)
        return params

    rep = jax.tree.map(lambda a: jnp.broadcast_to(a, (n, *a.shape)), params)
    pmapped = jax.pmap(steps_pmap, axis_name="d")(rep, x.reshape(n, 8, -1), y.reshape(n, 8))
    chex.assert_trees_all_close(sharded, jax.tree.map(lambda a: a[0], pmapped), rtol=1e-5,
                                atol=1e-6)
