# SPDX-License-Identifier: Apache-2.0
"""PCGrad (gradkit.pcgrad): Algorithm 1 transcription, two-task property, devices, errors."""

from __future__ import annotations

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized

import gradkit
from tests import helpers


def _flat(tree):
    return np.concatenate([np.asarray(x, np.float64).reshape(x.shape[0], -1)
                           for x in jax.tree.leaves(tree)], axis=1)


def _unflat(vec, like):
    out, i = [], 0
    for x in jax.tree.leaves(like):
        n = int(np.prod(x.shape[1:]))
        out.append(vec[i:i + n].reshape(x.shape[1:]))
        i += n
    return jax.tree.unflatten(jax.tree.structure(like), out)


def _pcgrad_numpy(grads: np.ndarray, orders, reduction="sum") -> np.ndarray:
    """Algorithm 1 of Yu et al. (2020), float64, one order of the other tasks per task."""
    k = grads.shape[0]
    projected = []
    for i in range(k):
        g_pc = grads[i].copy()
        for j in orders[i]:
            if j == i:
                continue
            dot = g_pc @ grads[j]
            if dot < 0:
                g_pc = g_pc - dot / (grads[j] @ grads[j]) * grads[j]
        projected.append(g_pc)
    total = np.sum(projected, axis=0)
    return total / k if reduction == "mean" else total


def _task_grads(num_tasks, seed, params=None):
    params = helpers.tiny_params() if params is None else params
    return jax.tree.map(lambda *xs: jnp.stack(xs),
                        *[helpers.random_like(params, seed=seed + t) for t in range(num_tasks)])


