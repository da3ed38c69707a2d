# SPDX-License-Identifier: Apache-2.0
"""FRUGAL: float64 NumPy transcription of the official algorithm, routing, memory, bad input."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradkit
from tests import helpers

LR, WD, S_IN = 3e-2, 0.1, 0.5
B1, B2, EPS = 0.9, 0.999, 1e-8
T, STEPS = 16, 35  # refreshes at counts 0, 16 and 32


def _grads(shapes, steps, seed=0):
    rng = np.random.default_rng(seed)
    return [{k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
            for _ in range(steps)]


class _RefAdam:
    """Official ``AdamW._compute_update`` (ε added to √v/√(1−β₂ᵗ)) on one array."""

    def __init__(self, shape):
        self.m, self.v, self.t = np.zeros(shape), np.zeros(shape), 0

    def step(self, g):
        self.t += 1
        self.m = B1 * self.m + (1 - B1) * g
        self.v = B2 * self.v + (1 - B2) * g * g
        denom = np.sqrt(self.v) / np.sqrt(1 - B2**self.t) + EPS
        return self.m / denom / (1 - B1**self.t)


def _ref_frugal(params, grads, projection, rho, selections=None, order="descending"):
    """The official ProjOptimizer step on float64 params: decay, then Adam + signSGD.

    ``selections[j]`` are the random indices the JAX run drew at refresh j (the same
    random bits); SVD and the deterministic block orders are computed here.
    """
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    names = list(p)
    state = {}
    num = len(names)
    k_blocks = round(num * rho)
    for step, g in enumerate(grads):
        g = {k: np.asarray(v, np.float64) for k, v in g.items()}
        period = step // T
        if step % T == 0:  # _update_states: new subspace, fresh moments and step count
            if projection == "blocks":
                if order == "descending":
                    start = (num - 1 - period * k_blocks) % num
                    active = {(start - i) % num for i in range(k_blocks)}
                else:
                    active = set(int(i) for i in selections[period])
                state = {n: (_RefAdam(p[n].shape) if i in active else None)
                         for i, n in enumerate(names)}
            else:
                state = {}
                for i, n in enumerate(names):
                    m, ncol = g[n].shape
                    if projection == "svd":
                        u, _, vh = np.linalg.svd(g[n], full_matrices=False)
                        if m >= ncol:
                            proj = ("right", vh[:round(ncol * rho)])
                        else:
                            proj = ("left", u[:, :round(m * rho)])
                    else:
                        proj = (projection, np.asarray(selections[period][i]))
                    state[n] = (proj, _RefAdam(_down(g[n], proj).shape))
        for n in names:
            p[n] = p[n] * (1 - LR * WD)
            if projection == "blocks":
                if state[n] is not None:
                    upd = -LR * state[n].step(g[n])
                else:
                    upd = -LR * S_IN * np.sign(g[n])
            else:
                proj, adam = state[n]
                low = _down(g[n], proj)
                upd = -LR * _up(adam.step(low), proj, g[n].shape)
                upd += -LR * S_IN * np.sign(g[n] - _up(low, proj, g[n].shape))
            p[n] = p[n] + upd
    return p


def _down(x, proj):
    side, q = proj
    return {"right": lambda: x @ q.T, "left": lambda: q.T @ x,
            "columns": lambda: x[:, q], "rows": lambda: x[q]}[side]()


def _up(x, proj, shape):
    side, q = proj
    if side == "right":
        return x @ q
    if side == "left":
        return q @ x
    out = np.zeros(shape)
    if side == "columns":
        out[:, q] = x
    else:
        out[q] = x
    return out


SHAPES = {"a": (6, 4), "b": (3, 8), "c": (5, 5), "d": (4, 7)}


@pytest.mark.parametrize("projection,order,rho", [
    ("svd", "descending", 0.5), ("columns", "descending", 0.5), ("rows", "descending", 0.5),
    ("blocks", "descending", 0.5), ("blocks", "random", 0.25)])
def test_matches_float64_reference_over_refreshes(projection, order, rho):
    params = {k: v for k, v in _grads(SHAPES, 1, seed=1)[0].items()}
    grads = _grads(SHAPES, STEPS)
    opt = optax.chain(
        gradkit.scale_by_frugal(B1, B2, rho=rho, update_interval=T, projection=projection,
                                block_order=order, eps=EPS, inactive_scale=S_IN, key=3),
        optax.add_decayed_weights(WD), optax.scale_by_learning_rate(LR))
    state = opt.init(params)
    update = jax.jit(opt.update)
    p = params
    selections = []
    for step, g in enumerate(grads):
        u, state = update(g, state, p)
        p = optax.apply_updates(p, u)
        if step % T == 0:
            proj = state[0].projector
            selections.append(np.asarray(proj)[:-1] if projection == "blocks"
                              else [np.asarray(proj[n]) for n in SHAPES])
    expected = _ref_frugal(params, grads, projection, rho, selections, order)
    chex.assert_trees_all_close(p, expected, rtol=2e-5, atol=2e-5)
    if projection == "blocks" and order == "random":  # the random draws differ per period
        assert len({tuple(sorted(s)) for s in selections}) > 1
    if projection in ("columns", "rows"):
        assert any(not np.array_equal(a, b) for a, b in zip(*selections[:2], strict=True))


def test_descending_blocks_visit_leaves_from_last_and_reset_moments():
    params = {k: jnp.zeros(s) for k, s in SHAPES.items()}  # order a, b, c, d
    opt = gradkit.scale_by_frugal(rho=0.5, update_interval=2, projection="blocks")
    state = opt.init(params)
    g = {k: jnp.full(s, 2.0) for k, s in SHAPES.items()}
    update = jax.jit(opt.update)
    u, state = update(g, state)
    assert np.asarray(state.projector).tolist()[-1] == -1  # sentinel after the k indices
    assert sorted(np.asarray(state.projector)[:-1].tolist()) == [2, 3]  # c, d active first
    # Adam's first step is m̂/(√v̂+ε) = 1 − tiny; the sign part is exactly 1.
    np.testing.assert_allclose(u["d"], 1.0 - 1e-8 / 2.0, rtol=1e-7)
    np.testing.assert_array_equal(u["a"], 1.0)
    _, state = update(g, state)
    _, state = update(g, state)  # count 2: refresh
    assert sorted(np.asarray(state.projector)[:-1].tolist()) == [0, 1]
    # moments restarted: only one EMA step in the buffer, m = (1−β₁)·g
    np.testing.assert_allclose(np.asarray(state.mu)[:SHAPES["a"][0] * SHAPES["a"][1]],
                               0.1 * 2.0, rtol=1e-6)


def test_alias_routes_non_matrices_to_adamw_and_matrices_to_frugal():
    params = {"kernel": jnp.ones((6, 4)), "bias": jnp.ones(4), "conv": jnp.ones((2, 2, 3))}
    grads = jax.tree.map(lambda x: jnp.linspace(-1.0, 2.0, x.size).reshape(x.shape), params)
    opt = gradkit.frugal(1e-2, projection="svd", weight_decay=0.1)
    u, _ = opt.update(grads, opt.init(params), params)
    ref = optax.adamw(1e-2, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.1)
    sub = {"bias": params["bias"], "conv": params["conv"]}
    u_ref, _ = ref.update({k: grads[k] for k in sub}, ref.init(sub), sub)
    chex.assert_trees_all_close({k: u[k] for k in sub}, u_ref, rtol=1e-4)  # 1−β₂ rounding
    body = optax.chain(gradkit.scale_by_frugal(projection="svd"), optax.add_decayed_weights(0.1),
                       optax.scale_by_learning_rate(1e-2))
    k_ref, _ = body.update({"kernel": grads["kernel"]}, body.init({"kernel": params["kernel"]}),
                           {"kernel": params["kernel"]})
    chex.assert_trees_all_close(u["kernel"], k_ref["kernel"], rtol=1e-6)
    # frugal_mask=False for the kernel: everything is AdamW
    none = gradkit.frugal(1e-2, weight_decay=0.1,
                          frugal_mask=lambda p: jax.tree.map(lambda _: False, p))
    u_all, _ = none.update(grads, none.init(params), params)
    u_adam, _ = ref.update(grads, ref.init(params), params)
    chex.assert_trees_all_close(u_all, u_adam, rtol=1e-4)


def _transformer_params(d=256, layers=4, vocab=256, seq=128):
    """Shapes of a byte-level GPT block stack (Flax (in, out) kernels)."""
    p = {"tok_embed": jnp.zeros((vocab, d)), "pos_embed": jnp.zeros((seq, d)),
         "head": {"kernel": jnp.zeros((d, vocab)), "bias": jnp.zeros(vocab)}}
    for i in range(layers):
        p[f"block_{i}"] = {"qkv": jnp.zeros((d, 3 * d)), "out": jnp.zeros((d, d)),
                           "up": jnp.zeros((d, 4 * d)), "down": jnp.zeros((4 * d, d)),
                           "ln1": jnp.zeros(d), "ln2": jnp.zeros(d)}
    return p


def _is_body(params):
    return jax.tree_util.tree_map_with_path(
        lambda path, x: path[0].key.startswith("block_") and x.ndim == 2, params)


@pytest.mark.parametrize("projection", ["blocks", "svd", "columns", "rows"])
def test_state_bytes_per_param_at_rho_quarter(projection):
    params = _transformer_params()
    n = sum(x.size for x in jax.tree.leaves(params))
    opt = gradkit.frugal(1e-3, rho=0.25, projection=projection, frugal_mask=_is_body)
    state = opt.init(params)  # the actual state pytree
    per_param = gradkit.memory.state_bytes(state) / n
    adamw = gradkit.memory.state_bytes(jax.eval_shape(optax.adamw(1e-3).init, params)) / n
    assert per_param <= 3.0, per_param
    assert adamw == pytest.approx(8.0, rel=1e-3)


@pytest.mark.parametrize("kwargs,name", [
    (dict(rho=-0.1), "rho"), (dict(rho=1.5), "rho"), (dict(update_interval=0), "update_interval"),
    (dict(update_interval=-3), "update_interval"), (dict(projection="qr"), "projection"),
    (dict(block_order="up"), "block_order"), (dict(b2=1.0), "b2"), (dict(eps=0.0), "eps"),
    (dict(inactive_scale=-1.0), "inactive_scale")])
def test_bad_hyperparameters_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        gradkit.scale_by_frugal(**kwargs)


@pytest.mark.parametrize("lr", [-1e-3, float("nan"), float("inf")])
def test_negative_or_non_finite_learning_rate_raises(lr):
    with pytest.raises(ValueError, match="learning_rate"):
        gradkit.frugal(lr)


def test_non_matrix_leaf_raises_for_matrix_projections():
    with pytest.raises(ValueError, match=r"params.*\['v'\].*\(3,\)"):
        gradkit.scale_by_frugal(projection="svd").init({"v": jnp.zeros(3)})
    # blocks take tensors of any shape
    gradkit.scale_by_frugal(projection="blocks").init({"v": jnp.zeros(3)})


def test_mismatched_updates_raise():
    opt = gradkit.scale_by_frugal(projection="columns")
    state = opt.init({"a": jnp.zeros((4, 4))})
    with pytest.raises(ValueError, match="structure"):
        opt.update({"b": jnp.zeros((4, 4))}, state)


def test_blocks_with_no_active_tensor_keep_non_empty_state_and_sign_steps():
    params = {"w": jnp.zeros((4, 3))}
    opt = gradkit.scale_by_frugal(rho=0.25)  # k = round(0.25) = 0: pure signSGD
    state = opt.init(params)
    assert all(x.size > 0 for x in jax.tree.leaves(state))  # orbax cannot save empty arrays
    g = {"w": jnp.arange(12.0).reshape(4, 3) - 5.0}
    u, _ = jax.jit(opt.update)(g, state)
    np.testing.assert_array_equal(u["w"], np.sign(g["w"]))


def test_nan_gradient_gives_nan_update_as_documented():
    opt = gradkit.scale_by_frugal(rho=0.5, projection="columns")
    params = {"w": jnp.zeros((3, 4))}
    g = {"w": jnp.ones((3, 4)).at[0, 0].set(jnp.nan)}
    u, _ = jax.jit(opt.update)(g, opt.init(params))
    assert bool(jnp.isnan(u["w"][0, 0]))


@pytest.mark.parametrize("projection", ["blocks", "columns"])
def test_rho_one_without_refresh_is_adamw(projection):
    # (Not "svd": at ρ = 1 it is Adam in the rotated basis of the first gradient's singular
    # vectors, which differs because Adam is not rotation-invariant.)
    params = {"a": jnp.ones((4, 3)), "b": jnp.ones((2, 5)), "bias": jnp.zeros(3)}
    opt = gradkit.frugal(1e-2, rho=1.0, update_interval=1000, weight_decay=0.1,
                         projection=projection)
    ref = optax.adamw(1e-2, weight_decay=0.1)
    s, r = opt.init(params), ref.init(params)
    step, ref_step = jax.jit(opt.update), jax.jit(ref.update)
    p = q = params
    for i in range(5):
        g = jax.tree.map(lambda x, i=i: jnp.cos(jnp.arange(x.size, dtype=jnp.float32) + i)
                         .reshape(x.shape), params)
        u, s = step(g, s, p)
        v, r = ref_step(g, r, q)
        p, q = optax.apply_updates(p, u), optax.apply_updates(q, v)
    chex.assert_trees_all_close(p, q, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("projection", ["blocks", "svd", "columns"])
def test_jitted_step_can_donate_params_and_state(projection):
    # m and v are separate buffers, so XLA may reuse both in place.
    params = {"a": jnp.ones((6, 4)), "b": jnp.ones((3, 5)), "bias": jnp.zeros(4)}
    p = helpers.run_donating_steps(gradkit.frugal(1e-2, rho=0.5, projection=projection), params)
    assert bool(jnp.all(jnp.isfinite(p["a"])))


@pytest.mark.parametrize("projection", ["blocks", "svd"])
def test_moment_dtypes_and_key_forms(projection):
    params = {"a": jnp.ones((6, 4), jnp.bfloat16), "b": jnp.ones((3, 5), jnp.bfloat16)}
    state = gradkit.scale_by_frugal(rho=0.5, projection=projection).init(params)
    # bf16 params: m in bf16, v in float32 (a bf16 square underflows).
    assert {x.dtype for x in jax.tree.leaves(state.mu)} == {jnp.dtype(jnp.bfloat16)}
    assert {x.dtype for x in jax.tree.leaves(state.nu)} == {jnp.dtype(jnp.float32)}
    state = gradkit.scale_by_frugal(rho=0.5, projection=projection, mu_dtype=jnp.float32,
                                    nu_dtype=jnp.bfloat16).init(params)
    assert {x.dtype for x in jax.tree.leaves(state.mu)} == {jnp.dtype(jnp.float32)}
    assert {x.dtype for x in jax.tree.leaves(state.nu)} == {jnp.dtype(jnp.bfloat16)}
    # an int and the typed key it makes give the same state
    by_int = gradkit.scale_by_frugal(projection="columns", key=7).init(params)
    by_key = gradkit.scale_by_frugal(projection="columns", key=jax.random.key(7)).init(params)
    np.testing.assert_array_equal(by_int.key, by_key.key)
    with pytest.raises(TypeError, match="key"):
        gradkit.scale_by_frugal(key="seven")
    with pytest.raises(TypeError, match="mu_dtype"):
        gradkit.scale_by_frugal(mu_dtype=jnp.int32)


def _blocks_reference(leaves, order_windows, interval, steps, hp):
    """Per-leaf FRUGAL blocks in JAX: each leaf its own moments, Adam if active else sign."""
    b1, b2, eps, s = (jnp.float32(x) for x in hp)  # 1 − β rounded in float32, as there

    @jax.jit
    def step(g, mom, active, refresh, t):
        out, new = [], []
        for gi, (m, v), on in zip(g, mom, active, strict=True):
            m0, v0 = jnp.where(refresh, 0.0, m), jnp.where(refresh, 0.0, v)
            m1, v1 = b1 * m0 + (1 - b1) * gi, b2 * v0 + (1 - b2) * gi * gi
            tf = t.astype(jnp.float32)
            d = (m1 / (1 - b1**tf)) / (jnp.sqrt(v1 / (1 - b2**tf)) + eps)
            out.append(jnp.where(on, d, s * jnp.sign(gi)))
            new.append((jnp.where(on, m1, m), jnp.where(on, v1, v)))
        return out, new

    mom = [(jnp.zeros_like(x), jnp.zeros_like(x)) for x in leaves]
    outs = []
    for c, g in enumerate(steps):
        active = [i in order_windows[(c // interval) % len(order_windows)]
                  for i in range(len(leaves))]
        u, mom = step(g, mom, active, jnp.asarray(c % interval == 0),
                      jnp.asarray(c % interval + 1))
        outs.append(u)
    return outs, mom


def test_blocks_match_a_per_leaf_reference_over_refreshes():
    # Moments in one flat buffer, updated slice by slice: bit for bit the numbers of Adam
    # on each active leaf with moments of its own (float32, jitted as the reference).
    shapes = [(6, 4), (3,), (5, 5, 2), (40,), (2, 3), (9, 2), (1,)]
    rng = np.random.default_rng(0)
    leaves = [jnp.asarray(rng.standard_normal(s), jnp.float32) for s in shapes]
    steps = [[jnp.asarray(rng.standard_normal(s) * (1 + c % 3), jnp.float32) for s in shapes]
             for c in range(23)]
    num, k = len(shapes), round(len(shapes) * 0.5)
    windows = [[(num - 1 - j * k - i) % num for i in range(k)] for j in range(num)]
    opt = gradkit.scale_by_frugal(rho=0.5, update_interval=5, inactive_scale=0.5)
    state = opt.init(leaves)
    update = jax.jit(opt.update)
    ref, mom = _blocks_reference(leaves, windows, 5, steps, (0.9, 0.999, 1e-8, 0.5))
    for c, g in enumerate(steps):
        u, state = update(g, state)
        chex.assert_trees_all_equal(u, ref[c])
    active = sorted(np.asarray(state.projector)[:-1].tolist())
    offset = 0
    for i in active:  # the buffer holds the active leaves back to back, in leaf order
        size = int(np.prod(shapes[i]))
        np.testing.assert_allclose(np.asarray(state.mu)[offset:offset + size],
                                   np.ravel(mom[i][0]), rtol=0)
        np.testing.assert_allclose(np.asarray(state.nu)[offset:offset + size],
                                   np.ravel(mom[i][1]), rtol=0)
        offset += size
