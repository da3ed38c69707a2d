r"""Amortised step time of Sophia (k = 10, estimator included) relative to optax.adamw.

One process, same model, same batch, same jit'd training step (forward, backward,
optimizer update, apply): only the optimizer differs. Each timed call runs
``--steps_per_call`` steps in a ``lax.scan`` (a multiple of k, so the estimator's
share is amortised exactly as in training). Prints a markdown table.

    python benchmarks/sophia.py
    python benchmarks/sophia.py --hidden=1024 --batch_size=512 --repeats=5
"""

from __future__ import annotations

import time

import jax
import optax
from absl import app
from absl import flags

import gradkit
from gradkit.models.mlp import MLPClassifier

FLAGS = flags.FLAGS
flags.DEFINE_integer("dim", 64, "Input dimension.")
flags.DEFINE_integer("hidden", 512, "MLP hidden width.")
flags.DEFINE_integer("classes", 64, "Number of classes.")
flags.DEFINE_integer("batch_size", 256, "Batch size.")
flags.DEFINE_integer("steps_per_call", 20, "Steps per timed call (a multiple of k=10).")
flags.DEFINE_integer("repeats", 5, "Timed calls per optimizer (best is reported).")
flags.DEFINE_integer("update_interval", 10, "Sophia's k.")


def time_optimizer(opt, model, params, x, y, steps, repeats):
    def loss(params):
        logits = model.apply({"params": params}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    extra = gradkit.sophia_extra_args(model.apply, x, y)

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
    kx, ky, kp = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (FLAGS.batch_size, FLAGS.dim))
    y = jax.random.randint(ky, (FLAGS.batch_size,), 0, FLAGS.classes)
    model = MLPClassifier(FLAGS.hidden, FLAGS.classes)
    params = model.init(kp, x[:1])["params"]
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
    times = {name: time_optimizer(opt, model, params, x, y, FLAGS.steps_per_call,
                                  FLAGS.repeats) for name, opt in opts.items()}
    base = times["optax.adamw"]
    n_params = sum(v.size for v in jax.tree.leaves(params))
    print(f"MLP {FLAGS.dim}→{FLAGS.hidden}→{FLAGS.hidden}→{FLAGS.classes} ({n_params} params), "
          f"batch {FLAGS.batch_size}, {jax.devices()[0].platform}, "
          f"{FLAGS.steps_per_call} steps per call, best of {FLAGS.repeats}")
    print("| optimizer | ms / step | ratio to optax.adamw |")
    print("|---|---|---|")
    for name, t in times.items():
        print(f"| {name} | {1e3 * t:.3f} | {t / base:.2f} |")


if __name__ == "__main__":
    app.run(main)
