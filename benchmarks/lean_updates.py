r"""Update time and scratch of the elementwise/normalised gradkit updates vs their optax peers.

For each pair (gradkit method, nearest optax peer) on the ~4M-parameter GPT-like tree of
``benchmarks.timing.transformer_like_params``: the median wall time of one jitted ``opt.update`` +
``optax.apply_updates`` with params and state donated, as in a Flax training loop
(``--no_donate`` keeps them), the candidates interleaved round by round
(``benchmarks.timing.interleaved_medians``); the compiled step's scratch
(``memory_analysis().temp_size_in_bytes``); and the number of ``copy`` instructions in its
entry computation (a copy of a donated state buffer means XLA could not order that leaf's
last read before its write).

    python -m benchmarks.lean_updates                        # ~4M params, < 2 min CPU
    python -m benchmarks.lean_updates --only=lion,diffgrad --rounds=15

The EGGROLL row times the update only (a fixed fitness vector of 32 members); its peer is
``optax.sgd``, the official code's default outer optimizer.
"""

from __future__ import annotations

import argparse
from typing import Any

import jax
import jax.numpy as jnp
import optax

import gradkit
from benchmarks.timing import compiled_stats
from benchmarks.timing import interleaved_medians
from benchmarks.timing import markdown_table
from benchmarks.timing import transformer_like_params


def pairs() -> dict[str, tuple[Any, Any, dict[str, Any]]]:
    """name -> (gradkit optimizer, optax peer, extra update args)."""
    fitness = jnp.linspace(-1.0, 1.0, 32)
    return {
        "lion": (gradkit.lion(1e-4), optax.lion(1e-4), {}),
        "lion_k(tanh)": (gradkit.lion_k(1e-4, kappa="tanh", a=10.0), optax.lion(1e-4), {}),
        "diffgrad": (gradkit.diffgrad(1e-3), optax.adam(1e-3), {}),
        "perp_adamw": (gradkit.perp_adamw(1e-3), optax.adamw(1e-3), {}),
        "perp_sgd": (gradkit.perp_sgd(1e-2), optax.sgd(1e-2, momentum=0.8), {}),
        "auon": (gradkit.auon(0.05), optax.contrib.muon(0.05), {}),
        "adamw+limit_norm_growth": (
            optax.chain(optax.adamw(1e-3), gradkit.limit_norm_growth()),
            optax.adamw(1e-3), {}),
        "eggroll": (gradkit.eggroll(1e-2, 0.01), optax.sgd(1e-2), {"fitness": fitness}),
    }


def donated_step(opt, extra, donate=True):
    def step(carry, grads):
        params, state = carry
        updates, state = opt.update(grads, state, params, **extra)
        return optax.apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=0 if donate else ())


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=4_000_000, help="≈ number of params")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds")
    parser.add_argument("--no_donate", action="store_true", help="keep params and state")
    parser.add_argument("--only", default="", help="comma-separated name substrings")
    args = parser.parse_args(argv)
    params = transformer_like_params(args.size)
    n = sum(x.size for x in jax.tree.leaves(params))
    grads = jax.tree.map(lambda x: 1e-3 * jnp.sin(1e3 * x) + 1e-4, params)
    chosen = {k: v for k, v in pairs().items()
              if not args.only or any(s in k for s in args.only.split(","))}
    rows = []
    for name, (opt, peer, extra) in chosen.items():
        steps, carries, stats = {}, {}, {}
        for label, o in (("gradkit", opt), ("peer", peer)):
            p = jax.tree.map(jnp.copy, params)
            carry = (p, o.init(p))
            step = donated_step(o, extra if label == "gradkit" else {}, not args.no_donate)
            stats[label] = compiled_stats(step, carry, grads)
            steps[label] = lambda c, step=step: step(c, grads)
            carries[label] = carry
        med = interleaved_medians(steps, carries, rounds=args.rounds)
        mib = 2.0**20
        rows.append([
            name, f"{1e3 * med['gradkit']:.2f}", f"{1e3 * med['peer']:.2f}",
            f"{med['gradkit'] / med['peer']:.2f}",
            f"{stats['gradkit']['temp_bytes'] / mib:.1f}",
            f"{stats['peer']['temp_bytes'] / mib:.1f}",
            f"{stats['gradkit']['entry_copies']}/{stats['peer']['entry_copies']}",
        ])
    table = markdown_table(
        ["update", "ms", "peer ms", "× peer", "scratch MiB", "peer scratch MiB",
         "entry copies (ours/peer)"], rows)
    donated = "non-donated" if args.no_donate else "donated"
    header = (f"{n:,} parameters, {jax.devices()[0].device_kind}, {donated} jitted update + "
              f"apply, median of {args.rounds} interleaved rounds")
    print(header + "\n\n" + table)
    return table


if __name__ == "__main__":
    main()
