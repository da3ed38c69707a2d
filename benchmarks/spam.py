r"""SPAM / Stable-SPAM update cost and state memory vs optax.adamw, in one process.

Times one jitted optimizer step (``opt.update`` + ``optax.apply_updates``, params and
state donated) on a ~10M-parameter pytree of transformer-like matrices and vectors,
and reports the ratio to ``optax.adamw`` measured in the same run, plus optimizer
state bytes per parameter (sparse momentum at density 0.25 stores m, v and int32
indices for a quarter of each matrix's entries).

    PYTHONPATH=. python benchmarks/spam.py            # ~10M params
    PYTHONPATH=. python benchmarks/spam.py --scale 0.1  # quick
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import optax

import gradkit


def make_params(scale: float) -> dict:
    """Four blocks of (d×4d, 4d×d, d×d) matrices plus vectors; d=512 gives ~10.5M."""
    d = max(8, int(512 * scale**0.5))
    key = jax.random.key(0)
    params = {}
    for i in range(4):
        key, k1, k2, k3 = jax.random.split(key, 4)
        params[f"block{i}"] = {
            "mlp_in": jax.random.normal(k1, (d, 4 * d)) * 0.02,
            "mlp_out": jax.random.normal(k2, (4 * d, d)) * 0.02,
            "attn": jax.random.normal(k3, (d, d)) * 0.02,
            "attn2": jax.random.normal(k3, (d, d)) * 0.01,
            "bias": jnp.zeros(4 * d),
            "scale": jnp.ones(d),
        }
    return params


def num_params(tree) -> int:
    return sum(x.size for x in jax.tree.leaves(tree))


def state_bytes(state) -> int:
    return sum(x.nbytes for x in jax.tree.leaves(state))


def time_step(opt, params, iters: int) -> float:
    state = opt.init(params)
    grads = jax.tree.map(lambda x: jnp.full_like(x, 1e-3), params)

    def step(params, state, grads):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    step = jax.jit(step, donate_argnums=(0, 1))
    params = jax.tree.map(jnp.copy, params)
    for _ in range(3):
        params, state = step(params, state, grads)
    jax.block_until_ready((params, state))
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        params, state = step(params, state, grads)
        jax.block_until_ready((params, state))
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--iters", type=int, default=20)
    args = parser.parse_args()
    params = make_params(args.scale)
    n = num_params(params)
    candidates = {
        "optax.adamw": optax.adamw(1e-3, weight_decay=0.0),
        "gradkit.spam": gradkit.spam(1e-3),
        "gradkit.spam(density=0.25)": gradkit.spam(1e-3, density=0.25),
        "gradkit.stable_spam": gradkit.stable_spam(1e-3, total_steps=10_000),
        "clip_spikes + adamw": optax.chain(gradkit.clip_spikes(),
                                           optax.adamw(1e-3, weight_decay=0.0)),
    }
    results = {}
    for name, opt in candidates.items():
        results[name] = (time_step(opt, params, args.iters),
                         state_bytes(opt.init(params)) / n)
    base = results["optax.adamw"][0]
    print(f"{n / 1e6:.2f}M parameters, {jax.devices()[0].device_kind}, "
          f"median of {args.iters} jitted steps\n")
    print("| optimizer | step time (ms) | ratio vs optax.adamw | state bytes / param |")
    print("|---|---|---|---|")
    for name, (t, b) in results.items():
        print(f"| {name} | {1e3 * t:.2f} | {t / base:.2f} | {b:.2f} |")


if __name__ == "__main__":
    main()
