# SPDX-License-Identifier: Apache-2.0
r"""Grokking at the edge of numerical stability: StableMax and ⊥Grad on a op b mod p.

The configuration is ``examples/grokking/configs/default.py``; the logic is
``examples/grokking/train.py``. Writes ``metrics.jsonl``, ``summary.json`` and
``grokking.png`` to ``--workdir``. The rows of docs/grokking.md's results table, with the
settings of the official ``run_main_experiments.sh`` (run from the repository root)::

  # Figure 2: float32 softmax CE, no weight decay: memorises, SC spreads, no grokking.
  python -m examples.grokking.main --config.loss=softmax --config.optimizer=adamw \
      --config.lr=0.0005 --config.adam_eps=1e-30 --config.epochs=20000 \
      --config.log_interval=100
  # Figure 1: StableMax CE, no weight decay: groks (slowly).
  python -m examples.grokking.main --config.loss=stablemax --config.optimizer=adamw \
      --config.lr=0.01 --config.b2=0.999 --config.epochs=80000 --config.log_interval=500 \
      --config.chunk=5000
  # Figure 6: ⊥AdamW without weight decay vs AdamW with it.
  python -m examples.grokking.main --config.optimizer=perp_adamw --config.lr=0.005 \
      --config.epochs=500
  python -m examples.grokking.main --config.optimizer=adamw --config.lr=0.005 \
      --config.weight_decay=1.0 --config.epochs=2000
"""

import json
import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/gradkit_grokking", "Output directory.")
config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).parent / "configs" / "default.py"),
    "Experiment configuration.", lock_config=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from examples.grokking import train  # imports JAX

    summary = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}))


if __name__ == "__main__":
    app.run(main)
