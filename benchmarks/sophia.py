# SPDX-License-Identifier: Apache-2.0
r"""Amortised step time of Sophia (k = 10, estimator included) relative to optax.adamw.

One process, same model, same batch, same jit'd training step (forward, backward,
optimizer update, apply): only the optimizer differs. Each timed call runs
``--steps_per_call`` steps in a ``lax.scan`` (a multiple of k, so the estimator's
share is amortised exactly as in training). Prints a markdown table.

Two models: ``--model=mlp`` (an MLP classifier, the default) and ``--model=gpt`` (the
reference byte-level GPT of :mod:`gradkit.models.transformer` on random bytes), where
Sophia's extra passes are a forward+backward of the transformer (GNB) or a
forward-over-reverse HVP (Hutchinson).

    python -m benchmarks.sophia
    python -m benchmarks.sophia --model=gpt --batch_size=32   # the Sophia example's size
    python -m benchmarks.sophia --hidden=1024 --batch_size=512 --repeats=5
"""

from __future__ import annotations

import time

import jax
import optax
from absl import app
from absl import flags

import gradkit
from benchmarks.models import define_model_flags
from benchmarks.models import make_model

FLAGS = flags.FLAGS
define_model_flags()
flags.DEFINE_integer("steps_per_call", 20, "Steps per timed call (a multiple of k=10).")
flags.DEFINE_integer("repeats", 5, "Timed calls per optimizer (best is reported).")
flags.DEFINE_integer("update_interval", 10, "Sophia's k.")


def time_optimizer(opt, apply_fn, params, x, y, steps, repeats):
    """Best seconds per step of ``opt`` training ``apply_fn`` on one fixed batch."""
    extra = gradkit.sophia_extra_args(apply_fn, x, y)
    loss = extra["obj_fn"]  # mean softmax cross-entropy over every position

    def step(carry, _):
        params, state = carry
        grads = jax.grad(loss)(params)
        updates, state = opt.update(grads, state, params, **extra)
        return (optax.apply_updates(params, updates), state), None

    run = jax.jit(lambda c: jax.lax.scan(step, c, length=steps)[0])
    carry = (params, opt.init(params))
    carry = jax.block_until_ready(run(carry))  # compile + warm up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        carry = jax.block_until_ready(run(carry))
        best = min(best, (time.perf_counter() - t0) / steps)
    return best


def main(argv):
    del argv
    what, apply_fn, params, x, y = make_model()
    k = FLAGS.update_interval
    opts = {
        "optax.adamw": optax.adamw(1e-3),
        f"gradkit.sophia (gnb, k={k})": gradkit.sophia(1e-3, estimator="gnb",
                                                       update_interval=k),
        f"gradkit.sophia (hutchinson, k={k})": gradkit.sophia(1e-3, estimator="hutchinson",
                                                              update_interval=k),
        "gradkit.sophia (gnb, k=1)": gradkit.sophia(1e-3, estimator="gnb", update_interval=1),
        "gradkit.sophia (hutchinson, k=1)": gradkit.sophia(1e-3, estimator="hutchinson",
                                                           update_interval=1),
    }
    times = {name: time_optimizer(opt, apply_fn, params, x, y, FLAGS.steps_per_call,
                                  FLAGS.repeats) for name, opt in opts.items()}
    base = times["optax.adamw"]
    n_params = sum(v.size for v in jax.tree.leaves(params))
    print(f"{what} ({n_params:,} params), {jax.devices()[0].platform}, "
          f"{FLAGS.steps_per_call} steps per call, best of {FLAGS.repeats}")
    print("| optimizer | ms / step | ratio to optax.adamw |")
    print("|---|---|---|")
    for name, t in times.items():
        print(f"| {name} | {1e3 * t:.3f} | {t / base:.2f} |")


if __name__ == "__main__":
    app.run(main)
