# SPDX-License-Identifier: Apache-2.0
"""⊥Grad (`project_orthogonal`) and the ⊥ optimizers: what is special about them."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized

import gradkit
from tests import helpers


def _flat(x):
    return np.asarray(x, np.float64).reshape(-1)


def _reference(g, w, renormalize=True, eps=1e-30):
    """The official per-tensor OrthoGrad step in float64 NumPy."""
    g, w = _flat(g), _flat(w)
    g_orth = g - (w @ g) / (w @ w + eps) * w
    if renormalize:
        g_orth = g_orth * (np.linalg.norm(g) / (np.linalg.norm(g_orth) + eps))
    return g_orth


class ProjectOrthogonalTest(chex.TestCase):

    def setUp(self):
        super().setUp()
        self.params = helpers.tiny_params()
        self.grads = helpers.random_like(self.params, seed=7)

    @parameterized.parameters(True, False)
    def test_matches_reference_orthogonal_and_norm(self, renormalize):
        tx = gradkit.project_orthogonal(renormalize=renormalize)
        out, state = jax.jit(tx.update)(self.grads, tx.init(self.params), self.params)
        assert isinstance(state, optax.EmptyState)
        for g, w, u in zip(jax.tree.leaves(self.grads), jax.tree.leaves(self.params),
                           jax.tree.leaves(out), strict=True):
            np.testing.assert_allclose(_flat(u), _reference(g, w, renormalize),
                                       rtol=1e-5, atol=1e-6)
            # Orthogonal to w (relative to the scale of the terms).
            assert abs(_flat(u) @ _flat(w)) < 1e-5 * np.linalg.norm(_flat(u)) * np.linalg.norm(
                _flat(w))
            if renormalize:
                np.testing.assert_allclose(np.linalg.norm(_flat(u)), np.linalg.norm(_flat(g)),
                                           rtol=1e-5)
            else:
                assert np.linalg.norm(_flat(u)) <= np.linalg.norm(_flat(g)) * (1 + 1e-6)

    def test_identity_when_already_orthogonal(self):
        w = {"a": jnp.array([1.0, 0.0, 0.0]), "b": jnp.array([[1.0, 1.0], [0.0, 0.0]])}
        g = {"a": jnp.array([0.0, 2.0, -3.0]), "b": jnp.array([[1.0, -1.0], [5.0, 7.0]])}
        for renormalize in (True, False):
            tx = gradkit.project_orthogonal(renormalize=renormalize)
            out, _ = tx.update(g, tx.init(w), w)
            chex.assert_trees_all_close(out, g, rtol=1e-7)

    def test_closed_form_two_steps_of_perp_sgd(self):
        # w = (1, 0), g = (1, 1): g⊥ = (0, 1), rescaled to ‖g‖ = √2 → (0, √2).
        w = {"w": jnp.array([1.0, 0.0])}
        opt = gradkit.perp_sgd(learning_rate=0.1, momentum=0.5)
        state = opt.init(w)
        g = {"w": jnp.array([1.0, 1.0])}
        u1, state = opt.update(g, state, w)
        np.testing.assert_allclose(u1["w"], [0.0, -0.1 * np.sqrt(2)], atol=1e-7)
        w1 = optax.apply_updates(w, u1)
        # Step 2 from w1 = (1, −0.1√2) with g = (1, 1): projection by hand.
        wv = np.array([1.0, -0.1 * np.sqrt(2)])
        gp = _reference(np.array([1.0, 1.0]), wv)
        buf = 0.5 * np.array([0.0, np.sqrt(2)]) + gp
        u2, _ = opt.update(g, state, w1)
        np.testing.assert_allclose(u2["w"], -0.1 * buf, rtol=1e-6)

    def test_perp_sgd_l2_is_coupled_and_weight_decay_is_its_deprecated_name(self):
        # One step, momentum 0.5, from w = (1, 0) with g = (1, 1): the L2 term λw enters
        # the momentum buffer (torch SGD), so step 2 carries 0.5·λw from step 1.
        lam, lr = 0.3, 0.1
        w = {"w": jnp.array([1.0, 0.0])}
        g = {"w": jnp.array([1.0, 1.0])}
        opt = gradkit.perp_sgd(lr, momentum=0.5, l2_coupled=lam)
        u1, state = opt.update(g, opt.init(w), w)
        b1 = np.array([0.0, np.sqrt(2)]) + lam * np.array([1.0, 0.0])
        np.testing.assert_allclose(u1["w"], -lr * b1, rtol=1e-6)
        u2, _ = opt.update(g, state, w)  # same w: the buffer doubles up to 0.5·b1 + b1
        np.testing.assert_allclose(u2["w"], -lr * 1.5 * b1, rtol=1e-6)
        # The coupled L2 term has one name: `weight_decay` (decoupled in gradkit) is no
        # argument of perp_sgd.
        with pytest.raises(TypeError, match="weight_decay"):
            gradkit.perp_sgd(lr, momentum=0.5, weight_decay=lam)
        # l2_mask selects the leaves that get λw: masked out, step 1 is the bare ⊥ step.
        masked = gradkit.perp_sgd(lr, momentum=0.5, l2_coupled=lam, l2_mask={"w": False})
        np.testing.assert_allclose(masked.update(g, masked.init(w), w)[0]["w"],
                                   -lr * np.array([0.0, np.sqrt(2)]), rtol=1e-6)
        with pytest.raises(ValueError, match="l2_coupled"):
            gradkit.perp_sgd(lr, l2_coupled=-1.0)

    def test_perp_adamw_equals_adamw_on_projected_gradient(self):
        kwargs = dict(learning_rate=1e-2, b1=0.9, b2=0.99, eps=1e-8, weight_decay=0.1)
        perp = gradkit.perp_adamw(**kwargs)
        base = optax.adamw(**kwargs)
        proj = gradkit.project_orthogonal()
        params_p = params_b = self.params
        sp, sb = perp.init(params_p), base.init(params_b)
        for step in range(3):
            g = helpers.random_like(self.params, seed=step)
            up, sp = perp.update(g, sp, params_p)
            gb, _ = proj.update(g, optax.EmptyState(), params_b)
            ub, sb = base.update(gb, sb, params_b)
            params_p = optax.apply_updates(params_p, up)
            params_b = optax.apply_updates(params_b, ub)
        chex.assert_trees_all_close(params_p, params_b, rtol=1e-6)

    def test_zero_norm_tensors_and_zero_gradients_give_no_nan(self):
        params = {"bias": jnp.zeros(3), "w": jnp.ones(3), "half": jnp.zeros(3, jnp.float16)}
        grads = {"bias": jnp.array([1.0, -2.0, 3.0]), "w": jnp.zeros(3),
                 "half": jnp.array([1.0, 0.0, 0.0], jnp.float16)}
        for renormalize in (True, False):
            tx = gradkit.project_orthogonal(renormalize=renormalize)
            out, _ = tx.update(grads, tx.init(params), params)
            chex.assert_tree_all_finite(out)
            chex.assert_trees_all_close(out, grads, rtol=1e-6)  # passes through
            chex.assert_trees_all_equal_dtypes(out, grads)

    def test_projection_mask_selects_tensors(self):
        mask = {"dense": {"kernel": True, "bias": False}, "conv": False}
        tx = gradkit.project_orthogonal(projection_mask=mask)
        out, _ = tx.update(self.grads, tx.init(self.params), self.params)
        chex.assert_trees_all_equal(out["dense"]["bias"], self.grads["dense"]["bias"])
        chex.assert_trees_all_equal(out["conv"], self.grads["conv"])
        np.testing.assert_allclose(_flat(out["dense"]["kernel"]),
                                   _reference(self.grads["dense"]["kernel"],
                                              self.params["dense"]["kernel"]), rtol=1e-5)
        fn_mask = gradkit.project_orthogonal(
            projection_mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p))
        out2, _ = fn_mask.update(self.grads, fn_mask.init(self.params), self.params)
        chex.assert_trees_all_equal(out2["dense"]["bias"], self.grads["dense"]["bias"])

    def test_params_required(self):
        tx = gradkit.project_orthogonal()
        with pytest.raises(ValueError, match="params"):
            tx.update(self.grads, tx.init(self.params))
        opt = gradkit.perp_adamw(1e-3)
        with pytest.raises(ValueError, match="params"):
            opt.update(self.grads, opt.init(self.params))

    def test_bad_hyperparameters_raise(self):
        with pytest.raises(ValueError, match="eps"):
            gradkit.project_orthogonal(eps=0.0)
        with pytest.raises(TypeError, match="renormalize"):
            gradkit.project_orthogonal(renormalize="yes")
        with pytest.raises(ValueError, match="b2"):
            gradkit.perp_adamw(1e-3, b2=1.0)
        with pytest.raises(ValueError, match="weight_decay"):
            gradkit.perp_adamw(1e-3, weight_decay=-1.0)
        with pytest.raises(ValueError, match="momentum"):
            gradkit.perp_sgd(1e-3, momentum=1.5)

    def test_nan_and_spikes(self):
        params = {"a": jnp.ones(3), "b": jnp.ones(2)}
        grads = {"a": jnp.array([jnp.nan, 1.0, 0.0]), "b": jnp.array([1e6, -1e6])}
        tx = gradkit.project_orthogonal()
        out, _ = tx.update(grads, tx.init(params), params)
        assert bool(jnp.all(jnp.isnan(out["a"])))  # NaN poisons only its own tensor
        # A 1e6 spike is projected like any gradient: orthogonal, norm kept.
        np.testing.assert_allclose(out["b"], [1e6, -1e6], rtol=1e-6)
        big = {"a": jnp.array([1e6, 0.0, 0.0]), "b": jnp.array([1e6, 2e6])}
        out, _ = tx.update(big, tx.init(params), params)
        np.testing.assert_allclose(np.linalg.norm(out["a"]), 1e6, rtol=1e-5)
        assert abs(float(out["b"] @ params["b"])) < 1e-6 * 1e6 * 2

    def test_mismatched_trees_raise(self):
        tx = gradkit.project_orthogonal()
        with pytest.raises((ValueError, TypeError)):
            tx.update({"a": jnp.ones(2)}, tx.init({"b": jnp.ones(2)}), {"b": jnp.ones(2)})

    @chex.variants(with_jit=True, without_jit=True, with_pmap=True)
    def test_variants_agree(self):
        tx = gradkit.project_orthogonal()
        expected, _ = tx.update(self.grads, tx.init(self.params), self.params)
        out, _ = self.variant(tx.update)(self.grads, tx.init(self.params), self.params)
        chex.assert_trees_all_close(out, expected, rtol=1e-6, atol=1e-7)

    @parameterized.parameters("perp_adamw", "perp_sgd")
    def test_converges_on_scale_invariant_objective(self, name):
        # Maximise the cosine between w and a target direction: the loss is scale
        # invariant, its gradient is already ⊥ w, and ⊥ optimizers solve it.
        target = jnp.arange(1.0, 7.0).reshape(2, 3)
        loss = lambda p: -jnp.vdot(p["w"], target) / (  # noqa: E731
            jnp.linalg.norm(p["w"]) * jnp.linalg.norm(target))
        opt = getattr(gradkit, name)(learning_rate=1e-2 if name == "perp_adamw" else 0.3)
        params = {"w": jax.random.normal(jax.random.key(0), (2, 3))}

        def body(carry, _):
            p, s = carry
            u, s = opt.update(jax.grad(loss)(p), s, p)
            return (optax.apply_updates(p, u), s), None

        (params, _), _ = jax.jit(lambda c: jax.lax.scan(body, c, length=500))(
            (params, opt.init(params)))
        assert float(loss(params)) < -0.999
