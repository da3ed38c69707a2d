"""Modular arithmetic data and the paper's reference models."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradkit.data.modular import all_pairs
from gradkit.data.modular import modular_arithmetic
from gradkit.models.modular import GrokkingMLP
from gradkit.models.modular import GrokkingTransformer


def test_paper_split_sizes_and_determinism():
    data = modular_arithmetic(113, "+", 0.4, key=0)
    assert data.x_train.shape == (5107, 2) and data.x_test.shape == (7662, 2)
    assert data.x_train.dtype == np.int32 and data.y_train.dtype == np.int32
    again = modular_arithmetic(113, "+", 0.4, key=0)
    np.testing.assert_array_equal(data.x_train, again.x_train)
    other = modular_arithmetic(113, "+", 0.4, key=1)
    assert not np.array_equal(data.x_train, other.x_train)
    # Train and test partition all pairs.
    both = np.concatenate([data.x_train, data.x_test])
    assert len({tuple(r) for r in both}) == 113 * 113


def test_split_key_is_an_int_or_a_jax_key():
    typed = modular_arithmetic(13, "+", 0.4, key=jax.random.key(5))
    raw = modular_arithmetic(13, "+", 0.4, key=jax.random.key_data(jax.random.key(5)))
    np.testing.assert_array_equal(typed.x_train, raw.x_train)
    other = modular_arithmetic(13, "+", 0.4, key=jax.random.key(6))
    assert not np.array_equal(typed.x_train, other.x_train)
    with pytest.raises(TypeError, match="`key`"):
        modular_arithmetic(13, "+", 0.4, key="5")


@pytest.mark.parametrize("op,fn", [
    ("+", lambda a, b, p: (a + b) % p),
    ("-", lambda a, b, p: (a - b) % p),
    ("*", lambda a, b, p: (a * b) % p),
    ("/", lambda a, b, p: (a * pow(b, p - 2, p)) % p),
])
def test_labels(op, fn):
    p = 13
    x, y = all_pairs(p, op)
    assert len(x) == (p * (p - 1) if op == "/" else p * p)
    for (a, b), label in zip(x, y, strict=True):
        assert label == fn(int(a), int(b), p)
    if op == "/":
        assert np.all(x[:, 1] != 0)
        # Division inverts multiplication: (a / b) * b == a.
        np.testing.assert_array_equal((y * x[:, 1]) % p, x[:, 0])


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="op"):
        modular_arithmetic(7, "^")
    with pytest.raises(ValueError, match="prime"):
        modular_arithmetic(8, "/")
    with pytest.raises(ValueError, match="train_fraction"):
        modular_arithmetic(7, "+", 1.0)
    with pytest.raises(ValueError, match="p"):
        modular_arithmetic(0, "+")


def test_mlp_matches_paper_architecture():
    pairs = jnp.zeros((3, 2), jnp.int32)
    params = jax.eval_shape(GrokkingMLP().init, jax.random.key(0), pairs)["params"]
    shapes = {k: v["kernel"].shape for k, v in params.items()}
    assert shapes == {"layers_0": (226, 200), "layers_1": (200, 200), "layers_2": (200, 113)}
    assert sum(x.size for x in jax.tree.leaves(params)) == 107_800  # no biases
    emb = jax.eval_shape(GrokkingMLP(use_embedding=True).init, jax.random.key(0), pairs)["params"]
    assert emb["Embed_0"]["embedding"].shape == (113, 113)


def test_mlp_forward_and_torch_like_init():
    model = GrokkingMLP(num_tokens=7, num_classes=7, hidden_sizes=(16,))
    pairs = jnp.array([[1, 2], [3, 4]], jnp.int32)
    params = jax.jit(model.init)(jax.random.key(0), pairs)
    kernel = params["params"]["layers_0"]["kernel"]
    assert float(jnp.max(jnp.abs(kernel))) <= 1 / np.sqrt(14)
    # One-hot input: the first layer's pre-activations are sums of two kernel rows.
    h = jax.nn.relu(kernel[1] + kernel[7 + 2])
    expected = h @ params["params"]["layers_1"]["kernel"]
    np.testing.assert_allclose(model.apply(params, pairs)[0], expected, rtol=1e-5, atol=1e-6)


def test_transformer_shapes_and_dropout():
    model = GrokkingTransformer(num_tokens=11, num_classes=11, d_model=16, num_heads=4,
                        dim_feedforward=32)
    pairs = jnp.array([[1, 2], [3, 4], [5, 6]], jnp.int32)
    params = jax.jit(model.init)(jax.random.key(0), pairs)
    out = jax.jit(model.apply)(params, pairs)
    assert out.shape == (3, 11) and bool(jnp.all(jnp.isfinite(out)))
    train = jax.jit(lambda q, x, k: model.apply(q, x, deterministic=False,
                                                rngs={"dropout": k}))(
        params, pairs, jax.random.key(1))
    assert not np.allclose(train, out)
