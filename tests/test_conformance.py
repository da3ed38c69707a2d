# SPDX-License-Identifier: Apache-2.0
"""Every registry row (alias, primitive, wrapper) through the behaviour all optax
transforms must share (see tests/registry.py)."""

from __future__ import annotations

import functools
import inspect
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from tests import helpers
from tests.registry import ROWS
from tests.registry import Row


def _rows(kind: str | None = None):
    return pytest.mark.parametrize(
        "row", [row for row in ROWS if kind is None or row.kind == kind],
        ids=lambda row: row.name)


@jax.jit  # traced once per dtype, not at every call (eager jax.grad retraces)
def _grads_fn(params, step):
    """Gradient of the parabola plus step-dependent noise (deterministic)."""
    grads = jax.grad(helpers.parabola)(params)
    noise = helpers.random_like(params, seed=100 + step, scale=0.1)
    return jax.tree.map(lambda g, n: (g + n).astype(n.dtype), grads, noise)


@functools.partial(jax.jit, static_argnums=(0, 1), donate_argnums=(2, 3))
def _step(opt, extra_args, params, state, step):
    """One update on the noisy parabola, jitted (one compilation per optimizer, shared by
    every step) and donating params and state, as a train step does."""
    extra = extra_args(helpers.parabola, params, state)
    updates, state = opt.update(_grads_fn(params, step), state, params, **extra)
    return optax.apply_updates(params, updates), state


def _run(row: Row, opt, params, num_steps, state=None):
    """`num_steps` jitted updates. The steps donate params and state (so every check also
    catches a state leaf sharing a buffer), hence run from copies of the caller's; without
    `state`, from `opt.init` of the copied params."""
    params = jax.tree.map(jnp.copy, params)
    state = opt.init(params) if state is None else jax.tree.map(jnp.copy, state)
    for step in range(num_steps):
        params, state = _step(opt, row.extra_args, params, state, jnp.int32(step))
    return params, state


def _variant(kind: str, fn):
    """`fn` under jax.jit, or under jax.pmap on every device (the arguments broadcast,
    the first device's output returned)."""
    if kind == "jit":
        return jax.jit(fn)
    pmapped = jax.pmap(fn)
    devices = jax.sharding.NamedSharding(
        jax.sharding.Mesh(np.array(jax.devices()), ("devices",)), jax.P("devices"))

    def call(*args):
        stacked = jax.tree.map(lambda x: jax.device_put(
            jnp.broadcast_to(x, (jax.device_count(), *jnp.shape(x))), devices), args)
        # The first device's own buffer, so the next call starts from one-device arrays.
        return jax.tree.map(lambda x: x.addressable_shards[0].data[0], pmapped(*stacked))

    return call


@_rows()
def test_jit_and_pmap_agree_with_eager(row: Row):
    """jit and pmap (every device, the same arguments) give the eager (op-by-op) update's
    result."""
    opt = row.factory(**row.kwargs)
    params = helpers.tiny_params()
    state = opt.init(params)
    expected_params, expected_state = params, state
    for step in range(3):
        updates, expected_state = opt.update(
            _grads_fn(expected_params, step), expected_state, expected_params,
            **row.extra_args(helpers.parabola, expected_params, expected_state))
        expected_params = optax.apply_updates(expected_params, updates)
    # One compilation for all steps: the extra args that are functions (loss, logits) are
    # closed over, the arrays (EGGROLL's fitness) change per step and are passed.
    functions = {k: v for k, v in row.extra_args(helpers.parabola, params, state).items()
                 if callable(v)}
    for variant in ("jit", "pmap"):
        update = _variant(variant, lambda grads, state, params, arrays: opt.update(
            grads, state, params, **functions, **arrays))
        params_v, state_v = params, state
        for step in range(3):
            extra = row.extra_args(helpers.parabola, params_v, state_v)
            arrays = {k: v for k, v in extra.items() if k not in functions}
            updates_v, state_v = update(_grads_fn(params_v, step), state_v, params_v, arrays)
            params_v = optax.apply_updates(params_v, updates_v)
        chex.assert_trees_all_close(params_v, expected_params, rtol=1e-5, atol=1e-6,
                                    custom_message=variant)
        chex.assert_trees_all_equal_structs(state_v, expected_state)


