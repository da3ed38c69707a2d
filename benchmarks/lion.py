# SPDX-License-Identifier: Apache-2.0
r"""Update time of gradkit's Lion / Lion-K relative to optax.adamw and optax.lion.

  python -m benchmarks.lion --num_params=10_000_000

All optimizers are timed in the same process on the same ~10M-parameter pytree;
the table reports the median jitted update (+ apply) time and its ratio to AdamW.
"""

from __future__ import annotations

import optax
from absl import app
from absl import flags

import gradkit
from benchmarks import timing

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_params", 10_000_000, "Approximate number of parameters.")
flags.DEFINE_integer("width", 1024, "Width of the square matrices making up the pytree.")
flags.DEFINE_integer("repeats", 20, "Timed repetitions per optimizer (median reported).")


def main(argv):
    del argv
    params = timing.params_of_size(FLAGS.num_params, FLAGS.width)
    n = sum(x.size for x in params.values())
    optimizers = {
        "optax.adamw": optax.adamw(1e-3),
        "optax.lion": optax.lion(1e-4),
        "gradkit.lion": gradkit.lion(1e-4),
        "gradkit.lion_k(tanh)": gradkit.lion_k(1e-4, kappa="tanh", a=10.0),
        "gradkit.lion_k(relativistic)": gradkit.lion_k(1e-4, kappa="relativistic"),
    }
    seconds = {k: timing.update_seconds(v, params, FLAGS.repeats) for k, v in optimizers.items()}
    rows = [[k, f"{1e3 * s:.2f}", f"{s / seconds['optax.adamw']:.2f}"]
            for k, s in seconds.items()]
    print(f"{n / 1e6:.1f}M float32 parameters, median of {FLAGS.repeats} jitted updates\n")
    print(timing.markdown_table(["optimizer", "ms / update", "× optax.adamw"], rows))


if __name__ == "__main__":
    app.run(main)
