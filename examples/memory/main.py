# SPDX-License-Identifier: Apache-2.0
r"""AdamW vs 8-bit AdamW vs FRUGAL vs Fira on the reference LM: quality and state memory.

From the repository root::

  python -m examples.memory.main --workdir=/tmp/memory     # the demo's 600 steps
  python -m examples.memory.main --config.methods='("adamw", "frugal")' \
      --config.num_steps=200

Prints a markdown table (final validation loss and its change vs AdamW, optimizer-state
bytes per parameter measured from the state pytree, steps/s), appends one JSON row per
run to ``<workdir>/memory.jsonl`` (each run's metrics are in
``<workdir>/<method>/metrics.jsonl``) and plots the loss curves to ``memory.png``. The
configuration is ``examples/memory/configs/default.py`` (the LM's fields plus
``methods``); the logic is ``examples/memory/train.py``.
"""

import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/gradkit_memory", "Output directory.")
config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).parent / "configs" / "default.py"),
    "Comparison configuration.", lock_config=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from examples.memory import train  # imports JAX

    out = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print(out["table"])
    print(f"plot: {out['plot']}")


if __name__ == "__main__":
    app.run(main)