class PCGradTest(chex.TestCase):

    @parameterized.parameters((2, "sum"), (4, "mean"))
    def test_matches_numpy_transcription_fixed_order(self, num_tasks, reduction):
        grads = _task_grads(num_tasks, seed=10 * num_tasks)
        opt = gradkit.pcgrad(reduction=reduction, shuffle=False)
        out, _ = opt.update(grads, opt.init(None))
        want = _pcgrad_numpy(_flat(grads), [range(num_tasks)] * num_tasks, reduction)
        chex.assert_trees_all_close(out, _unflat(want, grads), rtol=2e-5, atol=2e-5)
        # Several conflicts were projected (otherwise the test would be vacuous).
        assert not np.allclose(want, _flat(grads).sum(0) / (num_tasks if
                                                            reduction == "mean" else 1))

    def test_random_order_is_one_of_the_transcription_orders_and_changes(self):
        num_tasks = 3
        grads = _task_grads(num_tasks, seed=3)
        flat = _flat(grads)
        candidates = []
        for orders in itertools.product(*[list(itertools.permutations(
                [j for j in range(num_tasks) if j != i])) for i in range(num_tasks)]):
            candidates.append(_pcgrad_numpy(flat, orders))
        distinct = {tuple(np.round(c, 6)) for c in candidates}
        assert len(distinct) > 1  # the order matters for these gradients
        opt = gradkit.pcgrad(jax.random.key(7))
        state = opt.init(None)
        seen = set()
        for _ in range(12):
            out, state = opt.update(grads, state)
            got = _flat(jax.tree.map(lambda x: x[None], out))[0]
            errors = [np.max(np.abs(got - c)) for c in candidates]
            assert min(errors) < 1e-4
            seen.add(int(np.argmin(errors)) // 1)
        assert len({tuple(np.round(candidates[i], 6)) for i in seen}) > 1

    def test_two_conflicting_tasks_property_over_random_pairs(self):
        opt = gradkit.pcgrad(reduction="sum")

        def one(key):
            k1, k2, k3 = jax.random.split(key, 3)
            g1 = jax.random.normal(k1, (7,))
            g2 = jax.random.normal(k2, (7,))
            # Make the pair conflict: flip g2 if needed, and scale g2 randomly.
            g2 = jnp.where(g1 @ g2 > 0, -g2, g2) * jnp.exp(2 * jax.random.normal(k3, ()))
            s, _ = opt.update({"w": jnp.stack([g1, g2])}, opt.init(None))
            return g1 @ g2, s["w"] @ g1, s["w"] @ g2, s["w"] @ (g1 + g2)

        dots, s1, s2, _ = jax.vmap(one)(jax.random.split(jax.random.key(0), 200))
        assert bool(jnp.all(dots < 0))
        assert float(jnp.min(s1)) > -1e-4 and float(jnp.min(s2)) > -1e-4

    def test_plain_sum_conflicts_but_pcgrad_does_not(self):
        g1, g2 = jnp.array([1.0, 0.0]), jnp.array([-4.0, 1.0])
        assert float((g1 + g2) @ g1) < 0  # the naive sum moves against task 1
        s, _ = gradkit.pcgrad().update({"w": jnp.stack([g1, g2])}, gradkit.pcgrad().init(None))
        assert float(s["w"] @ g1) >= 0 and float(s["w"] @ g2) >= 0
        # Closed form: g1 − (−4/17)·g2 + g2 − (−4/1)·g1.
        want = g1 + 4 / 17 * g2 + g2 + 4 * g1
        np.testing.assert_allclose(s["w"], want, rtol=1e-6)

    def test_agreeing_tasks_are_summed_unchanged(self):
        grads = {"w": jnp.array([[1.0, 2.0], [0.5, 0.1], [0.0, 3.0]])}
        out, _ = gradkit.pcgrad().update(grads, gradkit.pcgrad().init(None))
        np.testing.assert_allclose(out["w"], [1.5, 5.1], rtol=1e-6)
        out, _ = gradkit.pcgrad(reduction="mean").update(grads, gradkit.pcgrad().init(None))
        np.testing.assert_allclose(out["w"], [0.5, 1.7], rtol=1e-6)

    def test_tuple_of_trees_equals_stacked(self):
        params = helpers.tiny_params()
        trees = [helpers.random_like(params, seed=s) for s in range(3)]
        opt = gradkit.pcgrad(1)
        a, _ = opt.update(tuple(trees), opt.init(params), params)
        b, _ = opt.update(jax.tree.map(lambda *x: jnp.stack(x), *trees), opt.init(params), params)
        chex.assert_trees_all_close(a, b)
        chex.assert_trees_all_equal_shapes_and_dtypes(a, params)

    def test_zero_task_gradient_gives_no_nan_and_nan_propagates(self):
        grads = {"w": jnp.array([[0.0, 0.0], [-1.0, 1.0], [1.0, 0.0]])}
        out, _ = gradkit.pcgrad().update(grads, gradkit.pcgrad().init(None))
        assert bool(jnp.all(jnp.isfinite(out["w"])))
        bad = {"w": grads["w"].at[1, 0].set(jnp.nan)}
        out, _ = gradkit.pcgrad().update(bad, gradkit.pcgrad().init(None))
        assert bool(jnp.all(jnp.isnan(out["w"])))

    def test_bf16_keeps_dtype(self):
        grads = {"w": jnp.array([[0.0, 1.0], [-1.0, 1.0], [1.0, 0.0]], jnp.bfloat16)}
        out, _ = gradkit.pcgrad().update(grads, gradkit.pcgrad().init(None))
        assert out["w"].dtype == jnp.bfloat16

    @chex.variants(with_jit=True, without_jit=True, with_pmap=True)
    def test_variants_agree(self):
        grads = _task_grads(2, seed=2)
        opt = gradkit.pcgrad(3)
        state = opt.init(None)
        expected, _ = opt.update(grads, state)
        got, new_state = self.variant(opt.update)(grads, state)
        chex.assert_trees_all_close(got, expected, rtol=1e-5, atol=1e-6)
        assert int(new_state.count) == 1

    def test_eight_devices_axis_name_equals_one_device(self):
        n = jax.device_count()
        assert n == 8
        # Per-device task gradients from per-device data; the global gradient is their mean.
        local = jax.tree.map(lambda *x: jnp.stack(x),
                             *[_task_grads(3, seed=100 + d) for d in range(n)])
        opt = gradkit.pcgrad(5, axis_name="d")
        state = opt.init(None)
        states = jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *x.shape)), state)
        out, new_states = jax.pmap(opt.update, axis_name="d")(local, states)
        mean = jax.tree.map(lambda x: x.mean(0), local)
        want, want_state = gradkit.pcgrad(5).update(mean, state)
        for d in range(n):
            chex.assert_trees_all_close(jax.tree.map(lambda x, d=d: x[d], out), want,
                                        rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(new_states.key[3], want_state.key)

    def test_chains_with_optimizer(self):
        params = {"w": jnp.zeros(2)}
        opt = optax.chain(gradkit.pcgrad(), optax.sgd(0.5))
        state = opt.init(params)
        updates, state = opt.update({"w": jnp.array([[1.0, 0.0], [0.0, 1.0]])}, state, params)
        np.testing.assert_allclose(updates["w"], [-0.5, -0.5])

    def test_errors(self):
        opt = gradkit.pcgrad()
        state = opt.init(None)
        with pytest.raises(ValueError, match="mismatched task axes"):
            opt.update({"a": jnp.ones((2, 3)), "b": jnp.ones((3,))}, state)
        with pytest.raises(ValueError, match="leading task axis"):
            opt.update({"a": jnp.ones((2, 3)), "b": jnp.ones(())}, state)
        params = {"a": jnp.ones(3)}
        with pytest.raises(ValueError, match=r"expected \(tasks, \*\(3,\)\)"):
            opt.update({"a": jnp.ones((2, 4))}, state, params)
        with pytest.raises(ValueError, match=r"updates\[1\]"):
            opt.update(({"a": jnp.ones(3)}, {"b": jnp.ones(3)}), state, params)
        with pytest.raises(ValueError, match="reduction"):
            gradkit.pcgrad(reduction="max")
        with pytest.raises(TypeError, match="shuffle"):
            gradkit.pcgrad(shuffle="yes")
