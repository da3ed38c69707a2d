r"""Sophia-G / Sophia-H vs AdamW on the reference byte-level LM, each tuned by a sweep.

From the repository root::

  python examples/sophia/main.py    # the sweep of docs/sophia.md, ~20 min on 2 idle CPU cores
  python examples/sophia/main.py --batch_size=256 --num_steps=300 --adamw_lrs=8e-3 \
      --sophia_g_lrs=3e-3 --sophia_g_gammas=0.5 --sophia_h_lrs=1e-2 \
      --sophia_h_gammas=10   # the 8×-batch runs of docs/sophia.md

The protocol and the outputs are described in ``examples/sophia/train.py``; the model,
data and loop flags are the LM's (``--help`` lists them all).
"""

from __future__ import annotations

import pathlib
import sys

if __package__ in (None, ""):  # run by path: make the `examples` package importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from absl import app
from absl import flags

from examples.lm import cli
from examples.sophia import train as sophia_lib

cli.define_flags()
flags.DEFINE_list("adamw_lrs", [f"{v:g}" for v in sophia_lib.ADAMW_LRS],
                  "AdamW peak learning rates.")
flags.DEFINE_list("sophia_g_lrs", [f"{v:g}" for v in sophia_lib.SOPHIA_G_LRS],
                  "Sophia-G peak learning rates.")
flags.DEFINE_list("sophia_g_gammas", [f"{v:g}" for v in sophia_lib.SOPHIA_G_GAMMAS],
                  "Sophia-G γ values.")
flags.DEFINE_list("sophia_h_lrs", [f"{v:g}" for v in sophia_lib.SOPHIA_H_LRS],
                  "Sophia-H peak learning rates (empty: no Sophia-H).")
flags.DEFINE_list("sophia_h_gammas", [f"{v:g}" for v in sophia_lib.SOPHIA_H_GAMMAS],
                  "Sophia-H γ values.")
flags.DEFINE_float("adamw_b2", 0.95, "AdamW β₂ (the paper's GPT-2 baselines use 0.95).")
flags.DEFINE_float("weight_decay", 0.1, "Decoupled weight decay of every optimizer.")
flags.DEFINE_integer("update_interval", 10, "Sophia's Hessian refresh period k.")
flags.DEFINE_bool("refresh_at_start", True,
                  "Sophia's first ĥ at step 1 (paper) or after step k (official code).")
flags.DEFINE_bool("bias_correction", False,
                  "Sophia's ratio uses debiased m and h (not in the paper; see scale_by_sophia).")
flags.DEFINE_float("target_val_loss", 0.8, "Validation loss whose first crossing is reported.")
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS
FLAGS.set_default("workdir", "/tmp/gradkit_sophia")
FLAGS.set_default("grad_clip", 1.0)
FLAGS.set_default("eval_every", 25)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")

    def floats(values):
        return [float(v) for v in values]

    settings = sophia_lib.sweep_settings(
        floats(FLAGS.adamw_lrs),
        (floats(FLAGS.sophia_g_lrs), floats(FLAGS.sophia_g_gammas)),
        (floats(FLAGS.sophia_h_lrs), floats(FLAGS.sophia_h_gammas)),
        adamw_b2=FLAGS.adamw_b2, weight_decay=FLAGS.weight_decay,
        update_interval=FLAGS.update_interval, refresh_at_start=FLAGS.refresh_at_start,
        bias_correction=FLAGS.bias_correction)
    base = cli.config_from_flags(FLAGS)
    summary = sophia_lib.run_sweep(base, settings, FLAGS.target_val_loss, FLAGS.workdir)
    plot = sophia_lib.write_outputs(summary, FLAGS.workdir)
    sweep, best = sophia_lib.tables(summary)
    print(f"\nSweep ({summary['runs'][0]['num_params']:,} parameters, "
          f"{base.num_steps} steps):\n{sweep}\n\nBest of each optimizer:\n{best}")
    for family, row in summary["best"].items():
        if row["final_win_rate_by_param"]:
            print(f"\nWin rate per parameter at the last step, best {family} run:")
            for name, rate in row["final_win_rate_by_param"].items():
                print(f"  {name:40s} {rate:.3f}")
    print(f"plot: {plot}")


if __name__ == "__main__":
    app.run(main)
