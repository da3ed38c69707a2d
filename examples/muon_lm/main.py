r"""AuON vs Frobenius-normalised Nesterov SGD vs optax Muon vs AdamW on the reference LM.

  python examples/muon_lm/main.py --workdir=/tmp/muon_lm            # full grid, ~12 runs
  python examples/muon_lm/main.py --methods=auon,contrib.muon --num_steps=100

Each method trains at every learning rate of its fixed 3-point grid (``train.GRIDS``);
prints a markdown table (best final validation loss per method, all grid values) and
writes ``<workdir>/muon_lm.jsonl`` and the loss curves of every run to ``muon_lm.png``.
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
flags.DEFINE_list("methods", ["adamw", "contrib.muon", "auon", "frob_nesterov"],
                  f"Methods among {sorted(train.GRIDS)}.")
flags.DEFINE_list("grid_override", [], "Use only these learning rates for every method.")
flags.DEFINE_float("target_val_loss", 2.0, "Validation loss whose first crossing is reported.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    base = lm_lib.config_from_flags(FLAGS)
    grids = dict(train.GRIDS)
    if FLAGS.grid_override:
        grids = {m: tuple(float(x) for x in FLAGS.grid_override) for m in grids}
    rows = train.run_grid(FLAGS.methods, base, FLAGS.workdir, grids, FLAGS.target_val_loss)
    print(train.summary_table(rows, FLAGS.target_val_loss))
    plot = lm_lib.plot_runs(lm_lib.runs_in_workdir(FLAGS.workdir),
                            os.path.join(FLAGS.workdir, "muon_lm.png"), "byte-level LM")
    print(f"plot: {plot}")


if __name__ == "__main__":
    app.run(main)
