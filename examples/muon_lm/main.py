r"""AuON vs Frobenius-normalised Nesterov SGD vs optax Muon vs AdamW on the reference LM.

  python examples/muon_lm/main.py --workdir=/tmp/muon_lm            # full grid, ~12 runs
  python examples/muon_lm/main.py --methods=auon,contrib.muon --num_steps=100

Each method trains at every learning rate of its fixed 3-point grid (``train.GRIDS``);
prints a markdown table (best final validation loss per method, all grid values) and
writes ``<workdir>/muon_lm.jsonl`` and the loss curves of every run to ``muon_lm.png``.
Model/data/loop flags are the LM's (``examples/lm/cli.py``; ``--help`` lists them).
"""

from __future__ import annotations

import os
import pathlib
import sys

if __package__ in (None, ""):  # run by path: make the `examples` package importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from absl import app
from absl import flags

from examples.lm import cli
from examples.lm import report
from examples.muon_lm import train

cli.define_flags()
flags.DEFINE_list("methods", ["adamw", "contrib.muon", "auon", "frob_nesterov"],
                  f"Methods among {sorted(train.GRIDS)}.")
flags.DEFINE_list("grid_override", [], "Use only these learning rates for every method.")
flags.DEFINE_float("target_val_loss", 2.0, "Validation loss whose first crossing is reported.")
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS


def main(argv):
    del argv
    base = cli.config_from_flags(FLAGS)
    grids = dict(train.GRIDS)
    if FLAGS.grid_override:
        grids = {m: tuple(float(x) for x in FLAGS.grid_override) for m in grids}
    rows = train.run_grid(FLAGS.methods, base, FLAGS.workdir, grids, FLAGS.target_val_loss)
    print(train.summary_table(rows, FLAGS.target_val_loss))
    plot = report.plot_runs(report.runs_in_workdir(FLAGS.workdir),
                            os.path.join(FLAGS.workdir, "muon_lm.png"), "byte-level LM")
    print(f"plot: {plot}")


if __name__ == "__main__":
    app.run(main)
