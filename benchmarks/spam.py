# SPDX-License-Identifier: Apache-2.0
r"""SPAM / Stable-SPAM update cost, scratch memory and state vs optax.adamw, in one process.

Times one jitted optimizer step (``opt.update`` + ``optax.apply_updates``, params and
state donated) on a ~10.5M-parameter pytree of transformer-like matrices and vectors,
and one whole train step (gradient of a residual MLP stack built from those params on
``--batch`` rows, then the optimizer step).
Candidates are interleaved round by round (``benchmarks.timing.interleaved_medians``)
and the table gives each one's median step time, its ratio to ``optax.adamw`` measured
in the same run, the optimizer state bytes per parameter, and from the compiled step
(``jax.jit(step).lower(...).compile()``) the scratch bytes XLA allocates per call and
the numbers of fusions and copies in the optimised HLO.

Gradients are fixed random normals (1e-3·N(0, 1), an argument of the step): the steady
state, where Stable-SPAM clips nothing; for the "growing" rows they are multiplied by
1.01 before every step (untimed), so max|g| exceeds Stable-SPAM's EMA of it at every
step and it clips at every step.

    PYTHONPATH=. python -m benchmarks.spam                 # ~10.5M params, 30 rounds
    PYTHONPATH=. python -m benchmarks.spam --scale 0.1     # quick
    PYTHONPATH=. python -m benchmarks.spam --batch 0       # optimizer step only
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import optax

import gradkit
from benchmarks import timing


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


def model_loss(params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    """Squared error of a residual stack: per block an MLP (d→4d→d) and two d×d maps."""
    for block in params.values():
        x = x + jnp.tanh(x @ block["mlp_in"] + block["bias"]) @ block["mlp_out"]
        x = (x + (x @ block["attn"]) @ block["attn2"]) * block["scale"]
    return jnp.mean((x - y) ** 2)


def candidates() -> dict[str, tuple[optax.GradientTransformation, bool]]:
    """name → (optimizer, growing gradients)."""
    adamw = optax.adamw(1e-3, weight_decay=0.0)
    return {
        "optax.adamw": (adamw, False),
        "gradkit.spam": (gradkit.spam(1e-3), False),
        "gradkit.spam(count_interval=100)": (gradkit.spam(1e-3, count_interval=100), False),
        "gradkit.spam(count_interval=1)": (gradkit.spam(1e-3, count_interval=1), False),
        "gradkit.spam(density=0.25)": (gradkit.spam(1e-3, density=0.25), False),
        "gradkit.stable_spam": (gradkit.stable_spam(1e-3, total_steps=10_000), False),
        "gradkit.stable_spam, growing": (gradkit.stable_spam(1e-3, total_steps=10_000), True),
        "gradkit.stable_spam(count_interval=1), growing": (
            gradkit.stable_spam(1e-3, total_steps=10_000, count_interval=1), True),
        "clip_spikes + adamw": (optax.chain(gradkit.clip_spikes(), adamw), False),
    }


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--iters", type=int, default=30, help="interleaved rounds")
    parser.add_argument("--only", default="", help="semicolon-separated candidate names")
    parser.add_argument("--batch", type=int, default=256,
                        help="rows of the whole train step (0: optimizer step only)")
    args = parser.parse_args(argv)
    params = make_params(args.scale)
    n = num_params(params)
    keys = jax.random.split(jax.random.key(1), len(jax.tree.leaves(params)))
    grads = jax.tree.unflatten(jax.tree.structure(params), [
        1e-3 * jax.random.normal(k, x.shape) for k, x in zip(keys, jax.tree.leaves(params),
                                                             strict=True)])
    chosen = candidates()
    if args.only:
        wanted = ["optax.adamw", *args.only.split(";")]
        chosen = {k: v for k, v in chosen.items() if k in wanted}

    steps, carries, stats, state_b, prepare = {}, {}, {}, {}, {}
    grow = jax.jit(lambda g: jax.tree.map(lambda x: 1.01 * x, g))
    for name, (opt, growing) in chosen.items():
        def step(params, state, grads, opt=opt):
            updates, state = opt.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        jitted = jax.jit(step, donate_argnums=(0, 1))
        state = opt.init(params)
        state_b[name] = gradkit.memory.state_bytes(state) / n
        stats[name] = timing.compiled_stats(jitted, params, state, grads)
        steps[name] = lambda c, jitted=jitted: (*jitted(*c[:2], c[2]), c[2])
        carries[name] = (jax.tree.map(jnp.copy, params), state, grads)
        if growing:  # untimed: g_t = 1.01^t g, so max|g| beats its EMA at every step
            prepare[name] = lambda c: (c[0], c[1], grow(c[2]))
    medians = timing.interleaved_medians(steps, carries, rounds=args.iters,
                                        prepare=prepare)
    train = train_step_medians(chosen, params, args) if args.batch > 0 else {}
    base = medians["optax.adamw"]
    print(f"{n / 1e6:.2f}M parameters, {jax.devices()[0].device_kind}, median of "
          f"{args.iters} interleaved rounds of one jitted step (update + apply, donated)"
          + (f"; train step: gradient on {args.batch} rows + update + apply" if train else "")
          + "\n")
    rows = []
    for name, t in medians.items():
        row = [name, f"{1e3 * t:.2f}", f"{t / base:.2f}"]
        if train:
            t_train = train.get(name)
            row += (["—", "—"] if t_train is None else
                    [f"{1e3 * t_train:.2f}", f"{t_train / train['optax.adamw']:.2f}"])
        rows.append([*row, f"{state_b[name]:.2f}", f"{stats[name]['temp_bytes'] / 2**20:.1f}",
                     stats[name]["fusions"],
                     f"{stats[name]['entry_copies']} / {stats[name]['copies']}"])
    train_header = ["train step (ms)", "× optax.adamw (train step)"] if train else []
    print(timing.markdown_table(
        ["optimizer", "step (ms)", "× optax.adamw", *train_header, "state bytes / param",
         "scratch MiB", "fusions", "copies (every step / all)"], rows))


def train_step_medians(chosen: dict, params: dict, args) -> dict[str, float]:
    """Median whole train step per candidate (the growing-gradient rows are skipped)."""
    d = params["block0"]["attn"].shape[0]
    kx, ky = jax.random.split(jax.random.key(2))
    x = jax.random.normal(kx, (args.batch, d))
    y = jax.random.normal(ky, (args.batch, d))
    steps, carries = {}, {}
    for name, (opt, growing) in chosen.items():
        if growing:
            continue

        def step(params, state, opt=opt):
            grads = jax.grad(model_loss)(params, x, y)
            updates, state = opt.update(grads, state, params)
            return optax.apply_updates(params, updates), state

        jitted = jax.jit(step, donate_argnums=(0, 1))
        steps[name] = lambda c, jitted=jitted: jitted(*c)
        carries[name] = (jax.tree.map(jnp.copy, params), opt.init(params))
    return timing.interleaved_medians(steps, carries, rounds=args.iters)


if __name__ == "__main__":
    main()
