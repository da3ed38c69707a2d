# SPDX-License-Identifier: Apache-2.0
r"""Lion vs AdamW on a teacher-student MLP classification task.

From the repository root::

  python -m examples.lion_vs_adamw.main --workdir=/tmp/gradkit_lion_vs_adamw
  python -m examples.lion_vs_adamw.main --config.lion_lr=3e-4 --config.lion_wd=1.0

The configuration is ``examples/lion_vs_adamw/configs/default.py``; the logic is
``examples/lion_vs_adamw/train.py``. Writes ``metrics.jsonl`` and ``loss.png`` to
``--workdir`` and prints a markdown table of the final test metrics.
"""

import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/gradkit_lion_vs_adamw", "Output directory.")
config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).parent / "configs" / "default.py"),
    "Experiment configuration.", lock_config=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from examples.lion_vs_adamw import train  # imports JAX

    final = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print("\n" + train.summary_table(final))
    print(f"\nmetrics and plot written to {FLAGS.workdir}")


if __name__ == "__main__":
    app.run(main)
