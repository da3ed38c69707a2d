# SPDX-License-Identifier: Apache-2.0
"""Speed of ⊥AdamW vs optax.adamw and StableMax vs softmax cross-entropy (CPU).

Prints a markdown table of ratios measured in the same process:

  PYTHONPATH=. python benchmarks/grokking.py
  PYTHONPATH=. python benchmarks/grokking.py --repeats=5   # quick

* update: one jitted optimizer update on the paper's MLP parameters (107,800 floats,
  3 tensors) and on a 4-layer 1024-wide MLP (4.2M floats);
* loss: jitted value-and-grad of the mean cross-entropy on [5107, 113] logits.
"""

from __future__ import annotations

import argparse

import jax
import optax

import gradkit
from benchmarks import timing


def _params(shapes, seed=0):
    keys = jax.random.split(jax.random.key(seed), len(shapes))
    return {f"w{i}": jax.random.normal(k, s) for i, (k, s) in enumerate(zip(keys, shapes,
                                                                           strict=True))}


def bench_update(shapes, repeats=50):
    params = _params(shapes)
    grads = _params(shapes, seed=1)
    results = {}
    for name, opt in [("optax.adamw", optax.adamw(1e-3, weight_decay=0.0)),
                      ("gradkit.perp_adamw", gradkit.perp_adamw(1e-3))]:
        state = opt.init(params)
        step = jax.jit(lambda g, s, p, opt=opt: opt.update(g, s, p))
        results[name] = timing.median_seconds(step, grads, state, params, repeats=repeats)
    return results


def bench_loss(repeats=50):
    logits = 10 * jax.random.normal(jax.random.key(0), (5107, 113))
    labels = jax.random.randint(jax.random.key(1), (5107,), 0, 113)
    results = {}
    for name, fn in [("optax softmax CE", optax.softmax_cross_entropy_with_integer_labels),
                     ("gradkit.stablemax_cross_entropy", gradkit.stablemax_cross_entropy)]:
        vg = jax.jit(jax.value_and_grad(lambda z, fn=fn: fn(z, labels).mean()))
        results[name] = timing.median_seconds(vg, logits, repeats=repeats)
    return results


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=50, help="calls per timed batch")
    args = parser.parse_args()
    rows = []
    for label, shapes in [("paper MLP (107.8k)", [(226, 200), (200, 200), (200, 113)]),
                          ("4×1024² MLP (4.2M)", [(1024, 1024)] * 4)]:
        r = bench_update(shapes, args.repeats)
        rows.append((f"update, {label}", "optax.adamw", r["optax.adamw"],
                     "gradkit.perp_adamw", r["gradkit.perp_adamw"]))
    r = bench_loss(args.repeats)
    rows.append(("value+grad, [5107, 113] logits", "softmax CE", r["optax softmax CE"],
                 "stablemax CE", r["gradkit.stablemax_cross_entropy"]))
    print(f"device: {jax.devices()[0].device_kind}")
    print("| workload | peer | peer µs | gradkit | gradkit µs | ratio |")
    print("|---|---|---|---|---|---|")
    for w, pn, pt, gn, gt in rows:
        print(f"| {w} | {pn} | {pt * 1e6:.0f} | {gn} | {gt * 1e6:.0f} | {gt / pt:.2f} |")


if __name__ == "__main__":
    main()
