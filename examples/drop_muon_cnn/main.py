# SPDX-License-Identifier: Apache-2.0
r"""Drop-Muon vs Muon wall clock on a small CNN with generated image-like data.

From the repository root::

  python -m examples.drop_muon_cnn.main --workdir=/tmp/drop_muon_cnn
  python -m examples.drop_muon_cnn.main --config.channels='(64, 128, 256)' \
      --config.batch_size=1024

The configuration is ``examples/drop_muon_cnn/configs/default.py``; the logic is
``examples/drop_muon_cnn/train.py``. Prints a JSON summary (steps and seconds to the
training-accuracy target, median step times, their ratio) and writes ``metrics.jsonl``,
``summary.json`` and a plot to ``--workdir``.
"""

import json
import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/drop_muon_cnn", "Output directory.")
config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).parent / "configs" / "default.py"),
    "Experiment configuration.", lock_config=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from examples.drop_muon_cnn import train  # imports JAX

    summary = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    app.run(main)
