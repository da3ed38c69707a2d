# SPDX-License-Identifier: Apache-2.0
"""What is special about EGGROLL (the shared behaviour is in test_conformance.py)."""

from __future__ import annotations

import functools
import importlib
import inspect
import types

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized

import gradkit
import gradkit.evolution as es
from gradkit.evolution._forward import intercepted_paths
from gradkit.evolution._stored_noise import stored_noise

SIGMA = 0.3


def _params():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    return {
        "w": jax.random.normal(k1, (5, 4)),
        "b": jax.random.normal(k2, (4,)),
        "conv": jax.random.normal(k3, (2, 3, 4)),
        "emb": jnp.ones((3, 2)),
    }


def _kinds(params):
    return {"w": "lowrank", "b": "dense", "conv": "lowrank", "emb": "frozen"}


def _key(raw, rank=2, **kw):
    config = es.EggrollConfig(rank=rank, kinds=_kinds(_params()), **kw)
    return es.EggrollKey(raw, jnp.float32(SIGMA), config)


@jax.jit
def _member(params, key, i, noise=None):
    return es.eggroll_perturb(params, key, i, noise=noise)


class NoiseTest(parameterized.TestCase):

    def test_regenerated_identically_and_differs_across_members_and_steps(self):
        params = _params()
        key = _key(jax.random.key(1))
        a = _member(params, key, 4)
        b = _member(params, key, 4)
        chex.assert_trees_all_equal(a, b)
        c = _member(params, key, 6)  # another noise index
        assert not np.allclose(a["w"], c["w"]) and not np.allclose(a["b"], c["b"])
        # The next step's key gives other noise.
        opt = es.scale_by_eggroll(SIGMA, rank=2, kinds=_kinds(params))
        state = opt.init(params)
        k0 = es.eggroll_current_key(state)
        _, state = opt.update(params, state, fitness=jnp.arange(8.0))
        k1 = es.eggroll_current_key(state)
        assert not np.allclose(_member(params, k0, 4)["w"], _member(params, k1, 4)["w"])

    def test_noise_interval_keeps_the_key_for_k_steps(self):
        params = _params()
        opt = es.scale_by_eggroll(SIGMA, noise_interval=2, kinds=_kinds(params))
        state = opt.init(params)
        keys = []
        for _ in range(3):
            keys.append(jax.random.key_data(es.eggroll_current_key(state).key))
            _, state = opt.update(params, state, fitness=jnp.arange(4.0))
        np.testing.assert_array_equal(keys[0], keys[1])
        assert not np.array_equal(keys[1], keys[2])

    def test_antithetic_pairs_mirror_and_factors_have_rank_r(self):
        params = _params()
        for rank in (1, 2):
            key = _key(jax.random.key(2), rank=rank)
            plus = _member(params, key, 2)
            minus = _member(params, key, 3)
            for name in ("w", "b", "conv"):
                np.testing.assert_allclose(plus[name] - params[name],
                                           params[name] - minus[name], atol=1e-5)
            delta = (plus["w"] - params["w"]) / SIGMA
            assert np.linalg.matrix_rank(np.asarray(delta), tol=1e-4) == rank
            delta_conv = ((plus["conv"] - params["conv"]) / SIGMA).reshape(6, 4)
            assert np.linalg.matrix_rank(np.asarray(delta_conv), tol=1e-4) == rank
            chex.assert_trees_all_equal(plus["emb"], params["emb"])  # frozen

    @parameterized.parameters("hash", "jax")
    def test_sample_noise_rows_are_what_perturb_uses(self, generator):
        params = _params()
        key = _key(jax.random.key(3), generator=generator)
        noise = es.eggroll_sample_noise(params, key, 8)
        w = noise[3]  # leaves in key order: b, conv, emb, w
        assert isinstance(w, es.LowRankFactors) and w.a.shape == (4, 5, 2)
        assert w.b.shape == (4, 4, 2) and noise[2] is None
        expected = params["w"] - SIGMA * (w.a[2] @ w.b[2].T) / np.sqrt(2)  # member 5: k=2, −
        np.testing.assert_allclose(_member(params, key, 5)["w"], expected, rtol=1e-5,
                                   atol=1e-6)
        np.testing.assert_allclose(
            _member(params, key, 5, noise=noise)["w"], expected, rtol=1e-5, atol=1e-6)
        # Row k does not depend on the population size.
        bigger = es.eggroll_sample_noise(params, key, 16)
        for small, big in zip(jax.tree.leaves(noise), jax.tree.leaves(bigger), strict=True):
            np.testing.assert_array_equal(small, big[:4])

    @parameterized.parameters("hash", "jax")
    def test_population_forward_draws_sample_noise_bit_for_bit(self, generator):
        # population_apply's own noise (drawn once, stored; a lax.cond on CPU) is
        # sample_noise's, eager and jitted; at σ = 0 it is zero (σE is zero either way).
        params = _params()
        key = _key(jax.random.key(3), generator=generator)
        expected = es.eggroll_sample_noise(params, key, 8)
        stored = jax.jit(stored_noise, static_argnums=2)
        chex.assert_trees_all_equal(stored_noise(params, key, 8), expected)
        chex.assert_trees_all_equal(stored(params, key, 8), expected)
        at_zero = stored(params, key._replace(sigma=jnp.float32(0.0)), 8)
        chex.assert_trees_all_equal(at_zero, jax.tree.map(jnp.zeros_like, expected))

    @parameterized.parameters(("threefry2x32", "hash"), ("rbg", "hash"),
                              ("unsafe_rbg", "hash"), ("threefry2x32", "jax"))
    def test_vmapped_members_match_single_members(self, impl, generator):
        params = _params()
        key = _key(jax.random.key(4, impl=impl), key_impl=impl, generator=generator)
        batched = jax.vmap(lambda i: _member(params, key, i))(jnp.arange(8))
        for i in (0, 5, 7):
            chex.assert_trees_all_close(jax.tree.map(lambda t, i=i: t[i], batched),
                                        _member(params, key, i), rtol=1e-5, atol=1e-6)

    def test_hash_generator_is_standard_gaussian_and_independent(self):
        # 64 noise indices × 2049 entries: moments of N(0, 1), no correlation between
        # indices or between neighbouring entries, no shared values across indices.
        params = {"w": jnp.zeros((2048, 1))}
        key = es.EggrollKey(jax.random.key(5), jnp.float32(1.0), es.EggrollConfig())
        f = es.eggroll_sample_noise(params, key, 128)[0]
        z = np.asarray(jnp.concatenate([f.a[..., 0], f.b[..., 0]], axis=1), np.float64)
        flat = z.ravel()  # 131072 draws; standard errors ≈ 0.003 (mean), 0.004 (var)
        assert abs(flat.mean()) < 0.015 and abs(flat.var() - 1.0) < 0.02
        assert abs(np.mean(flat**4) - 3.0) < 0.1 and abs(np.mean(flat**3)) < 0.05
        np.testing.assert_allclose(np.mean(np.abs(flat) > 1.96), 0.05, atol=0.004)
        np.testing.assert_allclose(np.mean(np.abs(flat) > 3.0), 0.0027, atol=0.0012)
        corr = np.corrcoef(z)[np.triu_indices(64, 1)]  # se 1/√2049 ≈ 0.022 each
        assert np.max(np.abs(corr)) < 0.11 and abs(corr.mean()) < 0.01
        lag = np.mean(z[:, 1:] * z[:, :-1])
        assert abs(lag) < 0.015
        assert len(np.unique(flat)) > 0.99 * flat.size


