# SPDX-License-Identifier: Apache-2.0
r"""Backprop-free byte-level language modelling with EGGROLL (toy scale).

From the repository root::

  python -m examples.eggroll_lm.main --workdir=/tmp/eggroll_lm
  python -m examples.eggroll_lm.main --config.data_path=/path/to/text.txt

The configuration is ``examples/eggroll_lm/configs/default.py``; the logic is
``examples/eggroll_lm/train.py``. Writes ``metrics.jsonl``, ``final.json`` and
``loss.png`` to ``--workdir`` and prints the final result.
"""

import json
import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/eggroll_lm", "Output directory.")
config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).parent / "configs" / "default.py"),
    "Experiment configuration.", lock_config=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from examples.eggroll_lm import train  # imports JAX

    result = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(main)
