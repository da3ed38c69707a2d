# SPDX-License-Identifier: Apache-2.0
r"""Cost of the curvature diagnostics relative to one gradient, measured in one process.

Same model, same batch, each operation jitted on its own: a gradient
(``jax.value_and_grad``), one Hessian-vector product (:func:`gradkit.hvp`,
forward-over-reverse), λ_max by 20 Lanczos steps (:func:`gradkit.sharpness`), a
Hutchinson trace with 10 probes (:func:`gradkit.hessian_trace`) and an SLQ density of
order 20 with 1 probe (:func:`gradkit.hessian_spectral_density`). Median wall time
(``benchmarks/timing.py``); prints a markdown table of ms and the ratio to the gradient.

Two models: ``--model=mlp`` (an MLP classifier, the default) and ``--model=gpt`` (the
reference byte-level GPT of :mod:`gradkit.models.transformer` on random bytes).

    python -m benchmarks.spectrum
    python -m benchmarks.spectrum --model=gpt --batch_size=16
"""

from __future__ import annotations

import jax
import optax
from absl import app
from absl import flags

import gradkit
from benchmarks.models import define_model_flags
from benchmarks.models import make_model
from benchmarks.timing import markdown_table
from benchmarks.timing import median_seconds

FLAGS = flags.FLAGS
define_model_flags()
flags.DEFINE_integer("lanczos_iterations", 20, "Lanczos steps for the sharpness row.")
flags.DEFINE_integer("trace_samples", 10, "Hutchinson probes for the trace row.")
flags.DEFINE_integer("repeats", 10, "Timed calls per operation (median is reported).")


def make_problem():
    """(description, loss_fn(params, x, y), params, x, y)."""
    what, apply_fn, params, x, y = make_model()

    def loss_fn(params, x, y):
        logits = apply_fn({"params": params}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    return what, loss_fn, params, x, y


def main(argv):
    del argv
    what, loss_fn, params, x, y = make_problem()
    v = jax.tree.map(lambda p: 0.01 * p, params)
    m, t = FLAGS.lanczos_iterations, FLAGS.trace_samples
    ops = {
        "gradient (value_and_grad)": jax.jit(jax.value_and_grad(loss_fn)),
        "gradkit.hvp": jax.jit(lambda p, x, y: gradkit.hvp(loss_fn, p, v, x, y)),
        f"gradkit.sharpness ({m} Lanczos steps)": jax.jit(
            lambda p, x, y: gradkit.sharpness(loss_fn, p, x, y, num_iterations=m)),
        f"gradkit.hessian_trace ({t} probes)": jax.jit(
            lambda p, x, y: gradkit.hessian_trace(loss_fn, p, x, y, num_samples=t).trace),
        f"gradkit.hessian_spectral_density (order {m}, 1 probe)": jax.jit(
            lambda p, x, y: gradkit.hessian_spectral_density(
                loss_fn, p, x, y, num_iterations=m, grid_len=1000).density),
    }
    times = {name: median_seconds(fn, params, x, y, repeats=FLAGS.repeats)
             for name, fn in ops.items()}
    base = times["gradient (value_and_grad)"]
    n_params = sum(a.size for a in jax.tree.leaves(params))
    print(f"{what} ({n_params:,} params), {jax.devices()[0].platform}, median of "
          f"{FLAGS.repeats}")
    print(markdown_table(["operation", "ms", "ratio to one gradient"],
                         [[name, f"{1e3 * s:.3f}", f"{s / base:.2f}"]
                          for name, s in times.items()]))


if __name__ == "__main__":
    app.run(main)