class EstimateTest(parameterized.TestCase):

    def _update(self, fitness, params=None, **kw):
        params = _params() if params is None else params
        kw.setdefault("kinds", _kinds(params))
        opt = es.scale_by_eggroll(SIGMA, rank=kw.pop("rank", 2), **kw)
        state = opt.init(params)
        return opt.update(params, state, params, fitness=fitness), state

    @parameterized.parameters(("threefry2x32", 2, "hash"), ("rbg", 4, "hash"),
                              ("threefry2x32", 2, "jax"))
    def test_update_is_minus_mean_of_shaped_fitness_times_perturbation(self, impl, key_size,
                                                                       generator):
        params = _params()
        n = 8
        fitness = jnp.asarray([3.0, -1.0, 0.5, 2.0, 7.0, 1.0, -4.0, 0.0])
        (updates, state_n), state = self._update(fitness, params, key_impl=impl,
                                                 generator=generator)
        key = es.eggroll_current_key(state)
        shaped = (fitness - fitness.mean()) / jnp.sqrt(fitness.var() + 1e-5)
        expected = jax.tree.map(jnp.zeros_like, params)
        for i in range(n):
            member = _member(params, key, i)
            expected = jax.tree.map(
                lambda e, m, p, i=i: e - shaped[i] * (m - p) / SIGMA / n,
                expected, member, params)
        chex.assert_trees_all_close(updates, expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(updates["emb"], 0.0)  # frozen
        assert int(state_n.count) == 1 and state_n.count.dtype == jnp.int32
        assert state_n.key.dtype == jnp.uint32 and state_n.key.shape == (key_size,)

    def test_divide_by_sigma_and_raw_shaping(self):
        fitness = jnp.asarray([1.0, 0.0, 2.0, 5.0])
        (a, _), _ = self._update(fitness, fitness_shaping="raw")
        (b, _), _ = self._update(fitness, fitness_shaping="raw", divide_by_sigma=True)
        chex.assert_trees_all_close(b, jax.tree.map(lambda x: x / SIGMA, a), rtol=1e-6)

    @parameterized.parameters("raw", "zscore", "centered_rank")
    def test_antithetic_pairs_cancel_for_constant_fitness(self, shaping):
        fitness = jnp.full((8,), 3.7)
        (updates, _), _ = self._update(fitness, fitness_shaping=shaping)
        for leaf in jax.tree.leaves(updates):
            np.testing.assert_array_equal(leaf, 0.0)
        # Pairwise-equal but not constant fitness cancels too (raw has no centring).
        pairs = jnp.repeat(jnp.asarray([1.0, 5.0, -2.0, 9.0]), 2)
        (updates, _), _ = self._update(pairs, fitness_shaping="raw")
        for leaf in jax.tree.leaves(updates):
            np.testing.assert_array_equal(leaf, 0.0)

    def test_fitness_shaping_closed_forms(self):
        f = jnp.asarray([4.0, 1.0, 3.0, 10.0, 2.0, 0.0])
        np.testing.assert_allclose(es.eggroll_shape_fitness(f, "raw"), f)
        np.testing.assert_allclose(es.eggroll_shape_fitness(f, "zscore"),
                                   (f - 10 / 3) / np.sqrt(np.var(f) + 1e-5), rtol=1e-5)
        group = es.eggroll_shape_fitness(f, "group", group_size=2)
        gm = np.repeat(np.asarray(f).reshape(3, 2).mean(1), 2)
        np.testing.assert_allclose(group, (f - gm) / np.sqrt(np.var(f) + 1e-5), rtol=1e-5)
        np.testing.assert_allclose(es.eggroll_shape_fitness(f, "centered_rank"),
                                   np.asarray([4, 1, 3, 5, 2, 0]) / 5 - 0.5, atol=1e-7)

    @parameterized.parameters("zscore", "centered_rank", "group", "raw")
    def test_non_finite_fitness_is_left_out(self, shaping):
        f = jnp.asarray([4.0, jnp.nan, 3.0, 10.0, jnp.inf, 0.0, 2.0, -jnp.inf])
        ok = np.isfinite(np.asarray(f))
        shaped = es.eggroll_shape_fitness(f, shaping, group_size=2)
        assert np.all(np.isfinite(shaped)) and np.all(np.asarray(shaped)[~ok] == 0.0)
        if shaping == "zscore":
            fin = np.asarray(f)[ok]
            np.testing.assert_allclose(np.asarray(shaped)[ok],
                                       (fin - fin.mean()) / np.sqrt(fin.var() + 1e-5),
                                       rtol=1e-5)
        (updates, _), _ = self._update(f, fitness_shaping=shaping, group_size=2)
        assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree.leaves(updates))
        (none, _), _ = self._update(jnp.full((4,), jnp.nan), fitness_shaping=shaping,
                                    group_size=2)
        for leaf in jax.tree.leaves(none):
            np.testing.assert_array_equal(leaf, 0.0)

    def test_fitness_spike_is_bounded_by_zscore(self):
        f = jnp.arange(16.0).at[3].set(1e6)
        shaped = es.eggroll_shape_fitness(f)
        assert float(jnp.max(jnp.abs(shaped))) <= np.sqrt(16.0)
        (updates, _), _ = self._update(f)
        (plain, _), _ = self._update(jnp.arange(16.0))
        norm = optax.tree.norm
        assert float(norm(updates)) < 10 * float(norm(plain))

    @parameterized.parameters(1, 4, 16)
    def test_expectation_vs_full_rank_es_is_order_one_over_r(self, rank):
        # f(W) = Σ W³ at W = 0, σ = 1: the textbook ES gradient E[f(W+σE)E]/σ is
        # E[e⁴] per entry: 3 for Gaussian noise (full-rank ES), 3 + 6/r for
        # E = ABᵀ/√r (fourth moment of a mean of r products of Gaussians).
        params = {"w": jnp.zeros((4, 4))}
        n = 2**18  # the mean over entries has standard error ≈ 0.01 (full rank)

        @functools.partial(jax.jit, static_argnums=0)
        def estimate(kind):
            opt = es.scale_by_eggroll(1.0, rank=rank, fitness_shaping="raw", divide_by_sigma=True,
                                      kinds={"w": kind})
            state = opt.init(params)
            key = es.eggroll_current_key(state)
            noise = es.eggroll_sample_noise(params, key, n)
            fit = jax.vmap(lambda i: jnp.sum(
                es.eggroll_perturb(params, key, i, noise=noise)["w"] ** 3))(jnp.arange(n))
            return jnp.mean(-opt.update(params, state, fitness=fit)[0]["w"])

        low, full = float(estimate("lowrank")), float(estimate("dense"))
        np.testing.assert_allclose(full, 3.0, atol=0.06)
        np.testing.assert_allclose(low, 3.0 + 6.0 / rank, atol={1: 0.4, 4: 0.12, 16: 0.08}[rank])
        np.testing.assert_allclose((low - full) * rank, 6.0, rtol={1: 0.1, 4: 0.1, 16: 0.25}[rank])

    def test_expectation_equals_full_rank_es_on_linear_quadratic(self):
        # f(W) = ⟨G, W⟩ − ‖W‖²/2: every rank gives E[estimate] = G − W (as full rank).
        g = jax.random.normal(jax.random.key(7), (3, 2))
        w0 = jax.random.normal(jax.random.key(8), (3, 2))
        n = 2**17  # per-entry standard error ≈ ‖G − W‖/√(n/2) ≈ 0.023

        def f(p):
            return jnp.sum(g * p["w"]) - 0.5 * jnp.sum(p["w"] ** 2)

        for kind, rank in (("lowrank", 1), ("lowrank", 3), ("dense", 1)):
            params = {"w": w0}
            opt = es.scale_by_eggroll(0.5, rank=rank, fitness_shaping="raw", divide_by_sigma=True,
                                      kinds={"w": kind})
            state = opt.init(params)
            key = es.eggroll_current_key(state)

            @jax.jit
            def fitness(params, key):
                return jax.vmap(lambda i: f(es.eggroll_perturb(params, key, i)))(jnp.arange(n))

            est = -opt.update(params, state, fitness=fitness(params, key))[0]["w"]
            np.testing.assert_allclose(est, g - w0, atol=0.12)

    @chex.variants(with_jit=True, without_jit=True, with_pmap=True)
    def test_variants_agree(self):
        params = _params()
        opt = es.scale_by_eggroll(SIGMA, rank=2, kinds=_kinds(params))
        state = opt.init(params)
        fitness = jnp.asarray([3.0, -1.0, 0.5, 2.0])
        expected, _ = opt.update(params, state, params, fitness=fitness)
        got, new_state = self.variant(functools.partial(opt.update, fitness=fitness))(
            params, state, params)
        chex.assert_trees_all_close(got, expected, rtol=1e-5, atol=1e-6)
        assert int(new_state.count) == 1

    def test_inject_hyperparams_needs_static_rank_under_jit(self):
        params = _params()
        fitness = jnp.arange(4.0)
        injected = optax.inject_hyperparams(gradkit.eggroll, static_args=("rank",))(
            learning_rate=0.1, sigma=SIGMA, rank=2)
        state = injected.init(params)
        jax.jit(functools.partial(injected.update, fitness=fitness))(params, state, params)
        traced = optax.inject_hyperparams(gradkit.eggroll)(learning_rate=0.1, sigma=SIGMA,
                                                           rank=2)
        state = traced.init(params)
        with pytest.raises(ValueError, match="static_args"):
            jax.jit(functools.partial(traced.update, fitness=fitness))(params, state, params)

    def test_state_shares_no_buffer_with_injected_hyperparameters(self):
        # A jitted step donating params and state must not meet σ's injected buffer twice.
        opt = optax.inject_hyperparams(es.scale_by_eggroll, static_args=("rank",))(sigma=0.1)

        @functools.partial(jax.jit, donate_argnums=(0, 1))
        def step(params, state):
            key = es.eggroll_current_key(state)
            fit = jax.vmap(lambda i: -jnp.sum(es.eggroll_perturb(params, key, i)["w"] ** 2))(
                jnp.arange(4))
            updates, state = opt.update(params, state, params, fitness=fit)
            return optax.apply_updates(params, updates), state

        params = {"w": jnp.ones((3, 2))}
        params, state = step(params, opt.init(params))
        params, state = step(params, state)
        assert int(state.inner_state.count) == 2

    def test_chained_with_adam_maximises_fitness(self):
        target = jnp.asarray([[1.0, -2.0], [0.5, 3.0], [0.0, 1.0]])
        opt = optax.chain(gradkit.scale_by_eggroll(0.1), optax.adam(0.05))
        params = {"w": jnp.zeros((3, 2))}
        state = opt.init(params)

        @jax.jit
        def step(params, state):
            key = gradkit.eggroll_current_key(state)
            fit = jax.vmap(lambda i: -jnp.sum((gradkit.eggroll_perturb(
                params, key, i)["w"] - target) ** 2))(jnp.arange(32))
            updates, state = opt.update(params, state, params, fitness=fit)
            return optax.apply_updates(params, updates), state

        for _ in range(200):
            params, state = step(params, state)
        np.testing.assert_allclose(params["w"], target, atol=0.05)


