# SPDX-License-Identifier: Apache-2.0
r"""Update time of PCGrad / GCond over K task gradients relative to Adam on their sum.

  python -m benchmarks.multitask --num_params=4_000_000 --num_tasks=4

Same process, same pytree: "optax.adam(sum)" sums the K stacked task gradients and runs
Adam; "pcgrad+adam" and "gcond+adam" resolve the conflicts first. Both methods work in
the K×K coefficient space (docs/multitask.md), so their overhead is a Gram matrix and a
combination over the K·P stacked gradients.
"""

from __future__ import annotations

import jax
import optax
from absl import app
from absl import flags

import gradkit
from benchmarks import timing

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_params", 4_000_000, "Approximate number of parameters.")
flags.DEFINE_integer("width", 1024, "Width of the square matrices making up the pytree.")
flags.DEFINE_integer("num_tasks", 4, "Number of task gradients K.")
flags.DEFINE_integer("repeats", 10, "Timed repetitions per method (median reported).")


def _seconds(opt, params, stacked, reduce_sum):
    @jax.jit
    def step(params, state):
        grads = jax.tree.map(lambda g: g.sum(0), stacked) if reduce_sum else stacked
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return timing.median_seconds(step, params, opt.init(params), repeats=FLAGS.repeats)


def main(argv):
    del argv
    params = timing.params_of_size(FLAGS.num_params, FLAGS.width)
    k = FLAGS.num_tasks
    stacked = jax.tree.map(
        lambda x: jax.random.normal(jax.random.key(1), (k, *x.shape)) * 1e-3, params)
    n = sum(x.size for x in params.values())
    seconds = {
        "optax.adam(sum)": _seconds(optax.adam(1e-3), params, stacked, True),
        "pcgrad+adam": _seconds(optax.chain(gradkit.pcgrad(0), optax.adam(1e-3)), params,
                                stacked, False),
        "gcond+adam": _seconds(optax.chain(gradkit.gcond(k), optax.adam(1e-3, b1=0.0)),
                               params, stacked, False),
    }
    rows = [[name, f"{1e3 * s:.2f}", f"{s / seconds['optax.adam(sum)']:.2f}"]
            for name, s in seconds.items()]
    print(f"{n / 1e6:.1f}M float32 parameters, K = {k} tasks, median of {FLAGS.repeats} "
          "jitted steps\n")
    print(timing.markdown_table(["method", "ms / step", "× optax.adam(sum)"], rows))


if __name__ == "__main__":
    app.run(main)
