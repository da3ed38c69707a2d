# SPDX-License-Identifier: Apache-2.0
"""The optional spike count (`num_clipped`), shared by the spikes family.

Off by default (``count_interval=None``): the state then has ``num_clipped=None``, no
array. On, it is an int32 scalar: the entries clipped at the last counted step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from gradkit import _common


def check_count_interval(value: Any) -> int | None:
    """None (no count) or a positive integer, as a Python int.

    It decides whether the state has a ``num_clipped`` field, so it must be static
    (``static_args`` under ``optax.inject_hyperparams``).
    """
    if value is None:
        return None
    return _common.static_int("count_interval", value, low=1)


def initial_count(count_interval: int | None) -> jax.Array | None:
    """``num_clipped`` in a fresh state: 0 when counting, None (absent) otherwise."""
    return None if count_interval is None else jnp.zeros([], jnp.int32)


def num_clipped(count_interval: int | None, count: jax.Array, previous: jax.Array | None,
                spike_masks: Callable[[], list[jax.Array]]) -> jax.Array | None:
    """``num_clipped`` after update `count` (1-based).

    Counted at the updates with ``count % count_interval == 0`` (every update for 1),
    the last count kept in between; None when `count_interval` is None.
    ``spike_masks`` returns the boolean spike masks of this update.
    """
    if count_interval is None:
        return None

    def total():
        return sum((jnp.sum(m, dtype=jnp.int32) for m in spike_masks()),
                   jnp.zeros([], jnp.int32))

    if count_interval == 1:
        return total()
    return jax.lax.cond(count % count_interval == 0, total, lambda: previous)
