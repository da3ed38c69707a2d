# SPDX-License-Identifier: Apache-2.0
"""Modular arithmetic data sets ``a ∘ b mod p`` (generated, nothing downloaded).

The task of grokking studies (Power et al., 2022, arXiv 2201.02177) as set up by
Prieto et al., "Grokking at the Edge of Numerical Stability" (2025, arXiv
2501.04697, §2; official ``datasets.py``): every pair (a, b) with a, b in [0, p)
(b ≠ 0 for division), label ``(a ∘ b) mod p``, and a random train/test split
with ``int(train_fraction · N)`` training pairs (p = 113, 40%: 5107 / 7662).
"""

from __future__ import annotations

from typing import Any
from typing import NamedTuple

import numpy as np

from gradkit import _common

OPS: dict[str, str] = {
    "+": "+", "add": "+", "add_mod": "+",
    "-": "-", "sub": "-", "subtract_mod": "-",
    "*": "*", "mul": "*", "product_mod": "*",
    "/": "/", "div": "/",
}


class ModularSplit(NamedTuple):
    """A train/test split of ``a ∘ b mod p``."""

    x_train: np.ndarray  # int32[n_train, 2], the operands (a, b).
    y_train: np.ndarray  # int32[n_train], (a ∘ b) mod p.
    x_test: np.ndarray  # int32[n_test, 2].
    y_test: np.ndarray  # int32[n_test].
    p: int  # The modulus (= number of classes and of input tokens).


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % k for k in range(2, int(n**0.5) + 1))


def all_pairs(p: int, op: str = "+") -> tuple[np.ndarray, np.ndarray]:
    """All operand pairs and labels of ``a op b mod p``, in row-major (a, b) order."""
    _common.check_positive_int("p", p)
    _common.check_choice("op", op, tuple(OPS))
    sym = OPS[op]
    if sym == "/" and not _is_prime(p):
        raise ValueError(f"`p` must be prime for division mod p, got {p}.")
    a, b = np.meshgrid(np.arange(p), np.arange(p), indexing="ij")
    a, b = a.reshape(-1), b.reshape(-1)
    if sym == "/":
        keep = b != 0
        a, b = a[keep], b[keep]
        inv = np.array([pow(int(v), -1, p) for v in range(1, p)])
        y = (a * inv[b - 1]) % p
    elif sym == "+":
        y = (a + b) % p
    elif sym == "-":
        y = (a - b) % p
    else:
        y = (a * b) % p
    return np.stack([a, b], axis=-1).astype(np.int32), y.astype(np.int32)


def modular_arithmetic(
    p: int = 113,
    op: str = "+",
    train_fraction: float = 0.4,
    key: Any = 0,
) -> ModularSplit:
    """``a op b mod p`` for op in ``+ - * /`` (or ``add sub mul div``), split at random.

    Args:
      p: modulus (prime required for ``/``); the paper uses 113.
      op: the operation: ``"+"``, ``"-"``, ``"*"``, ``"/"`` (a·b⁻¹) or their names.
      train_fraction: fraction of all pairs used for training, in (0, 1); the
        training set has ``int(train_fraction · N)`` pairs, as the official code.
      key: key of the random split: an int (NumPy ``default_rng``'s seed) or a
        ``jax.random.key`` (its key data seeds ``default_rng``).

    Returns:
      A :class:`ModularSplit` of int32 NumPy arrays. Feed the pairs to
      :class:`gradkit.models.modular.GrokkingMLP` (one-hot inputs built inside) or the
      transformer as tokens.

    Example:
      >>> from gradkit.data.modular import modular_arithmetic
      >>> data = modular_arithmetic(113, "+", 0.4, key=0)
      >>> data.x_train.shape, data.x_test.shape
      ((5107, 2), (7662, 2))
    """
    _common.check_interval("train_fraction", train_fraction, 0.0, 1.0,
                               low_closed=False, high_closed=False)
    x, y = all_pairs(p, op)
    n_train = int(train_fraction * len(x))
    if n_train < 1 or n_train >= len(x):
        raise ValueError(
            f"`train_fraction` = {train_fraction} leaves an empty train or test set "
            f"for {len(x)} pairs.")
    perm = np.random.default_rng(_common.numpy_seed(key)).permutation(len(x))
    tr, te = perm[:n_train], perm[n_train:]
    return ModularSplit(x[tr], y[tr], x[te], y[te], p)
