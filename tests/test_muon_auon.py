# SPDX-License-Identifier: Apache-2.0
"""AuON / Hybrid-AuON: closed forms on tiny matrices, the cosh-RMS bound, routing."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradkit

BETA = 0.95


def _cosh_rms_np(x):
    return np.sqrt(np.mean(np.cosh(x) ** 2))


def _auon_np(g_hat, ns_steps=0, rms_scaling=True):
    """Paper v1 / first code, float64: X = G/(‖G‖+1e-7) [→ NS], U = X/(r + 1e-8) × aspect."""
    x = g_hat / (np.linalg.norm(g_hat) + 1e-7)
    a, b, c = 3.4445, -4.7750, 2.0315
    for _ in range(ns_steps):
        xt = x.T if x.shape[0] > x.shape[1] else x
        gram = xt @ xt.T
        xt = a * xt + (b * gram + c * gram @ gram) @ xt
        x = xt.T if x.shape[0] > x.shape[1] else xt
    if rms_scaling:
        x = x / (_cosh_rms_np(x) + 1e-8)
    return math.sqrt(max(1.0, g_hat.shape[1] / g_hat.shape[0])) * x


@pytest.mark.parametrize("hybrid", [False, True])
def test_two_steps_closed_form_on_tiny_matrix(hybrid):
    g1 = np.array([[3.0, 4.0]])  # 1 x 2: fan_in 1, fan_out 2 -> aspect factor √2
    g2 = np.array([[1.0, -2.0]])
    opt = gradkit.scale_by_auon(hybrid=hybrid)
    state = opt.init(jnp.zeros((1, 2)))
    u1, state = opt.update(jnp.asarray(g1, jnp.float32), state)
    buf = (1 - BETA) * g1
    want = _auon_np((1 - BETA) * g1 + BETA * buf, ns_steps=int(hybrid))
    np.testing.assert_allclose(u1, want, rtol=1e-5)
    if not hybrid:  # Nesterov G ∝ g1, so X = (0.6, 0.8) and r is explicit.
        r = math.sqrt((math.cosh(0.6) ** 2 + math.cosh(0.8) ** 2) / 2)
        np.testing.assert_allclose(u1, math.sqrt(2) * np.array([[0.6, 0.8]]) / r, rtol=1e-5)
    u2, state = opt.update(jnp.asarray(g2, jnp.float32), state)
    buf = BETA * buf + (1 - BETA) * g2
    np.testing.assert_allclose(state.mu, buf, rtol=1e-6)
    np.testing.assert_allclose(u2, _auon_np((1 - BETA) * g2 + BETA * buf, int(hybrid)),
                               rtol=1e-5)


def test_tall_matrix_and_no_nesterov_and_later_code_options():
    g = np.random.default_rng(1).normal(size=(5, 3))
    opt = gradkit.scale_by_auon(nesterov=False, gamma=1.5, hybrid=True, ns_steps=5,
                                aspect_factor=False)
    u, _ = opt.update(jnp.asarray(g, jnp.float32), opt.init(jnp.zeros((5, 3))))
    x = (1 - BETA) * g / (np.linalg.norm((1 - BETA) * g) + 1e-7)
    a, b, c = 3.4445, -4.7750, 2.0315
    xt = x.T
    for _ in range(5):
        gram = xt @ xt.T
        xt = a * xt + (b * gram + c * gram @ gram) @ xt
    x = xt.T
    want = x / (np.sqrt(np.mean(np.cosh(1.5 * x) ** 2)) + 1e-8)
    np.testing.assert_allclose(u, want, rtol=2e-4, atol=1e-6)


def test_newton_schulz_step_matches_optax_orthogonalisation():
    x = jax.random.normal(jax.random.key(0), (6, 4))
    ours = x / (jnp.linalg.norm(x) + 1e-8)
    for _ in range(5):
        ours = gradkit.newton_schulz_step(ours)
    # optax's public Muon with β = 0 and no Nesterov orthogonalises the gradient itself.
    muon = optax.contrib.scale_by_muon(ns_coeffs=(3.4445, -4.7750, 2.0315), ns_steps=5,
                                       beta=0.0, nesterov=False)
    theirs, _ = muon.update(x, muon.init(x))
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def _hybrid_auon_later_np(g, gamma=1.5, ns_steps=5):
    """Float64 transcription of the repository's later ``HybridAuON`` step (first step,
    momentum already applied): NS on G/‖G‖, then the NS output divided by the cosh-RMS of
    its *renormalised* copy; no aspect factor."""
    x = g.T if g.shape[0] > g.shape[1] else g
    x = x / (np.linalg.norm(x) + 1e-7)
    a, b, c = 3.4445, -4.7750, 2.0315
    for _ in range(ns_steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    x = x.T if g.shape[0] > g.shape[1] else x
    r = np.sqrt(np.mean(np.cosh(gamma * x / (np.linalg.norm(x) + 1e-7)) ** 2))
    return x / (r + 1e-8)


@pytest.mark.parametrize("shape, shorter", [((10, 10), 0.08), ((16, 16), 0.05),
                                            ((64, 64), 0.014), ((128, 32), 0.006)])
def test_later_hybrid_auon_differs_from_closest_settings_by_the_documented_factor(
        shape, shorter):
    # The docstring's numbers: our step is shorter than the later HybridAuON's by about
    # 8 % (10×10), 5 % (16×16), 1.4 % (64×64), 0.6 % (128×32); same direction.
    g = np.random.default_rng(0).normal(size=shape)
    opt = gradkit.scale_by_auon(gamma=1.5, hybrid=True, ns_steps=5, aspect_factor=False,
                                nesterov=False, beta=0.0)
    ours, _ = opt.update(jnp.asarray(g, jnp.float32), opt.init(jnp.zeros(shape)))
    later = _hybrid_auon_later_np(g)
    ratio = float(np.linalg.norm(ours) / np.linalg.norm(later))
    assert 1.0 - ratio == pytest.approx(shorter, rel=0.25), ratio
    np.testing.assert_allclose(np.asarray(ours) / ratio, later, rtol=2e-3, atol=2e-4)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (8, 8), (64, 32), (256, 64)])
@pytest.mark.parametrize("gamma", [1.0, 1.5])
def test_cosh_rms_bound(shape, gamma):
    # ‖X‖_F = 1, N entries: 1 ≤ r ≤ √(1 + sinh²(γ)/N), so r − 1 ≤ sinh²(γ)/(2N).
    n = math.prod(shape)
    bound = math.sinh(gamma) ** 2 / (2 * n)
    rng = np.random.default_rng(n)
    xs = [rng.normal(size=shape), rng.standard_cauchy(size=shape), np.eye(*shape)]
    one_hot = np.zeros(shape)
    one_hot[0, 0] = 1.0  # the extremal case: r² = 1 + sinh²(γ)/N exactly
    xs.append(one_hot)
    x64 = [x / np.linalg.norm(x) for x in xs]
    for x in x64:
        r = float(gradkit.cosh_rms(jnp.asarray(x, jnp.float32), gamma))
        assert r >= 1.0 - 1e-6
        assert r - 1.0 <= bound * (1 + 1e-4) + 1e-6, (shape, r - 1, bound)
    r_hot = math.sqrt(np.mean(np.cosh(gamma * x64[-1]) ** 2))
    assert r_hot - 1 == pytest.approx(math.sqrt(1 + 2 * bound) - 1, rel=1e-9)
    if bound < 0.1:  # tight up to the √(1+a) − 1 ≤ a/2 step
        assert r_hot - 1 >= 0.9 * bound


def test_auon_equals_frobenius_normalised_nesterov_up_to_the_bound():
    g = jax.random.normal(jax.random.key(3), (64, 64))
    auon, frob = gradkit.scale_by_auon(), gradkit.scale_by_auon(rms_scaling=False)
    u_a, _ = auon.update(g, auon.init(g))
    u_f, _ = frob.update(g, frob.init(g))
    np.testing.assert_allclose(jnp.linalg.norm(u_f), 1.0, rtol=1e-5)  # Frobenius step
    ratio = float(jnp.linalg.norm(u_f) / jnp.linalg.norm(u_a))
    assert 1.0 <= ratio <= 1 + math.sinh(1) ** 2 / (2 * 64 * 64) + 1e-6
    np.testing.assert_allclose(u_a * ratio, u_f, rtol=1e-5, atol=1e-7)


def test_alias_routes_matrices_to_auon_and_the_rest_to_adamw():
    params = {"kernel": jnp.ones((4, 3)), "bias": jnp.zeros(3), "conv": jnp.ones((2, 2, 3))}
    grads = jax.tree.map(lambda x: jnp.arange(x.size, dtype=jnp.float32).reshape(x.shape)
                         - 2.0, params)
    opt = gradkit.auon(0.05, weight_decay=0.1, adam_learning_rate=1e-3)
    updates, _ = opt.update(grads, opt.init(params), params)
    core = optax.chain(gradkit.scale_by_auon(), optax.add_decayed_weights(0.1),
                       optax.scale_by_learning_rate(0.05))
    want_k, _ = core.update(grads["kernel"], core.init(params["kernel"]), params["kernel"])
    np.testing.assert_allclose(updates["kernel"], want_k, rtol=1e-6)
    adamw = optax.adamw(1e-3, weight_decay=0.0)
    for name in ("bias", "conv"):
        want, _ = adamw.update(grads[name], adamw.init(params[name]), params[name])
        np.testing.assert_allclose(updates[name], want, rtol=2e-5)
    # auon_mask keeps a selected matrix on AdamW (e.g. an embedding).
    masked = gradkit.auon(0.05, adam_learning_rate=1e-3,
                          auon_mask={"kernel": False, "bias": True, "conv": True})
    updates, _ = masked.update(grads, masked.init(params), params)
    want, _ = adamw.update(grads["kernel"], adamw.init(params["kernel"]), params["kernel"])
    np.testing.assert_allclose(updates["kernel"], want, rtol=2e-5)


def test_zero_gradient_gives_zero_update_and_nan_poisons_only_its_matrix():
    opt = gradkit.scale_by_auon()
    params = {"a": jnp.zeros((2, 2)), "b": jnp.zeros((2, 2))}
    u, state = opt.update(params, opt.init(params))
    chex_zero = jax.tree.map(lambda x: float(jnp.abs(x).max()), u)
    assert chex_zero == {"a": 0.0, "b": 0.0}
    u, _ = opt.update({"a": jnp.array([[1.0, jnp.nan], [0.0, 1.0]]), "b": jnp.ones((2, 2))},
                      state)
    assert bool(jnp.isnan(u["a"]).all()) and bool(jnp.isfinite(u["b"]).all())


@pytest.mark.parametrize("factory, kwargs, name", [
    (gradkit.scale_by_auon, dict(beta=1.0), "beta"),
    (gradkit.scale_by_auon, dict(gamma=0.0), "gamma"),
    (gradkit.scale_by_auon, dict(ns_steps=-1), "ns_steps"),
    (gradkit.auon, dict(learning_rate=-1.0), "learning_rate"),
    (gradkit.auon, dict(learning_rate=0.1, weight_decay=-1.0), "weight_decay"),
    (gradkit.auon, dict(learning_rate=0.1, adam_b1=1.0), "adam_b1"),
    (gradkit.auon, dict(learning_rate=0.1, adam_b1=-0.1), "adam_b1"),
    (gradkit.auon, dict(learning_rate=0.1, adam_b2=1.5), "adam_b2"),
    (gradkit.auon, dict(learning_rate=0.1, adam_eps=-1e-8), "adam_eps"),
])
def test_bad_hyperparameters_raise_naming_the_argument(factory, kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}`"):
        factory(**kwargs)


def test_primitive_rejects_non_matrix_leaf_with_its_path():
    with pytest.raises(ValueError, match=r"\['bias'\].*gradkit.auon"):
        gradkit.scale_by_auon().init({"bias": jnp.zeros(3)})
