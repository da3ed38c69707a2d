# SPDX-License-Identifier: Apache-2.0
"""Tests for the reference LMs: gradkit.models.transformer (shapes, causality, qk-layernorm,
Peri-LN, z-loss, head-bias init) and the minGRU LM's head-bias init."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gradkit.data import text
from gradkit.models import transformer as tf
from gradkit.models.mingru import MinGRULM

TINY = dict(vocab_size=50, max_len=8, d_model=16, num_layers=1, num_heads=2)


class _Jitted:
    """The model with a jitted ``apply`` (eager Flax is slow on a busy CPU)."""

    def __init__(self, cfg):
        self.module = tf.Transformer(cfg)
        self.apply = jax.jit(self.module.apply)


def _init(cfg, length=8, key=0):
    model = _Jitted(cfg)
    init = jax.jit(model.module.init)
    params = init(jax.random.key(key), jnp.zeros((1, length), jnp.int32))
    return model, params


def _tokens(shape, vocab=50, key=1):
    return jax.random.randint(jax.random.key(key), shape, 0, vocab)


@pytest.mark.parametrize(
    "options",
    [
        {"num_layers": 2},
        {"norm": "peri", "qk_layernorm": True},
        {"norm": "peri", "use_bias": False, "embed_norm": False, "num_heads": 1, "mlp_ratio": 2},
    ],
)
def test_forward_shapes_and_param_count(options):
    cfg = tf.TransformerConfig(**{**TINY, **options})
    model, params = _init(cfg)
    for shape in [(3, 8), (1, 5)]:
        logits = model.apply(params, _tokens(shape))
        assert logits.shape == (*shape, cfg.vocab_size)
        assert logits.dtype == jnp.float32
        assert bool(jnp.all(jnp.isfinite(logits)))
    assert sum(x.size for x in jax.tree.leaves(params)) == cfg.num_params()


def test_param_count_spans_small_to_100m():
    small = tf.TransformerConfig(vocab_size=256, max_len=32, d_model=32, num_layers=2)
    big = tf.TransformerConfig(vocab_size=256, max_len=1024, d_model=768, num_layers=14)
    assert small.num_params() < 100_000
    assert 95e6 < big.num_params() < 110e6
    shapes = jax.eval_shape(
        lambda: tf.Transformer(big).init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))
    )
    assert sum(x.size for x in jax.tree.leaves(shapes)) == big.num_params()


@pytest.mark.parametrize("options", [{}, {"norm": "peri", "qk_layernorm": True}])
def test_causal_masking(options):
    cfg = tf.TransformerConfig(**{**TINY, **options})
    model, params = _init(cfg)
    tokens = _tokens((2, 8))
    base = model.apply(params, tokens)
    for t in (0, 3, 7):
        changed = tokens.at[:, t].set((tokens[:, t] + 7) % cfg.vocab_size)
        out = model.apply(params, changed)
        np.testing.assert_array_equal(out[:, :t], base[:, :t])  # exactly unchanged before t
        assert float(jnp.max(jnp.abs(out[:, t] - base[:, t]))) > 1e-4  # and changed at t


def _scale_qk(params, factor):
    """Multiplies the query and key columns of every block's qkv projection."""

    def scale(path, x):
        names = [getattr(k, "key", "") for k in path]
        if "qkv" in names:
            d = x.shape[-1] // 3
            return x.at[..., : 2 * d].multiply(factor)
        return x

    return jax.tree_util.tree_map_with_path(scale, params)


def test_qk_layernorm_makes_attention_invariant_to_qk_scale():
    tokens = _tokens((2, 8))
    deltas = {}
    for qk_ln in (False, True):
        cfg = tf.TransformerConfig(**TINY, qk_layernorm=qk_ln)
        model, params = _init(cfg)
        if qk_ln:
            names = str(jax.tree_util.tree_structure(params))
            assert "q_norm" in names and "k_norm" in names
        base = model.apply(params, tokens)
        scaled = model.apply(_scale_qk(params, 30.0), tokens)
        deltas[qk_ln] = float(jnp.max(jnp.abs(scaled - base)))
    # Without qk-layernorm the attention logits grow 900x (towards one-hot attention);
    # with it, LayerNorm(c·q) = LayerNorm(q) up to its epsilon.
    assert deltas[True] < 1e-3
    assert deltas[False] > 1e-2


