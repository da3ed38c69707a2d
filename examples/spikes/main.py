r"""Gradient-spike fault injection: Adam vs SPAM vs Stable-SPAM on a small MLP.

Flags only; the logic is ``examples/spikes/train.py`` (``train.train_and_evaluate``).
Writes ``metrics.jsonl``, ``summary.json`` and ``spikes.png`` to ``--workdir`` and prints
a markdown table. Run (CPU, ~1 min; measured results in the README)::

    python examples/spikes/main.py --workdir /tmp/spikes

(``python -m examples.spikes.main ...`` works too.)
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys

from absl import app
from absl import flags

if not __package__:  # run as a script: make `examples` (and gradkit) importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from examples.spikes import train

C = train.Config
FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/gradkit_spikes", "Where outputs are written.")
flags.DEFINE_integer("steps", C.steps, "Training steps.")
flags.DEFINE_integer("spike_first", C.spike_first, "First step (0-based) with an injected spike.")
flags.DEFINE_integer("spike_every", C.spike_every, "Steps between spikes (0: no spikes).")
flags.DEFINE_list("spike_scales", [f"{s:.0e}".replace("e+0", "e") for s in C.spike_scales],
                  "Spike factors, cycled.")
flags.DEFINE_float("learning_rate", C.learning_rate, "Learning rate of every optimizer.")
flags.DEFINE_list("optimizers", list(C.optimizers),
                  "Optimizers to compare (adam, spam, stable_spam, clip_adam).")
flags.DEFINE_integer("hidden", C.hidden, "Hidden width of the MLP.")
flags.DEFINE_integer("num_samples", C.num_samples, "Generated training samples.")
flags.DEFINE_integer("batch_size", C.batch_size, "Minibatch size.")
flags.DEFINE_integer("log_every", C.log_every, "Steps per logged row (and per jitted chunk).")
flags.DEFINE_integer("seed", C.seed, "Seed of data, init and minibatches.")
flags.DEFINE_bool("also_clean", C.also_clean, "Also train each optimizer without spikes.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    values = {f.name: getattr(FLAGS, f.name) for f in dataclasses.fields(train.Config)}
    values["spike_scales"] = tuple(float(s) for s in FLAGS.spike_scales)
    values["optimizers"] = tuple(FLAGS.optimizers)
    config = train.Config(**values)
    summary = train.train_and_evaluate(config, FLAGS.workdir)
    print(train.summary_table(summary, config.optimizers))


if __name__ == "__main__":
    app.run(main)
