# SPDX-License-Identifier: Apache-2.0
"""Shared timing helpers for the benchmarks: median wall time of a jitted step."""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax


def params_of_size(num_params: int, width: int = 1024, seed: int = 0) -> dict[str, jax.Array]:
    """A pytree of `width`-wide float32 matrices holding about `num_params` values."""
    rows = max(1, num_params // (width * width))
    keys = jax.random.split(jax.random.key(seed), rows)
    return {f"layer_{i}": jax.random.normal(k, (width, width)) for i, k in enumerate(keys)}


def transformer_like_params(size: int) -> dict[str, Any]:
    """Four transformer-like blocks, 12·d² + 6·d values each, ~``size`` values in total:
    ``mlp_in`` (d×4d), ``mlp_out`` (4d×d), ``attn_q/k/v/o`` (d×d), ``bias`` (4d) and
    ``scale`` (2d) per block, d = max(8, ⌊√(size/48)⌋)."""
    d = max(8, int(math.sqrt(size / 48)))
    key = jax.random.key(0)
    params = {}
    for i in range(4):
        keys = jax.random.split(jax.random.fold_in(key, i), 6)
        params[f"block{i}"] = {
            "mlp_in": 0.02 * jax.random.normal(keys[0], (d, 4 * d)),
            "mlp_out": 0.02 * jax.random.normal(keys[1], (4 * d, d)),
            **{f"attn_{n}": 0.02 * jax.random.normal(keys[2 + j], (d, d))
               for j, n in enumerate("qkvo")},
            "bias": jnp.zeros(4 * d),
            "scale": jnp.ones(2 * d),
        }
    return params


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


def compiled_stats(jitted: Any, *args: Any) -> dict[str, int]:
    """Temp (scratch) bytes, fusion and copy counts of ``jitted`` compiled for ``args``.

    From ``jitted.lower(*args).compile()``: ``memory_analysis().temp_size_in_bytes`` (the
    scratch XLA allocates per call, including what untaken ``lax.cond`` branches would
    need) and, in the optimised HLO text, the number of ``fusion`` and ``copy``
    instructions in all computations, and of copies in the entry computation alone
    (those run every call; copies inside a conditional's branch run only when that
    branch is taken; a copy of a loop-carried buffer is the usual sign of an in-place
    update XLA could not order).
    """
    return compiled_program_stats(jitted.lower(*args).compile())


def compiled_program_stats(compiled: Any) -> dict[str, int]:
    """:func:`compiled_stats` of an already compiled program (``jax.stages.Compiled``)."""
    memory = compiled.memory_analysis()
    temp = int(getattr(memory, "temp_size_in_bytes", -1)) if memory is not None else -1
    text = compiled.as_text()
    pattern = r"=\s*(?:\([^=]*?\)|[^\s(]+)\s+([\w-]+)\("
    ops = re.findall(pattern, text)
    entry = re.findall(pattern, text.split("\nENTRY", 1)[-1].split("\n}", 1)[0])
    return {
        "temp_bytes": temp,
        "fusions": sum(op == "fusion" for op in ops),
        "copies": sum(op in ("copy", "copy-start") for op in ops),
        "entry_copies": sum(op in ("copy", "copy-start") for op in entry),
    }


def interleaved_medians(steps: dict[str, Callable[[Any], Any]], carries: dict[str, Any],
                        rounds: int = 20, warmup: int = 2,
                        prepare: dict[str, Callable[[Any], Any]] | None = None,
                        ) -> dict[str, float]:
    """Median seconds of ``carry = steps[name](carry)`` per candidate, interleaved.

    Every round runs each candidate once, in an order rotated from round to round, so a
    change in machine load hits all candidates alike (timing candidates one after
    another lets a load spike land on one of them). ``carries`` holds each candidate's
    initial carry (e.g. ``(params, state)``, donated by the step); it is consumed.
    ``prepare[name](carry)``, if given, runs untimed before each of that candidate's
    steps (e.g. to make the next gradients).
    """
    prepare = prepare or {}
    names = list(steps)
    carries = dict(carries)
    for name in names:
        for _ in range(warmup):
            carries[name] = jax.block_until_ready(steps[name](carries[name]))
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            if name in prepare:
                carries[name] = jax.block_until_ready(prepare[name](carries[name]))
            start = time.perf_counter()
            carries[name] = jax.block_until_ready(steps[name](carries[name]))
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}
