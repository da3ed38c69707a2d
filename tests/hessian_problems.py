# SPDX-License-Identifier: Apache-2.0
"""Tiny problems shared by the tests of gradkit.hessian (exact Hessians, softmax models)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

N_DEV = 8  # tests/conftest.py's virtual devices

# --- A 2-layer tanh regression net with an exact Hessian --------------------------------


def regression_problem(seed: int = 0, batch: int = 16):
    """A 2-layer tanh regression net (3 → 4 → 2, with a bias: 22 parameters)."""
    k = jax.random.split(jax.random.key(seed), 5)
    x = jax.random.normal(k[0], (batch, 3))
    y = jax.random.normal(k[1], (batch, 2))
    params = {"w1": 0.7 * jax.random.normal(k[2], (3, 4)), "b1": 0.1 * jnp.ones(4),
              "w2": 0.7 * jax.random.normal(k[3], (4, 2))}
    return params, x, y


def regression_loss(params, x, y):
    return jnp.mean((jnp.tanh(x @ params["w1"] + params["b1"]) @ params["w2"] - y) ** 2)


@functools.partial(jax.jit, static_argnums=0)
def _hessian_jit(loss, params, *extra):
    flat, unravel = ravel_pytree(params)
    return jax.hessian(lambda f: loss(unravel(f), *extra))(flat)


def exact_hessian(loss, params, *extra) -> np.ndarray:
    """The dense Hessian of `loss` in the flat (ravel_pytree) coordinates, float64."""
    return np.asarray(_hessian_jit(loss, params, *extra), np.float64)


def flat(tree) -> np.ndarray:
    return np.asarray(ravel_pytree(tree)[0], np.float64)


def rows(vectors) -> np.ndarray:
    """Eigenvector pytree with leading axis k -> [k, n] float64 rows."""
    return np.stack([flat(jax.tree.map(lambda a, i=i: a[i], vectors))
                     for i in range(jax.tree.leaves(vectors)[0].shape[0])])


def replicate(tree, n: int = N_DEV):
    return jax.tree.map(lambda a: jnp.broadcast_to(a, (n, *a.shape)), tree)


# --- A linear softmax classifier (Sophia and its estimators) ----------------------------


def spd(n: int, seed: int) -> jax.Array:
    a = jax.random.normal(jax.random.key(seed), (n, n))
    return a @ a.T / n + jnp.eye(n)


def softmax_problem(seed: int = 0, batch: int = 16, dim: int = 4, classes: int = 3):
    kx, ky, kw = jax.random.split(jax.random.key(seed), 3)
    x = jax.random.normal(kx, (batch, dim))
    y = jax.random.randint(ky, (batch,), 0, classes)
    params = {"w": 0.5 * jax.random.normal(kw, (dim, classes)), "b": jnp.zeros(classes)}
    return x, y, params


def logits(params, x):
    return x @ params["w"] + params["b"]


def ce(params, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(logits(params, x), y).mean()
