# SPDX-License-Identifier: Apache-2.0
"""gradkit.models.mlp.MLP, the one MLP definition, and the models built on it."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradkit.models.mlp import MLP
from gradkit.models.mlp import MLPClassifier
from gradkit.models.mlp import dense_layers
from gradkit.models.policy import MLPPolicy


def _manual(params, x, activation):
    """The same network written out by hand from the parameter tree."""
    layers = [params[f"Dense_{i}"] for i in range(len(params))]
    for i, layer in enumerate(layers):
        x = x @ layer["kernel"] + layer.get("bias", 0.0)
        x = activation(x) if i < len(layers) - 1 else x
    return x


def test_forward_matches_a_hand_written_mlp_and_names_layers_in_order():
    x = jax.random.normal(jax.random.key(1), (5, 3))
    model = MLP((4, 6, 2), activation=jnp.tanh)
    params = model.init(jax.random.key(0), x)["params"]
    assert {k: v["kernel"].shape for k, v in params.items()} == {
        "Dense_0": (3, 4), "Dense_1": (4, 6), "Dense_2": (6, 2)}
    np.testing.assert_allclose(model.apply({"params": params}, x),
                               _manual(params, x, jnp.tanh), rtol=1e-5, atol=1e-6)
    # No activation after the last layer: a linear head can output negative values.
    assert float(jnp.min(model.apply({"params": params}, 10 * x))) < -1.0


def test_torch_init_is_uniform_within_one_over_sqrt_fan_in_and_bias_free_option():
    model = MLP((64, 8), weight_init="torch", use_bias=True)
    params = model.init(jax.random.key(0), jnp.zeros((1, 100)))["params"]
    for name, fan_in in (("Dense_0", 100), ("Dense_1", 64)):
        for leaf in ("kernel", "bias"):
            v = params[name][leaf]
            bound = 1 / np.sqrt(fan_in)
            assert float(jnp.max(jnp.abs(v))) <= bound
            assert float(jnp.max(jnp.abs(v))) > 0.8 * bound  # uniform, not a narrow normal
    flax_default = MLP((64, 8)).init(jax.random.key(0), jnp.zeros((1, 100)))["params"]
    assert float(jnp.max(jnp.abs(flax_default["Dense_0"]["bias"]))) == 0.0
    no_bias = MLP((4,), use_bias=False).init(jax.random.key(0), jnp.zeros((1, 3)))["params"]
    assert set(no_bias["Dense_0"]) == {"kernel"}


@pytest.mark.parametrize("kwargs,match", [
    (dict(features=()), "features"),
    (dict(features=(4, 0)), "features"),
    (dict(features=(4,), weight_init="kaiming"), "weight_init"),
])
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP(**kwargs).init(jax.random.key(0), jnp.zeros((1, 3)))


class _TwoHeads(nn.Module):
    """dense_layers inside another module: its layers are that module's children."""

    @nn.compact
    def __call__(self, x):
        a = dense_layers(x, (4, 2), names=("hidden", "head"))
        return a + dense_layers(x, (3, 2))


def test_dense_layers_live_in_the_calling_module_with_the_given_names():
    x = jnp.ones((1, 5))
    params = _TwoHeads().init(jax.random.key(0), x)["params"]
    assert set(params) == {"hidden", "head", "Dense_0", "Dense_1"}
    assert params["head"]["kernel"].shape == (4, 2) and params["Dense_0"]["kernel"].shape == (5, 3)
    with pytest.raises(ValueError, match="names"):
        _BadNames().init(jax.random.key(0), x)


class _BadNames(nn.Module):
    @nn.compact
    def __call__(self, x):
        return dense_layers(x, (4, 2), names=("only_one",))


def test_classifier_and_policy_are_mlps():
    x = jnp.ones((2, 5))
    clf = MLPClassifier(hidden=7, classes=3, activation=nn.relu)
    assert isinstance(clf, MLP) and tuple(clf.features) == (7, 7, 3)
    policy = MLPPolicy(action_dim=2, hidden=(8,))
    params = policy.init(jax.random.key(0), x)["params"]
    logits = policy.apply({"params": params}, x)
    np.testing.assert_allclose(logits, _manual(params, x, jnp.tanh), rtol=1e-6)
    assert policy.apply({"params": params}, x, method=MLPPolicy.act).shape == (2,)
    cont = MLPPolicy(action_dim=1, hidden=(8,), continuous=True, action_scale=2.0)
    out = cont.apply(cont.init(jax.random.key(0), x), 100 * x)
    assert float(jnp.max(jnp.abs(out))) <= 2.0