def _scale_mlp_output(params, factor):
    def scale(path, x):
        names = [getattr(k, "key", "") for k in path]
        return x * factor if "proj" in names else x

    return jax.tree_util.tree_map_with_path(scale, params)


def test_peri_ln_normalises_sublayer_outputs():
    tokens = _tokens((2, 8))
    deltas = {}
    for norm in ("pre", "peri"):
        cfg = tf.TransformerConfig(**TINY, norm=norm)
        model, params = _init(cfg)
        names = str(jax.tree_util.tree_structure(params))
        assert ("mlp_norm_out" in names) == (norm == "peri")
        assert ("embed_norm" in names) == (norm == "peri")
        base = model.apply(params, tokens)
        scaled = model.apply(_scale_mlp_output(params, 100.0), tokens)
        deltas[norm] = float(jnp.max(jnp.abs(scaled - base)))
    # Peri-LN: x + LN(F(LN(x))) does not see the scale of F's output; Pre-LN does.
    assert deltas["peri"] < 1e-3
    assert deltas["pre"] > 1e-1


def test_lm_loss_without_z_loss_is_cross_entropy():
    logits = jax.random.normal(jax.random.key(0), (2, 3, 7)) * 3
    targets = jnp.array([[0, 1, 6], [3, 3, 2]])
    loss, aux = tf.lm_loss(logits, targets)
    want = optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()
    np.testing.assert_allclose(loss, want, rtol=1e-6)
    np.testing.assert_allclose(aux["ce"], want, rtol=1e-6)


def test_lm_loss_z_loss_closed_form():
    # Two tokens, vocab 2: logits (0, 0) -> log Z = log 2; logits (log 3, 0) -> log Z = log 4.
    logits = jnp.array([[0.0, 0.0], [np.log(3.0), 0.0]])
    targets = jnp.array([1, 0])
    alpha = 1e-4
    loss, aux = tf.lm_loss(logits, targets, z_loss=alpha)
    ce = (np.log(2.0) + (np.log(4.0) - np.log(3.0))) / 2
    z = (np.log(2.0) ** 2 + np.log(4.0) ** 2) / 2
    np.testing.assert_allclose(loss, ce + alpha * z, rtol=1e-6)
    np.testing.assert_allclose(aux["ce"], ce, rtol=1e-6)
    np.testing.assert_allclose(aux["log_z"], (np.log(2.0) + np.log(4.0)) / 2, rtol=1e-6)
    # The z-loss gradient pulls log Z towards 0: d/dz_j α log²Z = 2α log Z softmax_j.
    g_with = jax.grad(lambda z: tf.lm_loss(z, targets, z_loss=alpha)[0])(logits)
    g_without = jax.grad(lambda z: tf.lm_loss(z, targets)[0])(logits)
    log_z = jax.nn.logsumexp(logits, axis=-1, keepdims=True)
    want = 2 * alpha * log_z * jax.nn.softmax(logits) / 2
    np.testing.assert_allclose(g_with - g_without, want, rtol=1e-4, atol=1e-9)


def test_lm_loss_mask():
    logits = jax.random.normal(jax.random.key(0), (4, 5))
    targets = jnp.array([0, 1, 2, 3])
    mask = jnp.array([1.0, 1.0, 0.0, 0.0])
    loss, _ = tf.lm_loss(logits, targets, mask=mask)
    want, _ = tf.lm_loss(logits[:2], targets[:2])
    np.testing.assert_allclose(loss, want, rtol=1e-6)


def test_bf16_computation():
    cfg = tf.TransformerConfig(**TINY, dtype=jnp.bfloat16, qk_layernorm=True)
    model, params = _init(cfg)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))
    logits = model.apply(params, _tokens((2, 8)))
    assert logits.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(logits)))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"d_model": 30, "num_heads": 4}, "num_heads"),
        ({"num_layers": 0}, "num_layers"),
        ({"norm": "post"}, "norm"),
        ({"vocab_size": -1}, "vocab_size"),
    ],
)
def test_bad_config_raises(kwargs, name):
    with pytest.raises(ValueError, match=name):
        tf.TransformerConfig(**{**TINY, **kwargs})


def test_too_long_sequence_raises():
    model, params = _init(tf.TransformerConfig(**TINY))
    with pytest.raises(ValueError, match="max_len"):
        model.apply(params, jnp.zeros((1, 9), jnp.int32))