class ValidationTest(parameterized.TestCase):

    @parameterized.parameters(
        (dict(sigma=0.0), "sigma"), (dict(sigma=-1.0), "sigma"),
        (dict(sigma=0.1, rank=0), "rank"), (dict(sigma=0.1, rank=1.5), "rank"),
        (dict(sigma=0.1, fitness_shaping="rank"), "fitness_shaping"),
        (dict(sigma=0.1, fitness_shaping="group"), "group_size"),
        (dict(sigma=0.1, noise_interval=0), "noise_interval"),
    )
    def test_bad_hyperparameters_raise(self, kwargs, name):
        with pytest.raises(ValueError, match=name):
            es.scale_by_eggroll(**kwargs)

    def test_bad_weight_decay_raises(self):
        with pytest.raises(ValueError, match="weight_decay"):
            gradkit.eggroll(0.1, 0.1, weight_decay=-1.0)

    def test_key_is_an_int_or_a_typed_key(self):
        params = {"w": jnp.zeros((3, 2))}
        want = es.scale_by_eggroll(0.1, key=3).init(params).key
        typed = es.scale_by_eggroll(0.1, key=jax.random.key(3)).init(params).key
        np.testing.assert_array_equal(typed, want)
        rbg = es.scale_by_eggroll(0.1, key=jax.random.key(3, impl="rbg"), key_impl="rbg")
        np.testing.assert_array_equal(
            rbg.init(params).key, jax.random.key_data(jax.random.key(3, impl="rbg")))
        assert not np.array_equal(es.scale_by_eggroll(0.1).init(params).key, want)
        with pytest.raises(TypeError, match="seed"):
            es.scale_by_eggroll(0.1, seed=3)
        with pytest.raises(TypeError, match="`key`"):
            es.scale_by_eggroll(0.1, key=0.5)
        with pytest.raises(ValueError, match="key_impl"):
            es.scale_by_eggroll(0.1, key=jax.random.key(3, impl="rbg"))

    def test_alias_takes_learning_rate_and_sigma_then_keywords(self):
        with pytest.raises(TypeError):
            gradkit.eggroll(0.1, 0.1, 2)
        with pytest.raises(TypeError):
            gradkit.scale_by_eggroll(0.1, 2)

    def test_bad_fitness_and_population(self):
        params = _params()
        opt = es.scale_by_eggroll(SIGMA)
        state = opt.init(params)
        with pytest.raises(ValueError, match="even"):
            opt.update(params, state, fitness=jnp.arange(5.0))
        with pytest.raises(ValueError, match="shape"):
            opt.update(params, state, fitness=jnp.ones((2, 2)))
        with pytest.raises(ValueError, match="fitness"):
            opt.update(params, state)
        with pytest.raises(ValueError, match="group_size"):
            es.scale_by_eggroll(SIGMA, fitness_shaping="group", group_size=3).update(
                params, state, fitness=jnp.arange(8.0))

    def test_mismatched_kinds_tree_and_bad_kind_raise(self):
        params = _params()
        with pytest.raises(ValueError, match="kinds"):
            es.eggroll_resolve_kinds(params, {"w": "lowrank"})
        with pytest.raises(ValueError, match="kinds"):
            es.eggroll_resolve_kinds(params, lambda path, leaf: "sparse")
        kinds = es.eggroll_resolve_kinds(params, lambda path, leaf: (
            "frozen" if jax.tree_util.keystr(path) == "['emb']" else None))
        assert kinds == {"w": "lowrank", "b": "dense", "conv": "lowrank", "emb": "frozen"}


