# SPDX-License-Identifier: Apache-2.0
"""gradkit.data.modular: the a ∘ b mod p data sets."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from gradkit.data.modular import all_pairs
from gradkit.data.modular import modular_arithmetic


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
