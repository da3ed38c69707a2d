"""Shared timing helpers for the benchmarks: median wall time of a jitted step."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import optax


def params_of_size(num_params: int, width: int = 1024, seed: int = 0) -> dict[str, jax.Array]:
    """A pytree of `width`-wide float32 matrices holding about `num_params` values."""
    rows = max(1, num_params // (width * width))
    keys = jax.random.split(jax.random.key(seed), rows)
    return {f"layer_{i}": jax.random.normal(k, (width, width)) for i, k in enumerate(keys)}


def median_seconds(fn: Callable[..., Any], *args: Any, repeats: int = 20) -> float:
    """Median wall time of `fn(*args)` after one warm-up (compile) call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def update_seconds(opt: optax.GradientTransformation, params: Any, repeats: int = 20,
                   **extra_args: Any) -> float:
    """Median time of one jitted `update` + `apply_updates` on `params`."""
    grads = jax.tree.map(lambda x: 1e-3 * x, params)

    @jax.jit
    def step(params, state):
        updates, state = opt.update(grads, state, params, **extra_args)
        return optax.apply_updates(params, updates), state

    return median_seconds(step, params, opt.init(params), repeats=repeats)


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
