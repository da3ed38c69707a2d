# SPDX-License-Identifier: Apache-2.0
"""gradkit.models.modular: the grokking paper's reference MLP and transformer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gradkit.models.modular import GrokkingMLP
from gradkit.models.modular import GrokkingTransformer


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
