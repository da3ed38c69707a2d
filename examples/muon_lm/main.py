# SPDX-License-Identifier: Apache-2.0
r"""AuON vs Frobenius-normalised Nesterov SGD vs optax Muon vs AdamW on the reference LM.

From the repository root::

  python -m examples.muon_lm.main --workdir=/tmp/muon_lm     # full grid, ~12 runs
  python -m examples.muon_lm.main --config.methods='("auon", "contrib.muon")' \
      --config.num_steps=100

Each method trains at every learning rate of its fixed 3-point grid (``train.GRIDS``;
``config.grid_override`` replaces them); prints a markdown table (best final validation
loss per method, all grid values) and writes ``<workdir>/muon_lm.jsonl`` and the loss
curves of every run to ``muon_lm.png``. The configuration is
``examples/muon_lm/configs/default.py`` (the LM's fields plus the grid's).
"""

import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/gradkit_muon_lm", "Output directory.")
config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).parent / "configs" / "default.py"),
    "Grid configuration.", lock_config=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from examples.muon_lm import train  # imports JAX

    out = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print(out["table"])
    print(f"plot: {out['plot']}")


if __name__ == "__main__":
    app.run(main)
