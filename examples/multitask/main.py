# SPDX-License-Identifier: Apache-2.0
r"""Multi-gradient methods on small generated tasks: PCGrad, GCond, AdAdaGrad, Sven.

The logic is ``examples/multitask/train.py``; the configuration
``examples/multitask/configs/default.py``. Writes ``metrics.jsonl``,
``<experiment>_summary.json`` and ``<experiment>.png`` to ``--workdir``. Full size (the
numbers in docs/multitask.md), CPU, from the repository root::

  python -m examples.multitask.main --workdir=/tmp/multitask

One experiment: ``--config.experiments='("sven",)'``.
"""

import json
import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/gradkit_multitask", "Output directory.")
config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).parent / "configs" / "default.py"),
    "Experiment configuration.", lock_config=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from examples.multitask import train  # imports JAX

    summaries = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print(json.dumps(summaries, indent=1))


if __name__ == "__main__":
    app.run(main)
