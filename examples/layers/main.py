# SPDX-License-Identifier: Apache-2.0
r"""Layer-level gradient rules on generated images: TrAct, ReSTE, Ghost BatchNorm.

Runs the experiments of ``examples/layers/train.py`` (see its docstring) and writes
``metrics.jsonl``, ``summary.json`` and ``layers.png`` to ``--workdir``. Full size (about
4 CPU-minutes), from the repository root::

  python -m examples.layers.main --workdir=/tmp/layers

One experiment only: ``--config.experiments='("tract",)'`` (or ``reste``, ``ghost_bn``).
The configuration is ``examples/layers/configs/default.py``.
"""

import json
import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/gradkit_layers", "Output directory.")
config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).parent / "configs" / "default.py"),
    "Experiment configuration.", lock_config=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from examples.layers import train  # imports JAX

    summary = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print(json.dumps(summary, indent=1, default=str))
    for entry in summary.get("tract", {}).get("table", []):
        print(f"| {entry['optimizer']} | ×{entry['input_scale']:g} | "
              f"{entry['plain_median_epochs']} | "
              f"{entry['tract_median_epochs']} |")
    for entry in summary.get("reste", []):
        print(f"| {entry['method']} | {entry['o']} | {entry['final_test_accuracy']:.3f} | "
              f"{entry['fitting_error']:.2f} | {entry['gradient_instability']:.3e} |")


if __name__ == "__main__":
    app.run(main)
