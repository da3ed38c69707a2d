# SPDX-License-Identifier: Apache-2.0
"""Lion and Lion-K: closed forms, optax equivalences, the ℓ∞ constraint, bad input."""

from __future__ import annotations

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


def _run_jitted(opt, params, grads_seq, extra=None):
    """Applies `opt` for each gradient in `grads_seq` (a list of pytrees)."""
    state = opt.init(params)
    update = jax.jit(opt.update)
    for grads in grads_seq:
        updates, state = update(grads, state, params)
        params = optax.apply_updates(params, updates)
    return params, state


def _random_grads(params, num_steps, seed=0):
    return [helpers.random_like(params, seed=seed + t) for t in range(num_steps)]


class ClosedFormTest(chex.TestCase):

    def test_three_lion_steps_by_hand(self):
        # Worked by hand from Algorithm 2 with b1=0.9, b2=0.99, lr=0.1, λ=0.5:
        #   t=1: c=0.1·1=0.1 → +1;  x=1−0.1(1+0.5·1)=0.85;        m=0.01
        #   t=2: c=0.9·0.01+0.1·(−2)=−0.191 → −1;  x=0.85−0.1(−1+0.425)=0.9075;
        #        m=0.99·0.01+0.01·(−2)=−0.0101
        #   t=3: c=0.9·(−0.0101)+0.1·0.5=0.04091 → +1;  x=0.9075−0.1(1+0.45375)=0.762125;
        #        m=0.99·(−0.0101)+0.01·0.5=−0.004999
        # The second coordinate has zero gradient: sign(0)=0, only decay moves it.
        params = {"w": jnp.array([1.0, 2.0]), "b": jnp.array(0.0)}
        grads = [
            {"w": jnp.array([1.0, 0.0]), "b": jnp.array(-3.0)},
            {"w": jnp.array([-2.0, 0.0]), "b": jnp.array(-3.0)},
            {"w": jnp.array([0.5, 0.0]), "b": jnp.array(-3.0)},
        ]
        opt = gradkit.lion(learning_rate=0.1, weight_decay=0.5)
        params, state = _run_jitted(opt, params, grads)
        np.testing.assert_allclose(params["w"], [0.762125, 2.0 * 0.95**3], rtol=1e-6)
        # b: x0 = 0 and g < 0 every step: x_t = (1 − 0.05)·x_{t−1} + 0.1.
        np.testing.assert_allclose(params["b"], 0.1 + 0.95 * (0.1 + 0.95 * 0.1), rtol=1e-6)
        lion_state = state[0]
        assert isinstance(lion_state, gradkit.ScaleByLionKState)
        np.testing.assert_allclose(lion_state.mu["w"], [-0.004999, 0.0], rtol=1e-5)
        assert lion_state.count.dtype == jnp.int32 and int(lion_state.count) == 3

    @parameterized.parameters(
        ("sign", [1.0, -1.0, 0.0]),
        ("identity", [0.3, -0.05, 0.0]),
        ("huber", [1.0, -0.5, 0.0]),  # clip(c, −0.1, 0.1)/0.1
        ("tanh", [math.tanh(0.03), math.tanh(-0.005), 0.0]),
        ("relativistic", [0.3 / math.sqrt(0.1), -0.05 / math.sqrt(0.0125), 0.0]),
    )
    def test_first_step_of_each_kappa(self, kappa, expected):
        # With m0 = 0 the first direction is ∇K((1 − b1)·g) = ∇K([0.3, −0.05, 0]).
        opt = gradkit.scale_by_lion_k(kappa=kappa, a=0.1)
        g = jnp.array([3.0, -0.5, 0.0])
        updates, state = opt.update(g, opt.init(g))
        np.testing.assert_allclose(updates, expected, rtol=1e-6)
        np.testing.assert_allclose(state.mu, 0.01 * g, rtol=1e-6)

    def test_callable_kappa_is_used_elementwise(self):
        opt = gradkit.scale_by_lion_k(kappa=lambda x: 2.0 * x)
        g = jnp.array([1.0, -4.0])
        updates, _ = opt.update(g, opt.init(g))
        np.testing.assert_allclose(updates, [0.2, -0.8], rtol=1e-6)