class ConfigTest(parameterized.TestCase):
    """One EggrollConfig, made by the transform, decides the noise everywhere."""

    def test_forward_reads_every_setting_from_the_transform(self):
        # Non-default settings given once: the key from the state carries all of them,
        # and the update is exactly the estimate over the members perturb() evaluated.
        params = _params()
        kinds = {"w": "lowrank", "b": "frozen", "conv": "dense", "emb": "lowrank"}
        opt = es.scale_by_eggroll(SIGMA, rank=3, antithetic=False, noise_interval=2, kinds=kinds,
                                  key_impl="rbg", key=4, fitness_shaping="raw")
        state = opt.init(params)
        _, state = opt.update(params, state, fitness=jnp.arange(6.0))  # count 1, epoch 0
        key = es.eggroll_current_key(state)
        assert key.config == state.config
        assert key.config == es.EggrollConfig(3, False, kinds, "rbg")
        np.testing.assert_allclose(key.sigma, SIGMA)
        fitness = jnp.asarray([1.0, -2.0, 0.5, 3.0, 0.0, -1.0])
        members = [_member(params, key, i) for i in range(6)]
        assert np.linalg.matrix_rank(np.asarray(members[0]["w"] - params["w"]),
                                     tol=1e-5) == 3
        chex.assert_trees_all_equal(members[1]["b"], params["b"])  # frozen
        updates, _ = opt.update(params, state, fitness=fitness)
        expected = jax.tree.map(
            lambda p, *ms: -sum(f * (m - p) for f, m in zip(fitness, ms, strict=True))
            / SIGMA / 6, params, *members)
        chex.assert_trees_all_close(updates, expected, rtol=1e-4, atol=1e-5)

    def test_settings_cannot_be_given_again_by_hand(self):
        params = _params()
        state = es.scale_by_eggroll(SIGMA, rank=2).init(params)
        key = es.eggroll_current_key(state)
        with pytest.raises(TypeError, match="rank"):
            es.eggroll_perturb(params, key, 0, rank=1)
        with pytest.raises(TypeError, match="current_key"):
            es.eggroll_perturb(params, jax.random.key(0), 0)
        with pytest.raises(TypeError, match="current_key"):
            es.eggroll_sample_noise(params, jax.random.key(0), 4)

    def test_state_of_another_transform_is_refused(self):
        params = _params()
        state = es.scale_by_eggroll(SIGMA, rank=2).init(params)
        with pytest.raises(ValueError, match="another EGGROLL transform"):
            es.scale_by_eggroll(SIGMA, rank=1).update(params, state, fitness=jnp.arange(4.0))

    def test_config_is_static_hashable_and_validated(self):
        config = es.EggrollConfig(rank=2, kinds={"w": "lowrank", "b": "dense"})
        assert hash(config) == hash(es.EggrollConfig(2, kinds={"b": "dense", "w": "lowrank"}))
        assert jax.tree.leaves(config) == []
        key = es.EggrollKey(jax.random.key(0), jnp.float32(0.1), config)
        assert len(jax.tree.leaves(key)) == 2  # key and σ; the config is static
        with pytest.raises(ValueError, match="rank"):
            es.EggrollConfig(rank=0)
        with pytest.raises(ValueError, match="generator"):
            es.EggrollConfig(generator="philox")
        with pytest.raises(ValueError, match="key_impl"):
            es.EggrollConfig(key_impl="threefry")
        with pytest.raises(ValueError, match="kinds"):
            es.EggrollConfig(kinds={"w": "sparse"})


