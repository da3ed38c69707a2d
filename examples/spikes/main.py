# SPDX-License-Identifier: Apache-2.0
r"""Gradient-spike fault injection: Adam vs SPAM vs Stable-SPAM on a small MLP.

From the repository root (CPU, ~1 min; measured results in the README)::

  python -m examples.spikes.main --workdir=/tmp/spikes
  python -m examples.spikes.main --config.steps=600 --config.optimizers='("adam", "spam")'

The configuration is ``examples/spikes/configs/default.py``; the logic is
``examples/spikes/train.py``. Writes ``metrics.jsonl``, ``summary.json`` and
``spikes.png`` to ``--workdir`` and prints a markdown table.
"""

import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/gradkit_spikes", "Output directory.")
config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).parent / "configs" / "default.py"),
    "Experiment configuration.", lock_config=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from examples.spikes import train  # imports JAX

    summary = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print(train.summary_table(summary, FLAGS.config.optimizers))


if __name__ == "__main__":
    app.run(main)