class OptaxEquivalenceTest(chex.TestCase):

    @parameterized.parameters((0.9, 0.99, 1e-3), (0.95, 0.98, 0.1), (0.0, 0.5, 0.0))
    def test_lion_matches_optax_lion_over_100_steps(self, b1, b2, weight_decay):
        params = helpers.tiny_params()
        grads = _random_grads(params, 100)
        mask = {"dense": {"kernel": True, "bias": False}, "conv": True}
        kwargs = dict(learning_rate=3e-3, b1=b1, b2=b2, weight_decay=weight_decay, mask=mask)
        ours, ours_state = _run_jitted(gradkit.lion(**kwargs), params, grads)
        theirs, theirs_state = _run_jitted(optax.lion(**kwargs), params, grads)
        chex.assert_trees_all_close(ours, theirs, rtol=1e-6, atol=1e-7)
        chex.assert_trees_all_close(ours_state[0].mu, theirs_state[0].mu, rtol=1e-6, atol=1e-7)

    @parameterized.named_parameters(
        ("tanh_is_smooth", dict(kappa="tanh", a=3.0), dict(mode="smooth", smooth_beta=3.0)),
        ("huber_a1_is_refined", dict(kappa="huber", a=1.0), dict(mode="refined")),
    )
    def test_kappa_matches_optax_scale_by_lion_mode(self, ours_kwargs, optax_kwargs):
        # Gradients of size ~1 so tanh and the Huber kink (|c| = 1) are both exercised.
        params = helpers.tiny_params()
        grads = _random_grads(params, 30)
        ours, ours_state = _run_jitted(
            optax.chain(gradkit.scale_by_lion_k(b1=0.8, b2=0.95, **ours_kwargs),
                        optax.scale(-1e-2)), params, grads)
        theirs, theirs_state = _run_jitted(
            optax.chain(optax.scale_by_lion(b1=0.8, b2=0.95, **optax_kwargs),
                        optax.scale(-1e-2)), params, grads)
        chex.assert_trees_all_close(ours, theirs, rtol=1e-6, atol=1e-7)
        chex.assert_trees_all_close(ours_state[0].mu, theirs_state[0].mu, rtol=1e-6)

    def test_huber_width_other_than_one_differs_from_optax_refined(self):
        params = {"w": jnp.array([0.3, -0.7, 2.0])}
        grads = [{"w": jnp.array([0.3, -0.7, 2.0])}]
        ours, _ = _run_jitted(gradkit.scale_by_lion_k(b1=0.0, kappa="huber", a=0.5),
                              params, grads)
        theirs, _ = _run_jitted(optax.scale_by_lion(b1=0.0, mode="refined"), params, grads)
        np.testing.assert_allclose(ours["w"] - params["w"], [0.6, -1.0, 1.0], rtol=1e-6)
        np.testing.assert_allclose(theirs["w"] - params["w"], [0.3, -0.7, 1.0], rtol=1e-6)

    def test_identity_kappa_is_heavy_ball_sgd(self):
        # b1 = b2 = β: c_t = m_t = β m_{t−1} + (1−β) g_t = (1−β)·trace_t, where optax's
        # trace_t = g_t + β trace_{t−1}. So lr·c_t = lr(1−β)·trace_t.
        beta, lr = 0.9, 0.05
        params = helpers.tiny_params()
        grads = _random_grads(params, 100)
        ours, _ = _run_jitted(
            gradkit.lion_k(lr, kappa="identity", b1=beta, b2=beta, weight_decay=0.0),
            params, grads)
        theirs, _ = _run_jitted(optax.sgd(lr * (1 - beta), momentum=beta), params, grads)
        chex.assert_trees_all_close(ours, theirs, rtol=1e-5, atol=1e-6)

    def test_identity_kappa_with_b1_beta_squared_is_nesterov_sgd(self):
        # Nesterov: u_t = g_t + β trace_t = (1+β) g_t + β² trace_{t−1}. Lion-K identity:
        # c_t = (1−b1) g_t + b1 (1−b2) trace_{t−1}. Matching both ratios gives b1 = β²,
        # b2 = β, scale (1−b1)/(1+β) = 1−β.
        beta, lr = 0.8, 0.05
        params = helpers.tiny_params()
        grads = _random_grads(params, 100)
        ours, _ = _run_jitted(
            gradkit.lion_k(lr, kappa="identity", b1=beta**2, b2=beta, weight_decay=0.0),
            params, grads)
        theirs, _ = _run_jitted(
            optax.sgd(lr * (1 - beta), momentum=beta, nesterov=True), params, grads)
        chex.assert_trees_all_close(ours, theirs, rtol=1e-5, atol=1e-6)

    def test_inject_hyperparams_schedule_matches_optax(self):
        schedule = optax.cosine_decay_schedule(1e-2, decay_steps=20)
        params = helpers.tiny_params()
        grads = _random_grads(params, 20)
        ours, state = _run_jitted(
            optax.inject_hyperparams(gradkit.lion)(learning_rate=schedule, weight_decay=0.3),
            params, grads)
        theirs, _ = _run_jitted(
            optax.inject_hyperparams(optax.lion)(learning_rate=schedule, weight_decay=0.3),
            params, grads)
        chex.assert_trees_all_close(ours, theirs, rtol=1e-6, atol=1e-7)
        # inject_hyperparams records the value used by the last (20th) step.
        assert float(state.hyperparams["learning_rate"]) == pytest.approx(float(schedule(19)))


