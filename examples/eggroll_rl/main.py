# SPDX-License-Identifier: Apache-2.0
r"""EGGROLL on a gymnax environment (CartPole-v1 by default) with an MLP policy.

From the repository root::

  python -m examples.eggroll_rl.main --workdir=/tmp/eggroll_rl
  python -m examples.eggroll_rl.main --config.env=Acrobot-v1 --config.hidden='(32, 32)'

The configuration is ``examples/eggroll_rl/configs/default.py``; the logic is
``examples/eggroll_rl/train.py``. Writes ``metrics.jsonl``, ``final.json`` and
``learning_curve.png`` to ``--workdir`` and prints the final result.
"""

import json
import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/eggroll_rl", "Output directory.")
config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).parent / "configs" / "default.py"),
    "Experiment configuration.", lock_config=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from examples.eggroll_rl import train  # imports JAX

    result = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(main)
