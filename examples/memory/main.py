r"""AdamW vs 8-bit AdamW vs FRUGAL vs Fira on the reference LM: quality and state memory.

  python examples/memory/main.py --workdir=/tmp/memory            # the demo's 600 steps
  python examples/memory/main.py --methods=adamw,frugal --num_steps=200

Prints a markdown table (final validation loss and its change vs AdamW, optimizer-state
bytes per parameter measured from the state pytree, steps/s), appends one JSON row per
run to ``<workdir>/memory.jsonl`` (each run's metrics are in
``<workdir>/<method>/metrics.jsonl``) and plots the loss curves to ``memory.png``.
Model/data/loop flags are the LM's (``examples/lm/cli.py``; ``--help`` lists them).
"""

from __future__ import annotations

import pathlib
import sys

if __package__ in (None, ""):  # run by path: make the `examples` package importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from absl import app
from absl import flags

from examples.lm import cli
from examples.memory import train

cli.define_flags()
flags.DEFINE_list("methods", list(train.METHODS),
                  f"Methods among {list(train.ALL_METHODS)} (default: the main table).")
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    base = cli.config_from_flags(FLAGS)
    rows = train.run_comparison(FLAGS.methods, base, FLAGS.workdir)
    print(train.summary_table(rows))
    print(f"plot: {train.plot(FLAGS.workdir, rows)}")


if __name__ == "__main__":
    app.run(main)
