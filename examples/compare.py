r"""Compare optimizers on one byte-level LM config and seed: gradkit's main demo.

  python examples/compare.py                      # AdamW, Lion, SPAM, Sophia: ~2.5 min, 2 CPU cores
  python examples/compare.py --optimizers=adamw,lion --num_steps=2000 --d_model=128

Every optimizer trains the same model from the same init on the same batches. Prints a
markdown table (steps to ``--target_val_loss``, final validation loss, median time per
step relative to AdamW) and writes ``<workdir>/compare.png`` and
``<workdir>/compare.json``. Per-optimizer learning rates: ``--learning_rates=adamw=3e-3,
lion=3e-4`` (unset ones use ``lm_lib.OPTIMIZER_DEFAULTS``); ``--opt_kwargs`` applies to
all. Any gradkit or optax alias name works in ``--optimizers``.
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import lm_lib

lm_lib.define_flags()
flags.DEFINE_list("optimizers", ["adamw", "lion", "spam", "sophia"],
                  "Optimizer names (gradkit first, then optax).")
flags.DEFINE_list("learning_rates", [], "Per-optimizer peak LRs as name=value pairs.")
flags.DEFINE_float("target_val_loss", 0.8, "Validation loss whose first crossing is reported.")
FLAGS = flags.FLAGS


def parse_learning_rates(pairs: list[str]) -> dict[str, float]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"`learning_rates` entries must be name=value, got {pair!r}.")
        out[name.strip()] = float(value)
    return out


def main(argv):
    del argv
    lrs = parse_learning_rates(FLAGS.learning_rates)
    results = {}
    for name in FLAGS.optimizers:
        lr = lrs.get(name, FLAGS.learning_rate)
        cfg = lm_lib.config_from_flags(FLAGS, optimizer=name, run_name=name, learning_rate=lr)
        results[name] = lm_lib.train(cfg)
    table, rows = lm_lib.comparison_table(results, FLAGS.target_val_loss)
    print(table)
    plot = lm_lib.plot_runs(
        {n: r["history"] for n, r in results.items()},
        os.path.join(FLAGS.workdir, "compare.png"),
        f"byte-level LM, {next(iter(results.values()))['num_params']:,} params",
    )
    lm_lib.write_json(os.path.join(FLAGS.workdir, "compare.json"), rows)
    print(f"plot: {plot}")


if __name__ == "__main__":
    app.run(main)