@_rows()
def test_jitted_step_donates_params_and_state_and_traces_once(row: Row):
    """A train step donates params and state (no leaf of init's state may be a params
    buffer or another state leaf's buffer) and is traced once across steps."""
    opt = row.factory(**row.kwargs)
    params = helpers.tiny_params()
    state = opt.init(params)
    extra = row.extra_args(helpers.parabola, params, state)
    chex.clear_trace_counter()

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    @chex.assert_max_traces(n=1)
    def step(params, state):
        updates, state = opt.update(jax.grad(helpers.parabola)(params), state,
                                    params, **extra)
        return optax.apply_updates(params, updates), state

    for _ in range(4):
        params, state = step(params, state)


@_rows()
def test_bf16_params_keep_dtype(row: Row):
    opt = row.factory(**row.kwargs)
    params = helpers.tiny_params(jnp.bfloat16)
    state0 = opt.init(params)
    params_n, state_n = _run(row, opt, params, 3)
    chex.assert_trees_all_equal_dtypes(params_n, params)
    chex.assert_trees_all_equal_shapes_and_dtypes(state_n, state0)
    for leaf in jax.tree.leaves(params_n):
        assert bool(jnp.all(jnp.isfinite(leaf.astype(jnp.float32))))


@_rows()
def test_multisteps_accumulation_equals_one_step_on_the_mean_gradient(row: Row):
    """Gradient accumulation: `optax.MultiSteps(opt, 2)` over two gradients gives no update
    at the first call and, at the second, `opt`'s update on their mean."""
    opt = row.factory(**row.kwargs)
    params = helpers.tiny_params()
    g1, g2 = _grads_fn(params, 0), _grads_fn(params, 1)
    mean = jax.tree.map(lambda a, b: (a + b) / 2, g1, g2)
    expected, _ = jax.jit(lambda p, s: opt.update(
        mean, s, p, **row.extra_args(helpers.parabola, p, s)))(params, opt.init(params))

    multi = optax.MultiSteps(opt, every_k_schedule=2)

    @jax.jit
    def update(grads, state, params):
        return multi.update(grads, state, params,
                            **row.extra_args(helpers.parabola, params, state))

    state = multi.init(params)
    first, state = update(g1, state, params)
    second, _ = update(g2, state, params)
    chex.assert_trees_all_equal(first, jax.tree.map(jnp.zeros_like, first))
    chex.assert_trees_all_close(second, expected, rtol=1e-5, atol=1e-7)


@_rows()
def test_state_shapes_and_dtypes_are_stable_through_lax_cond(row: Row):
    """The state's types after an update equal init's (shapes, dtypes, weak types),
    so the optimizer can sit inside lax.cond/scan/while (e.g. optax.MultiSteps)."""
    opt = row.factory(**row.kwargs)
    params = helpers.tiny_params()
    state = opt.init(params)
    extra = row.extra_args(helpers.parabola, params, state)
    grads = _grads_fn(params, 0)

    @jax.jit
    def maybe_step(pred, state):
        return jax.lax.cond(
            pred, lambda s: opt.update(grads, s, params, **extra)[1], lambda s: s, state)

    state1 = maybe_step(True, state)
    state2 = maybe_step(True, state1)
    chex.assert_trees_all_equal_shapes_and_dtypes(state2, state)
    chex.assert_trees_all_equal_structs(maybe_step(False, state), state)


@_rows("alias")
def test_concrete_learning_rate_is_validated_and_required(row: Row):
    signature = inspect.signature(row.factory)
    assert signature.parameters["learning_rate"].default is inspect.Parameter.empty
    for bad in (-1e-3, -1, math.nan, math.inf, np.float32(-0.5)):
        with pytest.raises(ValueError, match="`learning_rate`"):
            row.factory(**{**row.kwargs, "learning_rate": bad})
    with pytest.raises(TypeError, match="`learning_rate`"):
        row.factory(**{**row.kwargs, "learning_rate": None})
    # Zero (optax's freeze idiom; the inject_hyperparams check below steps at a zero
    # rate), schedules and traced values pass through.
    row.factory(**{**row.kwargs, "learning_rate": 0.0})
    row.factory(**{**row.kwargs, "learning_rate": optax.constant_schedule(-1.0)})
    row.factory(**{**row.kwargs, "learning_rate": jnp.asarray(-1.0)})


@_rows("primitive")
def test_primitive_has_no_learning_rate_and_declares_extra_args(row: Row):
    opt = row.factory(**row.kwargs)
    assert "learning_rate" not in inspect.signature(row.factory).parameters
    if row.receives_extra_args:
        assert isinstance(opt, optax.GradientTransformationExtraArgs), row.name
    elif not isinstance(opt, optax.GradientTransformationExtraArgs):
        with pytest.raises(TypeError):  # a plain update rejects keywords outright
            opt.update(jnp.zeros(1), opt.init(jnp.zeros(1)), jnp.zeros(1), unknown=1)


