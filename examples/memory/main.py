r"""AdamW vs 8-bit AdamW vs FRUGAL vs Fira on the reference LM: quality and state memory.

  python examples/memory/main.py --workdir=/tmp/memory            # the demo's 600 steps
  python examples/memory/main.py --methods=adamw,frugal --num_steps=200

Prints a markdown table (final validation loss and its change vs AdamW, optimizer-state
bytes per parameter measured from the state pytree, steps/s), appends one JSON row per
run to ``<workdir>/memory.jsonl`` (each run's metrics are in
``<workdir>/<method>/metrics.jsonl``) and plots the loss curves to ``memory.png``.
Model/data/loop flags are ``lm_lib``'s.
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import lm_lib
import train

lm_lib.define_flags()
flags.DEFINE_list("methods", list(train.METHODS),
                  f"Methods among {list(train.ALL_METHODS)} (default: the main table).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    base = lm_lib.config_from_flags(FLAGS)
    rows = train.run_comparison(FLAGS.methods, base, FLAGS.workdir)
    print(train.summary_table(rows))
    print(f"plot: {train.plot(FLAGS.workdir, rows)}")


if __name__ == "__main__":
    app.run(main)