class VariantsTest(chex.TestCase):

    @chex.variants(with_jit=True, without_jit=True, with_pmap=True)
    @parameterized.parameters(*gradkit.KAPPA_NAMES)
    def test_variants_agree(self, kappa):
        opt = gradkit.lion_k(1e-2, kappa=kappa, a=0.5, weight_decay=0.1)
        params = helpers.tiny_params()
        grads = _random_grads(params, 3)
        expected, _ = _run_jitted(opt, params, grads)
        update = self.variant(opt.update)
        state = opt.init(params)
        for g in grads:
            updates, state = update(g, state, params)
            params = optax.apply_updates(params, updates)
        chex.assert_trees_all_close(params, expected, rtol=1e-6, atol=1e-7)


class ConstraintTest(chex.TestCase):

    def test_weight_decay_confines_iterates_to_linf_ball(self):
        # Lion with decoupled decay λ solves min f(x) s.t. ‖x‖∞ ≤ 1/λ (Lion-K §3):
        # starting far outside, the iterates enter the ball, stay inside (up to one
        # step of size lr), and end at clip(x*, −1/λ, 1/λ) for f = ½‖x − x*‖².
        lam, lr, steps = 0.5, 1e-2, 3000
        bound = 1.0 / lam
        k1, k2 = jax.random.split(jax.random.key(0))
        target = 6.0 * jax.random.normal(k1, (64,))
        x0 = 8.0 * jax.random.normal(k2, (64,))
        assert float(jnp.max(jnp.abs(x0))) > 3 * bound
        opt = gradkit.lion(learning_rate=lr, weight_decay=lam)
        grad_fn = jax.grad(lambda x: 0.5 * jnp.sum((x - target) ** 2))

        def body(carry, _):
            x, state = carry
            updates, state = opt.update(grad_fn(x), state, x)
            x = optax.apply_updates(x, updates)
            return (x, state), jnp.max(jnp.abs(x))

        (x, _), linf = jax.jit(lambda c: jax.lax.scan(body, c, length=steps))(
            (x0, opt.init(x0)))
        entered = int(jnp.argmax(linf <= bound + lr))
        assert 0 < entered < steps // 2
        assert float(jnp.max(linf[entered:])) <= bound + lr
        np.testing.assert_allclose(x, jnp.clip(target, -bound, bound), atol=0.1)