class _Net(nn.Module):

    @nn.compact
    def __call__(self, tokens, x):
        embed = nn.Embed(7, 6)
        h = embed(tokens) + nn.Dense(6, name="inp")(x)
        h = nn.LayerNorm()(jnp.tanh(h))
        h = nn.Conv(6, (2,))(h)  # not intercepted: materialised fallback
        h = nn.Dense(6, use_bias=False)(jax.nn.relu(h))
        return embed.attend(h)


class ForwardTest(parameterized.TestCase):

    def _setup(self):
        model = _Net()
        tokens = jnp.asarray([[1, 4, 6, 0], [2, 2, 5, 3]])
        x = jax.random.normal(jax.random.key(5), (2, 4, 3))
        params = model.init(jax.random.key(6), tokens, x)["params"]
        return model, params, tokens, x

    def test_known_layers_are_intercepted_and_others_materialised(self):
        model, params, tokens, x = self._setup()
        lowrank = {("Embed_0", "embedding"), ("inp", "kernel"), ("Conv_0", "kernel"),
                   ("Dense_0", "kernel")}
        handled = intercepted_paths(model, params, lowrank, (tokens, x), {}, None, {})
        assert handled == {("Embed_0", "embedding"), ("inp", "kernel"), ("Dense_0", "kernel")}

    @parameterized.parameters(("rbg", 4, True, True), ("threefry2x32", 1, False, True),
                              ("threefry2x32", 2, False, False))
    def test_efficient_forward_equals_materialised(self, impl, rank, pregenerate, antithetic):
        model, params, tokens, x = self._setup()
        config = es.EggrollConfig(rank=rank, key_impl=impl, antithetic=antithetic)
        key = es.EggrollKey(jax.random.key(9, impl=impl), jnp.float32(0.2), config)
        n = 6
        noise = es.eggroll_sample_noise(params, key, n) if pregenerate else None
        fast = jax.jit(lambda p: es.eggroll_population_apply(
            model, p, key, tokens, x, population_size=n, noise=noise))(params)
        base = model.apply({"params": params}, tokens, x)
        slow = jax.jit(jax.vmap(lambda i: model.apply(
            {"params": es.eggroll_perturb(params, key, i)}, tokens, x)))(jnp.arange(n))
        for i in range(n):
            np.testing.assert_allclose(fast[i], slow[i], rtol=1e-4, atol=1e-5)
            assert not np.allclose(fast[i], base, atol=1e-3)

    def test_per_member_inputs(self):
        model, params, tokens, x = self._setup()
        key = es.EggrollKey(jax.random.key(1), jnp.float32(0.2), es.EggrollConfig())
        xs = jnp.stack([x, 2 * x, -x, x + 1])
        fast = jax.jit(lambda p: es.eggroll_population_apply(
            model, p, key, tokens, xs, population_size=4, in_axes=(None, 0)))(params)
        slow = jax.jit(jax.vmap(lambda i, xi: model.apply(
            {"params": es.eggroll_perturb(params, key, i)}, tokens, xi)))(jnp.arange(4), xs)
        np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-5)
        # The members' inputs on another axis.
        fast = jax.jit(lambda p: es.eggroll_population_apply(
            model, p, key, tokens, jnp.moveaxis(xs, 0, 1), population_size=4,
            in_axes=(None, 1)))(params)
        np.testing.assert_allclose(fast, slow, rtol=1e-4, atol=1e-5)