@_rows()
def test_inject_hyperparams_matches_and_takes_schedules(row: Row):
    if row.kind == "wrapper":
        pytest.skip("a wrapper's hyperparameters are the inner optimizer's")
    params = helpers.tiny_params()
    plain = row.factory(**row.kwargs)
    injected = optax.inject_hyperparams(row.factory)(**row.kwargs)
    p_plain, _ = _run(row, plain, params, 3)
    p_inj, state = _run(row, injected, params, 3)
    chex.assert_trees_all_close(p_inj, p_plain, rtol=1e-6, atol=1e-7)
    if row.kind != "alias":
        return
    lr = row.kwargs["learning_rate"]
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(lr)

    schedule = optax.linear_schedule(lr, 0.0, transition_steps=4)
    scheduled = optax.inject_hyperparams(row.factory)(
        **{**row.kwargs, "learning_rate": schedule})
    p_sched, state = _run(row, scheduled, params, 4)
    assert float(state.hyperparams["learning_rate"]) == pytest.approx(0.25 * lr)
    # The schedule reached zero: one more step changes nothing.
    p_next, _ = _run(row, scheduled, p_sched, 1, state=state)
    chex.assert_trees_all_close(p_next, p_sched, atol=1e-6 * lr + 1e-12)


@_rows()
def test_unknown_extra_args_are_ignored(row: Row):
    """Called directly (no optax.with_extra_args_support, which would drop the args
    before our code runs): our update must accept and ignore unknown keywords."""
    if not row.receives_extra_args:
        pytest.skip("no gradkit code in this row receives extra args")
    opt = row.factory(**row.kwargs)
    assert isinstance(opt, optax.GradientTransformationExtraArgs)
    params = helpers.tiny_params()
    state = opt.init(params)
    extra = row.extra_args(helpers.parabola, params, state)
    grads = _grads_fn(params, 0)
    with_unknown, _ = opt.update(grads, state, params, not_an_arg=jnp.ones(2), **extra)
    without, _ = opt.update(grads, state, params, **extra)
    chex.assert_trees_all_equal(with_unknown, without)


@_rows()
def test_orbax_round_trip_continues_bit_identically(row: Row, tmp_path):
    opt = row.factory(**row.kwargs)
    params = helpers.tiny_params()
    params_mid, state_mid = _run(row, opt, params, 2)
    path = tmp_path / "ckpt"
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, {"params": params_mid, "opt_state": state_mid})
    with ocp.StandardCheckpointer() as checkpointer:
        template = {"params": params_mid, "opt_state": state_mid}
        restored = checkpointer.restore(
            path, jax.tree.map(ocp.utils.to_shape_dtype_struct, template))
    state_r = jax.tree.unflatten(jax.tree.structure(state_mid),
                                 jax.tree.leaves(restored["opt_state"]))
    resumed, _ = _run(row, opt, restored["params"], 3, state=state_r)
    straight, _ = _run(row, opt, params_mid, 3, state=state_mid)
    chex.assert_trees_all_equal(resumed, straight)


@_rows()
def test_converges_on_parabola(row: Row):
    if row.parabola_tol is None:
        pytest.skip("row opts out of the parabola check")
    loss = _final_loss(row, row.kwargs, helpers.parabola, helpers.tiny_params(),
                       row.parabola_steps)
    assert loss < row.parabola_tol, f"{row.name}: parabola loss {loss}"


@_rows()
def test_converges_on_rosenbrock(row: Row):
    if row.rosenbrock_tol is None:
        pytest.skip("row opts out of the Rosenbrock check")
    start = {"x": jnp.asarray(-1.2), "y": jnp.asarray(1.0)}
    kwargs = row.rosenbrock_kwargs or row.kwargs
    loss = _final_loss(row, kwargs, helpers.rosenbrock, start, row.rosenbrock_steps)
    assert loss < row.rosenbrock_tol, f"{row.name}: Rosenbrock loss {loss}"


def _final_loss(row: Row, kwargs, loss_fn, params, num_steps) -> float:
    opt = row.factory(**kwargs)

    def body(carry, _):
        params, state = carry
        extra = row.extra_args(loss_fn, params, state)
        updates, state = opt.update(jax.grad(loss_fn)(params), state, params, **extra)
        return (optax.apply_updates(params, updates), state), None

    (params, _), _ = jax.jit(lambda c: jax.lax.scan(body, c, length=num_steps))(
        (params, opt.init(params)))
    return float(np.asarray(loss_fn(params)))
