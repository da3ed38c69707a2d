"""Every registered alias through the behaviour all optax transforms must share."""

from __future__ import annotations

import inspect
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from absl.testing import parameterized

from tests import helpers
from tests.registry import ROWS
from tests.registry import Row

NAMED_ROWS = [(row.name, row) for row in ROWS]
ALIAS_ROWS = [(row.name, row) for row in ROWS if row.kind == "alias"]
PRIMITIVE_ROWS = [(row.name, row) for row in ROWS if row.kind == "primitive"]


@jax.jit  # traced once per dtype, not at every call (eager jax.grad retraces)
def _grads_fn(params, step):
    """Gradient of the parabola plus step-dependent noise (deterministic)."""
    grads = jax.grad(helpers.parabola)(params)
    noise = helpers.random_like(params, seed=100 + step, scale=0.1)
    return jax.tree.map(lambda g, n: (g + n).astype(n.dtype), grads, noise)


def _run(row: Row, opt, params, num_steps, state=None):
    state = opt.init(params) if state is None else state
    for step in range(num_steps):
        extra = row.extra_args(helpers.parabola, params, state)
        updates, state = opt.update(_grads_fn(params, step), state, params, **extra)
        params = optax.apply_updates(params, updates)
    return params, state


class ConformanceTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True, with_pmap=True)
    @parameterized.named_parameters(*NAMED_ROWS)
    def test_variants_agree_with_eager(self, row: Row):
        opt = row.factory(**row.kwargs)
        params = helpers.tiny_params()
        state = opt.init(params)
        expected_params, expected_state = params, state
        params_v, state_v = params, state
        # One variant for all steps: the extra args that are functions (loss, logits)
        # are closed over, the arrays (EGGROLL's fitness) change per step and are passed.
        functions = {k: v for k, v in row.extra_args(helpers.parabola, params, state).items()
                     if callable(v)}
        update = self.variant(lambda grads, state, params, arrays: opt.update(
            grads, state, params, **functions, **arrays))
        for step in range(3):
            extra = row.extra_args(helpers.parabola, params_v, state_v)
            grads = _grads_fn(params_v, step)
            arrays = {k: v for k, v in extra.items() if k not in functions}
            updates_v, state_v = update(grads, state_v, params_v, arrays)
            params_v = optax.apply_updates(params_v, updates_v)
            updates_e, expected_state = opt.update(
                _grads_fn(expected_params, step), expected_state, expected_params,
                **row.extra_args(helpers.parabola, expected_params, expected_state))
            expected_params = optax.apply_updates(expected_params, updates_e)
        chex.assert_trees_all_close(params_v, expected_params, rtol=1e-5, atol=1e-6)
        chex.assert_trees_all_equal_structs(state_v, expected_state)

    @parameterized.named_parameters(*NAMED_ROWS)
    def test_no_recompilation_across_steps(self, row: Row):
        opt = row.factory(**row.kwargs)
        params = helpers.tiny_params()
        state = opt.init(params)
        extra = row.extra_args(helpers.parabola, params, state)
        chex.clear_trace_counter()

        @jax.jit
        @chex.assert_max_traces(n=1)
        def step(params, state):
            updates, state = opt.update(jax.grad(helpers.parabola)(params), state,
                                        params, **extra)
            return optax.apply_updates(params, updates), state

        for _ in range(4):
            params, state = step(params, state)

    @parameterized.named_parameters(*NAMED_ROWS)
    def test_bf16_params_keep_dtype(self, row: Row):
        opt = row.factory(**row.kwargs)
        params = helpers.tiny_params(jnp.bfloat16)
        state0 = opt.init(params)
        params_n, state_n = _run(row, opt, params, 3)
        chex.assert_trees_all_equal_dtypes(params_n, params)
        chex.assert_trees_all_equal_shapes_and_dtypes(state_n, state0)
        for leaf in jax.tree.leaves(params_n):
            assert bool(jnp.all(jnp.isfinite(leaf.astype(jnp.float32))))

    @parameterized.named_parameters(*NAMED_ROWS)
    def test_state_shapes_and_dtypes_are_stable_through_lax_cond(self, row: Row):
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

    @parameterized.named_parameters(*ALIAS_ROWS)
    def test_concrete_learning_rate_is_validated_and_required(self, row: Row):
        signature = inspect.signature(row.factory)
        assert signature.parameters["learning_rate"].default is inspect.Parameter.empty
        for bad in (0.0, -1e-3, -1, math.nan, math.inf, np.float32(-0.5)):
            with pytest.raises(ValueError, match="`learning_rate`"):
                row.factory(**{**row.kwargs, "learning_rate": bad})
        # Schedules and traced values pass through.
        row.factory(**{**row.kwargs, "learning_rate": optax.constant_schedule(-1.0)})
        row.factory(**{**row.kwargs, "learning_rate": jnp.asarray(-1.0)})

    @parameterized.named_parameters(*PRIMITIVE_ROWS)
    def test_primitive_has_no_learning_rate_and_declares_extra_args(self, row: Row):
        opt = row.factory(**row.kwargs)
        assert "learning_rate" not in inspect.signature(row.factory).parameters
        if row.receives_extra_args:
            assert isinstance(opt, optax.GradientTransformationExtraArgs), row.name
        elif not isinstance(opt, optax.GradientTransformationExtraArgs):
            with pytest.raises(TypeError):  # a plain update rejects keywords outright
                opt.update(jnp.zeros(1), opt.init(jnp.zeros(1)), jnp.zeros(1), unknown=1)

    @parameterized.named_parameters(*NAMED_ROWS)
    def test_inject_hyperparams_matches_and_takes_schedules(self, row: Row):
        if row.kind == "wrapper":
            self.skipTest("a wrapper's hyperparameters are the inner optimizer's")
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

    @parameterized.named_parameters(*NAMED_ROWS)
    def test_unknown_extra_args_are_ignored(self, row: Row):
        """Called directly (no optax.with_extra_args_support, which would drop the args
        before our code runs): our update must accept and ignore unknown keywords."""
        if not row.receives_extra_args:
            self.skipTest("no gradkit code in this row receives extra args")
        opt = row.factory(**row.kwargs)
        assert isinstance(opt, optax.GradientTransformationExtraArgs)
        params = helpers.tiny_params()
        state = opt.init(params)
        extra = row.extra_args(helpers.parabola, params, state)
        grads = _grads_fn(params, 0)
        with_unknown, _ = opt.update(grads, state, params, not_an_arg=jnp.ones(2), **extra)
        without, _ = opt.update(grads, state, params, **extra)
        chex.assert_trees_all_equal(with_unknown, without)

    @parameterized.named_parameters(*NAMED_ROWS)
    def test_orbax_round_trip_continues_bit_identically(self, row: Row):
        opt = row.factory(**row.kwargs)
        params = helpers.tiny_params()
        params_mid, state_mid = _run(row, opt, params, 2)
        path = self.create_tempdir().full_path + "/ckpt"
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

    @parameterized.named_parameters(*NAMED_ROWS)
    def test_converges_on_parabola(self, row: Row):
        if row.parabola_tol is None:
            self.skipTest("row opts out of the parabola check")
        loss = _final_loss(row, row.kwargs, helpers.parabola, helpers.tiny_params(),
                           row.parabola_steps)
        assert loss < row.parabola_tol, f"{row.name}: parabola loss {loss}"

    @parameterized.named_parameters(*NAMED_ROWS)
    def test_converges_on_rosenbrock(self, row: Row):
        if row.rosenbrock_tol is None:
            self.skipTest("row opts out of the Rosenbrock check")
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