class ShardedTest(parameterized.TestCase):

    def test_eight_device_estimate_equals_single_device(self):
        assert jax.device_count() == 8
        model, params, tokens, x = ForwardTest()._setup()
        n = 16
        opt = gradkit.eggroll(0.1, 0.2, rank=2)
        state = opt.init(params)
        key = gradkit.eggroll_current_key(state)

        def member_fitness(p, k, i):
            out = es.eggroll_apply_member(model, p, k, i, tokens, x)
            return -jnp.mean(out ** 2)

        single = jax.jit(jax.vmap(lambda i: member_fitness(params, key, i)))(jnp.arange(n))
        pmapped = gradkit.population_fitness_pmap(member_fitness, params, key, n)
        mesh = gradkit.population_mesh()
        sharded = jax.jit(lambda p, k: gradkit.population_fitness_sharded(
            member_fitness, p, k, n, mesh))(params, key)
        np.testing.assert_allclose(pmapped, single, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(sharded, single, rtol=1e-5, atol=1e-6)
        update = jax.jit(lambda f: opt.update(params, state, params, fitness=f)[0])
        expected = update(single)
        for fit in (pmapped, sharded):
            got = update(fit)
            chex.assert_trees_all_close(got, expected, rtol=1e-5, atol=1e-7)

        # Every device computes the same update from the gathered fitness.
        def device_update(f, p, s):
            return opt.update(p, s, p, fitness=f)[0]

        rep = jax.pmap(device_update, in_axes=(0, None, None))(
            np.broadcast_to(np.asarray(pmapped), (8, n)), params, state)
        for leaf, ref in zip(jax.tree.leaves(rep), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(leaf, np.broadcast_to(ref, leaf.shape), rtol=1e-5,
                                       atol=1e-7)

    def test_population_must_divide_devices(self):
        with pytest.raises(ValueError, match="population_size"):
            gradkit.population_fitness_pmap(lambda p, k, i: 0.0, {}, None, 12)


def test_package_and_alias_do_not_clash():
    # `import a.b as c` binds getattr(a, "b"): the family lives in `gradkit.evolution`
    # so that `gradkit.eggroll` can be the alias function without shadowing a module.
    import gradkit.evolution as evolution

    assert isinstance(evolution, types.ModuleType)
    assert evolution.__name__ == "gradkit.evolution"
    assert gradkit.evolution is evolution
    assert callable(gradkit.eggroll) and not isinstance(gradkit.eggroll, types.ModuleType)
    assert gradkit.eggroll is evolution.eggroll
    assert gradkit.scale_by_eggroll is evolution.scale_by_eggroll
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("gradkit.eggroll")
    for name in evolution.__all__:
        assert hasattr(evolution, name), name


def test_one_public_name_per_function():
    # Every function and class of the package is re-exported under its own name, and
    # under no other.
    import gradkit.evolution as evolution

    for name in evolution.__all__:
        value = getattr(evolution, name)
        if inspect.isfunction(value) or (
                inspect.isclass(value) and value.__module__.startswith("gradkit.")):
            assert getattr(gradkit, name, None) is value, name
            assert [n for n in gradkit.__all__ if getattr(gradkit, n) is value] == [name]
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("gradkit.parallel")
