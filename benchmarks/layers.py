# SPDX-License-Identifier: Apache-2.0
r"""Forward+backward time of the gradkit layers vs their plain Flax peers, in one process.

For each pair it times a jitted ``value_and_grad`` of Σ sin(layer(x)) with respect to the
layer's parameters (median over ``--repeats`` after a compile call) and prints the ratio
to the plain layer measured in the same run:

* ``TrActConv`` vs ``nn.Conv`` (a CIFAR-like first layer, 3×3, 3 → 64 channels,
  n = 27 < rows: the n×n solve), ``TrActDense`` vs ``nn.Dense`` with b < n (Woodbury) and
  b ≥ n;
* ``BinaryDense`` (ReSTE, 1W/1A) vs ``nn.Dense``;
* ``GhostBatchNorm`` (ghost 32) vs ``nn.BatchNorm``.

    PYTHONPATH=. python benchmarks/layers.py
    PYTHONPATH=. python benchmarks/layers.py --batch 16 --repeats 3   # quick
"""

from __future__ import annotations

import argparse

import flax.linen as nn
import jax
import jax.numpy as jnp

from benchmarks.timing import markdown_table
from benchmarks.timing import median_seconds
from gradkit import layers


def step_seconds(module: nn.Module, x: jax.Array, repeats: int, mutable: bool = False,
                 **call_kwargs) -> float:
    variables = module.init(jax.random.key(0), x, **call_kwargs)
    params = variables["params"]
    rest = {k: v for k, v in variables.items() if k != "params"}

    @jax.jit
    def step(params, x):
        def loss(params):
            out = module.apply({"params": params, **rest}, x, **call_kwargs,
                               **({"mutable": ["batch_stats"]} if mutable else {}))
            out = out[0] if mutable else out
            return jnp.sum(jnp.sin(out))

        return jax.value_and_grad(loss)(params)

    return median_seconds(step, params, x, repeats=repeats)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--only", default="",
                        help="comma-separated case prefixes to run (default: all)")
    args = parser.parse_args(argv)
    b = args.batch
    key = jax.random.key(1)
    image = jax.random.normal(key, (b, 32, 32, 3))
    wide = jax.random.normal(key, (b, 4 * b))   # b < n: Woodbury
    tall = jax.random.normal(key, (b, max(1, b // 4)))  # b ≥ n
    feat = jax.random.normal(key, (b, 8, 8, 64))
    cases = [
        ("TrActConv 3×3 3→64", nn.Conv(64, (3, 3)), layers.TrActConv(64, (3, 3)), image, {}),
        (f"TrActDense b={b} < n={4 * b}", nn.Dense(256), layers.TrActDense(256), wide, {}),
        (f"TrActDense b={b} ≥ n={tall.shape[1]}", nn.Dense(256), layers.TrActDense(256), tall,
         {}),
        ("BinaryDense (ReSTE, 1W/1A)", nn.Dense(256), layers.BinaryDense(256), wide, {}),
        ("GhostBatchNorm (ghost 32)", nn.BatchNorm(use_running_average=False, momentum=0.9),
         layers.GhostBatchNorm(min(32, b), use_running_average=False), feat, {"mutable": True}),
    ]
    if args.only:
        cases = [c for c in cases if any(c[0].startswith(p) for p in args.only.split(","))]
    rows = []
    for name, peer, ours, x, kw in cases:
        t_peer = step_seconds(peer, x, args.repeats, **kw)
        t_ours = step_seconds(ours, x, args.repeats, **kw)
        rows.append([name, f"{t_peer * 1e3:.3f}", f"{t_ours * 1e3:.3f}",
                     f"{t_ours / t_peer:.2f}"])
    print(f"batch {b}, {jax.devices()[0].platform}, median of {args.repeats}")
    print(markdown_table(["layer", "plain ms", "gradkit ms", "ratio"], rows))


if __name__ == "__main__":
    main()
