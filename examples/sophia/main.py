# SPDX-License-Identifier: Apache-2.0
r"""Sophia-G / Sophia-H vs AdamW on the reference byte-level LM, each tuned by a sweep.

From the repository root::

  python -m examples.sophia.main   # the sweep of docs/sophia.md, ~20 min on 2 idle CPU cores
  python -m examples.sophia.main --config.batch_size=256 --config.num_steps=300 \
      --config.adamw_lrs='(8e-3,)' --config.sophia_g_lrs='(3e-3,)' \
      --config.sophia_g_gammas='(0.5,)' --config.sophia_h_lrs='(1e-2,)' \
      --config.sophia_h_gammas='(10.0,)'   # the 8×-batch runs of docs/sophia.md

The protocol and the outputs are described in ``examples/sophia/train.py``; the
configuration is ``examples/sophia/configs/default.py`` (the LM's fields plus the sweep's).
"""

import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/gradkit_sophia", "Output directory.")
config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).parent / "configs" / "default.py"),
    "Sweep configuration.", lock_config=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from examples.sophia import train  # imports JAX

    config = FLAGS.config
    summary = train.train_and_evaluate(config, FLAGS.workdir)
    sweep, best = summary["tables"]
    print(f"\nSweep ({summary['runs'][0]['num_params']:,} parameters, "
          f"{config.num_steps} steps):\n{sweep}\n\nBest of each optimizer:\n{best}")
    for family, row in summary["best"].items():
        if row["final_win_rate_by_param"]:
            print(f"\nWin rate per parameter at the last step, best {family} run:")
            for name, rate in row["final_win_rate_by_param"].items():
                print(f"  {name:40s} {rate:.3f}")
    print(f"plot: {summary['plot']}")


if __name__ == "__main__":
    app.run(main)
