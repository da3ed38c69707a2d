# SPDX-License-Identifier: Apache-2.0
"""AdaGrad-Norm (gradkit/stepsize/_adagrad_norm.py)."""

from __future__ import annotations

import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradkit
from tests import helpers


def test_adagrad_norm_closed_form_two_steps():
    opt = gradkit.adagrad_norm(learning_rate=0.1, initial_accumulator_value=0.0, eps=0.0)
    params = {"a": jnp.zeros(1), "b": jnp.zeros(1)}
    state = opt.init(params)
    u1, state = opt.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, state, params)
    np.testing.assert_allclose([u1["a"][0], u1["b"][0]], [-0.06, -0.08], rtol=1e-6)
    u2, state = opt.update({"a": jnp.array([0.0]), "b": jnp.array([5.0])}, state, params)
    np.testing.assert_allclose([u2["a"][0], u2["b"][0]], [0.0, -0.1 * 5 / math.sqrt(50)],
                               rtol=1e-6)
    assert float(state[0].sum_of_squares) == pytest.approx(50.0)
    # b_0² = 11: the first step is g / √(11 + 25).
    opt = gradkit.adagrad_norm(learning_rate=1.0, initial_accumulator_value=11.0, eps=0.0)
    u, _ = opt.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, opt.init(params), params)
    np.testing.assert_allclose(u["a"], [-0.5], rtol=1e-6)


def test_adagrad_norm_on_one_scalar_is_optax_adagrad():
    ours = gradkit.adagrad_norm(0.3, initial_accumulator_value=0.1, eps=0.0)
    ref = optax.adagrad(0.3, initial_accumulator_value=0.1, eps=0.0)
    p_ours, _ = helpers.apply_steps(ours, {"x": jnp.array(2.0)},
                                    lambda p, s: jax.grad(helpers.parabola)(p), 5)
    p_ref, _ = helpers.apply_steps(ref, {"x": jnp.array(2.0)},
                                   lambda p, s: jax.grad(helpers.parabola)(p), 5)
    chex.assert_trees_all_close(p_ours, p_ref, rtol=1e-6)


def test_adagrad_norm_zero_gradient_and_validation():
    opt = gradkit.scale_by_adagrad_norm(eps=0.0)
    u, _ = opt.update({"w": jnp.zeros(3)}, opt.init(None))
    np.testing.assert_array_equal(u["w"], 0.0)
    with pytest.raises(ValueError, match="learning_rate"):
        gradkit.adagrad_norm(learning_rate=-0.1)
    with pytest.raises(ValueError, match="initial_accumulator_value"):
        gradkit.adagrad_norm(0.1, initial_accumulator_value=-1.0)


def test_injected_state_owns_its_buffers_so_it_can_be_donated():
    # Under inject_hyperparams b_0² arrives as an array; the accumulator must be a copy,
    # not that hyperparameter's buffer, or a jitted step donating its state fails.
    opt = optax.inject_hyperparams(gradkit.adagrad_norm)(learning_rate=0.1,
                                                         initial_accumulator_value=0.5)
    params = {"w": jnp.ones(3)}
    step = jax.jit(lambda g, s: opt.update(g, s, params), donate_argnums=1)
    _, state = step({"w": jnp.ones(3)}, opt.init(params))
    assert float(state.inner_state[0].sum_of_squares) == pytest.approx(3.5)