class DtypeTest(chex.TestCase):

    def test_bf16_params_default_mu_dtype(self):
        params = helpers.tiny_params(jnp.bfloat16)
        opt = gradkit.lion(1e-3)
        new_params, state = _run_jitted(opt, params, _random_grads(params, 2))
        chex.assert_trees_all_equal_dtypes(new_params, params)
        chex.assert_trees_all_equal_dtypes(state[0].mu, params)

    def test_mu_dtype_float32_with_bf16_params(self):
        params = helpers.tiny_params(jnp.bfloat16)
        opt = gradkit.lion(1e-3, mu_dtype=jnp.float32)
        new_params, state = _run_jitted(opt, params, _random_grads(params, 2))
        chex.assert_trees_all_equal_dtypes(new_params, params)
        for leaf in jax.tree.leaves(state[0].mu):
            assert leaf.dtype == jnp.float32


class BadInputTest(chex.TestCase):

    @parameterized.parameters(
        (dict(b1=1.0), "b1"),
        (dict(b1=-0.1), "b1"),
        (dict(b2=1.5), "b2"),
        (dict(b2=float("nan")), "b2"),
        (dict(kappa="softsign"), "kappa"),
        (dict(kappa="huber", a=0.0), "`a`"),
        (dict(kappa="tanh", a=-1.0), "`a`"),
    )
    def test_bad_hyperparameters_raise_value_error(self, kwargs, name):
        with pytest.raises(ValueError, match=name):
            gradkit.scale_by_lion_k(**kwargs)

    def test_negative_weight_decay_raises(self):
        with pytest.raises(ValueError, match="weight_decay"):
            gradkit.lion(1e-3, weight_decay=-1.0)

    def test_schedules_are_not_validated_eagerly(self):
        gradkit.lion(optax.linear_schedule(1e-3, 0.0, 10), weight_decay=lambda step: 0.1)

    @parameterized.parameters(
        (lambda x: jnp.sum(x), "preserve"),
        (lambda x: x @ x, "elementwise"),
    )
    def test_callable_kappa_that_breaks_shape_raises_type_error(self, kappa, match):
        with pytest.raises(TypeError, match=match):
            gradkit.scale_by_lion_k(kappa=kappa)

    def test_mismatched_pytree_raises_value_error(self):
        opt = gradkit.lion(1e-3)
        params = {"a": jnp.ones(2), "b": jnp.ones(3)}
        state = opt.init(params)
        with pytest.raises(ValueError, match="same pytree structure"):
            opt.update({"a": jnp.ones(2)}, state, params)


class NonFiniteTest(chex.TestCase):

    def test_nan_gradient_propagates_to_its_coordinate_only(self):
        opt = gradkit.scale_by_lion_k()
        g = jnp.array([1.0, jnp.nan, -jnp.inf])
        updates, state = opt.update(g, opt.init(g))
        assert float(updates[0]) == 1.0
        assert bool(jnp.isnan(updates[1]))
        assert float(updates[2]) == -1.0  # sign(−inf) is a finite step...
        assert bool(jnp.isinf(state.mu[2]))  # ...but the momentum is poisoned.

    def test_apply_if_finite_skips_non_finite_steps(self):
        opt = optax.apply_if_finite(gradkit.lion(1e-2), max_consecutive_errors=5)
        params = jnp.array([1.0, 2.0])
        state = opt.init(params)
        updates, state = opt.update(jnp.array([jnp.nan, 1.0]), state, params)
        np.testing.assert_array_equal(updates, jnp.zeros(2))
        assert int(state.notfinite_count) == 1
        updates, state = opt.update(jnp.array([1.0, 1.0]), state, params)
        assert float(updates[0]) < 0 and int(state.notfinite_count) == 0

    def test_huge_spike_moves_each_coordinate_by_at_most_lr(self):
        lr = 1e-2
        opt = gradkit.lion(lr, weight_decay=0.0)
        params = jnp.zeros(3)
        state = opt.init(params)
        updates, state = opt.update(jnp.array([1e30, -1e6, 1.0]), state, params)
        np.testing.assert_allclose(updates, [-lr, lr, -lr])
        assert bool(jnp.all(jnp.isfinite(state[0].mu)))