def _unigram_model(train, **options):
    prior = tuple(text.unigram_log_prior(train).tolist())
    cfg = tf.TransformerConfig(vocab_size=text.VOCAB_SIZE, max_len=16, d_model=16,
                               num_layers=1, num_heads=2, head_bias_init=prior, **options)
    return _init(cfg, length=16)


def test_head_bias_init_gives_the_unigram_entropy_as_initial_loss():
    data = text.load_text(None, num_bytes=20_000, key=0)
    model, params = _unigram_model(data.train)
    batch = next(text.eval_batches(data.train, 64, 16, 1))
    # With the head kernel zeroed the logits are the bias alone: the loss is the
    # cross-entropy of the batch's bytes under the smoothed unigram prior.
    head_only = jax.tree.map(lambda x: x, params)
    head_only["params"]["head"]["kernel"] = jnp.zeros_like(params["params"]["head"]["kernel"])
    loss0 = float(tf.lm_loss(model.apply(head_only, batch["inputs"]), batch["targets"])[0])
    prior = text.unigram_log_prior(data.train)
    log_q = prior - np.log(np.sum(np.exp(prior)))
    expected = -np.mean(log_q[np.asarray(batch["targets"]).ravel()])
    assert loss0 == pytest.approx(expected, rel=1e-5)
    # With the real init, the initial loss on the training data is the unigram entropy
    # (up to the small random head), far below the uniform log 256 of a zero bias.
    entropy = text.unigram_entropy(data.train)
    loss = float(tf.lm_loss(model.apply(params, batch["inputs"]), batch["targets"])[0])
    assert abs(loss - entropy) < 0.05 * entropy
    zero_model, zero_params = _init(dataclasses.replace(model.module.config, head_bias_init=None),
                                    length=16)
    zero_loss = float(tf.lm_loss(zero_model.apply(zero_params, batch["inputs"]),
                                 batch["targets"])[0])
    assert zero_loss == pytest.approx(np.log(256), abs=0.05)


def test_head_bias_init_is_validated():
    with pytest.raises(TypeError, match="head_bias_init"):
        tf.TransformerConfig(**TINY, head_bias_init=[0.0] * 50)
    with pytest.raises(ValueError, match="head_bias_init"):
        tf.TransformerConfig(**TINY, head_bias_init=(0.0,) * 49)
    with pytest.raises(ValueError, match="use_bias"):
        tf.TransformerConfig(**TINY, head_bias_init=(0.0,) * 50, use_bias=False)


def test_common_direction_share_closed_form():
    same = jnp.tile(jnp.array([3.0, 4.0]), (2, 5, 1))
    assert float(tf.common_direction_share(same)) == pytest.approx(1.0)
    centred = jnp.array([[1.0, 2.0], [-1.0, -2.0]])
    assert float(tf.common_direction_share(centred)) == pytest.approx(0.0)
    # mean (1, 1): |mean|² = 2; |h|² = 5 and 1: mean 3.
    h = jnp.array([[2.0, 1.0], [0.0, 1.0]])
    assert float(tf.common_direction_share(h)) == pytest.approx(2.0 / 3.0)


def test_residual_stream_is_sown_only_when_asked():
    model, params = _init(tf.TransformerConfig(**TINY))
    tokens = _tokens((2, 8))
    logits, inter = model.module.apply(params, tokens, mutable=["intermediates"])
    (residual,) = inter["intermediates"]["residual"]
    assert residual.shape == (2, 8, 16)
    np.testing.assert_allclose(logits, model.apply(params, tokens), rtol=1e-5, atol=1e-6)


def test_mingru_lm_head_bias_init():
    prior = tuple(float(v) for v in np.linspace(-1.0, 1.0, 50))
    model = MinGRULM(vocab_size=50, features=8, depth=1, head_bias_init=prior)
    tokens = jnp.zeros((1, 4), jnp.int32)
    params = jax.jit(model.init)(jax.random.key(0), tokens)
    np.testing.assert_allclose(params["params"]["head"]["bias"], prior, rtol=1e-6)
    zero = jax.jit(MinGRULM(vocab_size=50, features=8, depth=1).init)(jax.random.key(0), tokens)
    np.testing.assert_array_equal(zero["params"]["head"]["bias"], np.zeros(50))
