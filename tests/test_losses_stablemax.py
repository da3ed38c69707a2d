# SPDX-License-Identifier: Apache-2.0
"""StableMax, log-StableMax, StableMax cross-entropy and the Softmax Collapse metrics."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradkit
from gradkit.losses._stablemax import log_s

_stablemax = jax.jit(gradkit.stablemax)
_log_stablemax = jax.jit(gradkit.log_stablemax)
_ce = jax.jit(gradkit.stablemax_cross_entropy)
_ce_grad = jax.jit(jax.grad(lambda z, y: gradkit.stablemax_cross_entropy(z, y).sum()))


def _s64(x):
    """The official definition of s, in float64 NumPy (no epsilon)."""
    x = np.asarray(x, np.float64)
    return np.where(x < 0, 1.0 / (1.0 - np.minimum(x, 0.0)), x + 1.0)


def _log_stablemax64(x):
    """The official log(s(x)/Σ s(x)) in float64 (overflow-free for |x| ≤ 1e300)."""
    s = _s64(x)
    return np.log(s / s.sum(axis=-1, keepdims=True))


def test_closed_form_small():
    x = jnp.array([0.0, 1.0, -1.0])
    np.testing.assert_allclose(gradkit.stablemax(x), np.array([1.0, 2.0, 0.5]) / 3.5,
                               rtol=1e-6)
    np.testing.assert_allclose(gradkit.log_stablemax(x), np.log(np.array([1, 2, 0.5]) / 3.5),
                               rtol=1e-6)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 30.0, 1e4, 1e10, 1e30])
def test_matches_float64_reference_and_sums_to_one(scale):
    x = scale * jax.random.normal(jax.random.key(0), (16, 113), jnp.float32)
    p = _stablemax(x)
    logp = _log_stablemax(x)
    ref = _log_stablemax64(np.asarray(x))
    assert p.dtype == jnp.float32 and logp.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(p).sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(logp, ref, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(p, np.exp(ref), rtol=1e-4, atol=1e-30)


def test_monotone_in_each_logit():
    base = jax.random.normal(jax.random.key(1), (7,))
    values = jnp.linspace(-1e6, 1e6, 2001)
    # Probability of class 3 as its own logit sweeps: non-decreasing.
    probs = jax.vmap(lambda v: gradkit.stablemax(base.at[3].set(v))[3])(values)
    assert bool(jnp.all(jnp.diff(probs) >= 0))
    assert float(probs[-1]) > float(probs[0])
    # And the others' probabilities do not increase.
    others = jax.vmap(lambda v: gradkit.stablemax(base.at[3].set(v))[0])(values)
    assert bool(jnp.all(jnp.diff(others) <= 0))
    # Also the s function itself is increasing through 0.
    xs = jnp.linspace(-3.0, 3.0, 601)
    assert bool(jnp.all(jnp.diff(gradkit.stablemax(jnp.stack([xs, jnp.zeros_like(xs)], -1))[:, 0])
                        > 0))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
def test_log_stablemax_finite_with_finite_gradients_at_extremes(dtype):
    x = jnp.array([[0.0, 0.0, 0.0],
                   [1e30, -1e30, 0.0],
                   [-1e30, -1e30, -1e30],
                   [1e30, 1e30, 1e30],
                   [3e38, -3e38, 1.0],
                   [1e-45, -1e-45, 0.0]], dtype)
    logp = _log_stablemax(x)
    assert bool(jnp.all(jnp.isfinite(logp)))
    labels = jnp.array([0, 1, 2, 0, 1, 2])
    grads = _ce_grad(x, labels)
    assert bool(jnp.all(jnp.isfinite(grads)))
    jac = jax.jacrev(gradkit.stablemax)(x[1].astype(jnp.float32))
    assert bool(jnp.all(jnp.isfinite(jac)))
    # A dominant wrong class: the loss is large but finite (log of 1e30 ≈ 69).
    loss = _ce(x, labels)
    assert bool(jnp.all(jnp.isfinite(loss))) and float(loss[1].astype(jnp.float32)) > 100


def test_gradient_at_zero_is_the_one_sided_limit():
    # d log s / dx = 1 / (1 + |x|) is 1 at 0 from both sides.
    for x0 in (0.0, -0.0, 1e-7, -1e-7):
        g = jax.grad(lambda x: log_s(x))(jnp.float32(x0))
        np.testing.assert_allclose(g, 1.0 / (1.0 + abs(x0)), rtol=1e-6)
    # Cross-entropy gradient at all-zero logits: p − onehot with p uniform.
    g = jax.grad(lambda z: gradkit.stablemax_cross_entropy(z, jnp.array(2)))(jnp.zeros(4))
    # ∂/∂z_j [log Σ log-space] = p_j · d log s(z_j)/dz_j = 1/4 at zero; minus 1 at label.
    np.testing.assert_allclose(g, np.array([0.25, 0.25, -0.75, 0.25]), rtol=1e-6)


def test_cross_entropy_matches_reference_and_masks_classes():
    logits = 5.0 * jax.random.normal(jax.random.key(2), (8, 10))
    labels = jax.random.randint(jax.random.key(3), (8,), 0, 10)
    loss = _ce(logits, labels)
    ref = -np.take_along_axis(_log_stablemax64(np.asarray(logits)),
                              np.asarray(labels)[:, None], axis=-1)[:, 0]
    np.testing.assert_allclose(loss, ref, rtol=1e-5)
    assert bool(jnp.all(loss >= 0))
    # `where` drops classes from the normaliser, as optax's `where`.
    where = jnp.arange(10) < 6
    labels6 = labels % 6
    masked = gradkit.stablemax_cross_entropy(logits, labels6, where=where)
    ref6 = -np.take_along_axis(_log_stablemax64(np.asarray(logits[:, :6])),
                               np.asarray(labels6)[:, None], axis=-1)[:, 0]
    np.testing.assert_allclose(masked, ref6, rtol=1e-5)


def test_cross_entropy_rejects_bad_labels():
    with pytest.raises(TypeError, match="labels"):
        gradkit.stablemax_cross_entropy(jnp.zeros((2, 3)), jnp.zeros((2,)))
    with pytest.raises(ValueError, match="labels"):
        gradkit.stablemax_cross_entropy(jnp.zeros((2, 3)), jnp.zeros((3,), jnp.int32))


def test_jit_and_pmap_agree():
    logits = 100.0 * jax.random.normal(jax.random.key(4), (8, 4, 5))
    labels = jax.random.randint(jax.random.key(5), (8, 4), 0, 5)
    fn = lambda z, y: (gradkit.stablemax_cross_entropy(z, y),  # noqa: E731
                       jax.grad(lambda q: gradkit.stablemax_cross_entropy(q, y).sum())(z))
    eager = (_ce(logits, labels), _ce_grad(logits, labels))
    ref = _log_stablemax64(np.asarray(logits))
    np.testing.assert_allclose(eager[0], -np.take_along_axis(
        ref, np.asarray(labels)[..., None], -1)[..., 0], rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(jax.pmap(fn)(logits, labels), eager, rtol=1e-6)


def test_softmax_collapse_fraction():
    labels = jnp.arange(6) % 3
    onehot = jax.nn.one_hot(labels, 3)
    small = 0.1 * onehot
    assert float(gradkit.softmax_collapse_fraction(small, labels)) == 0.0
    # Scale the true-class margin until float32 rounds its probability to exactly 1.
    scale = 1.0
    while float(jax.nn.softmax(scale * onehot[0])[0]) < 1.0:
        scale *= 2.0
    collapsed = scale * onehot
    assert float(gradkit.softmax_collapse_fraction(collapsed, labels)) == 1.0
    assert float(gradkit.softmax_collapse_fraction(collapsed, None)) == 1.0
    # The float32 cross-entropy gradient at the true class is then exactly 0 ...
    g = jax.grad(lambda z: optax.softmax_cross_entropy_with_integer_labels(
        z, labels).sum())(collapsed)
    assert bool(jnp.all(jnp.take_along_axis(g, labels[:, None], -1) == 0))
    assert float(gradkit.zero_loss_fraction(collapsed, labels)) == 1.0
    # ... but in float64 the same logits are not collapsed (needs a gap > ~36.7).
    if scale < 36:
        with jax.enable_x64(True):
            assert float(gradkit.softmax_collapse_fraction(
                np.asarray(collapsed, np.float64), labels, dtype=jnp.float64)) == 0.0
    # Half of the samples collapsed, and wrong labels do not count as collapsed.
    half = jnp.concatenate([collapsed[:3], small[3:]])
    assert float(gradkit.softmax_collapse_fraction(half, labels)) == 0.5
    wrong = (labels + 1) % 3
    assert float(gradkit.softmax_collapse_fraction(collapsed, wrong)) == 0.0
    assert float(gradkit.softmax_collapse_fraction(collapsed, None)) == 1.0
    # StableMax at the same logits is far from collapse (probability < 1).
    assert float(gradkit.stablemax(collapsed[0])[0]) < 1.0


def test_nan_logits_propagate():
    logits = jnp.array([[jnp.nan, 0.0, 1.0], [0.0, 1.0, 2.0]])
    loss = gradkit.stablemax_cross_entropy(logits, jnp.array([1, 2]))
    assert bool(jnp.isnan(loss[0])) and bool(jnp.isfinite(loss[1]))


def test_stablemax_collapse_fraction():
    labels = jnp.arange(6) % 3
    onehot = jax.nn.one_hot(labels, 3)
    # Softmax-collapsed logits (gap 40) are nowhere near StableMax collapse ...
    assert float(gradkit.softmax_collapse_fraction(40.0 * onehot, labels)) == 1.0
    assert float(gradkit.stablemax_collapse_fraction(40.0 * onehot, labels)) == 0.0
    # ... which needs the top s(x) to dwarf the others' sum by ~2^24 in float32.
    assert float(gradkit.stablemax_collapse_fraction(1e9 * onehot, labels)) == 1.0
    assert float(gradkit.stablemax_collapse_fraction(1e9 * onehot, (labels + 1) % 3)) == 0.0
    assert float(gradkit.stablemax_collapse_fraction(1e9 * onehot)) == 1.0
    # There the float32 StableMax probability of the true class is exactly 1.
    np.testing.assert_array_equal(
        jnp.take_along_axis(_stablemax(1e9 * onehot), labels[:, None], -1), 1.0)


def test_float32_loss_keeps_tiny_top_class_loss_and_gradient():
    # A correctly classified sample far beyond float32 round-off: the true class's
    # StableMax probability is 1 − 9e-12. The official loss (float64) is log1p(tail)
    # ≈ 9e-12 with a gradient ≈ −tail/(1 + x_y) at the true logit; a float32
    # logsumexp would round both to exactly 0 (StableMax collapse, no signal left).
    logits = jnp.array([[1e9] + [-1e3] * 9], jnp.float32)
    labels = jnp.array([0])
    s = _s64(np.asarray(logits, np.float64))[0]
    tail = s[1:].sum() / s[0]
    loss = _ce(logits, labels)
    np.testing.assert_allclose(loss, [np.log1p(tail)], rtol=1e-5)
    assert float(loss[0]) > 0
    g = _ce_grad(logits, labels)[0]
    # d/dx_y log1p(tail) = −tail/(1 + tail)/(1 + x_y); d/dx_j = p_j · d log s_j/dx_j.
    ref_y = -tail / (1 + tail) / (1 + 1e9)
    ref_j = (s[1] / s.sum()) * (1 / (1 + 1e3))
    np.testing.assert_allclose(g[0], ref_y, rtol=1e-4)
    np.testing.assert_allclose(g[1:], ref_j, rtol=1e-4)
    # The naive quotient collapses at this point: the collapse metric says so.
    assert float(gradkit.stablemax_collapse_fraction(logits)) == 1.0


def test_masked_out_class_above_the_max_gives_finite_gradients():
    # A masked-out logit larger than every kept one must not overflow exp in the
    # unselected branch (inf · 0 = NaN gradients).
    logits = jnp.array([[1e30, 2.0, -1.0, 0.5]], jnp.float32)
    where = jnp.array([False, True, True, True])
    grad = jax.grad(lambda z: gradkit.stablemax_cross_entropy(z, jnp.array([1]), where).sum())
    g = grad(logits)
    assert bool(jnp.all(jnp.isfinite(g))) and float(g[0, 0]) == 0.0
    ref = -_log_stablemax64(np.asarray(logits[:, 1:]))[0, 0]
    np.testing.assert_allclose(
        gradkit.stablemax_cross_entropy(logits, jnp.array([1]), where), [ref], rtol=1e-6)
