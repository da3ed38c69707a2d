# SPDX-License-Identifier: Apache-2.0
"""How many bytes an optimizer state (any pytree of arrays) holds."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp


def state_bytes(tree: Any) -> int:
    """Bytes held by the arrays of `tree` (e.g. an optimizer state): size × item size per
    leaf (a typed PRNG key's item size is that of its key data).

    Leaves may be arrays, scalars or ``jax.ShapeDtypeStruct`` (so
    ``state_bytes(jax.eval_shape(opt.init, params))`` sizes a state without allocating it).
    """
    total = 0
    for leaf in jax.tree.leaves(tree):
        if not hasattr(leaf, "dtype"):
            leaf = jnp.asarray(leaf)
        total += math.prod(leaf.shape) * leaf.dtype.itemsize
    return int(total)
