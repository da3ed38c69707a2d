r"""Compare optimizers on one byte-level LM config and seed: gradkit's main demo.

From the repository root::

  python examples/compare/main.py        # AdamW, Lion, SPAM, Sophia: ~2.5 min, 2 CPU cores
  python examples/compare/main.py --optimizers=adamw,lion --num_steps=2000 --d_model=128

Every optimizer trains the same model from the same init on the same batches. Prints a
markdown table (steps to ``--target_val_loss``, final validation loss, median time per
step relative to AdamW) and writes ``<workdir>/compare.png`` (train and validation curves
of every optimizer, the target line) and ``<workdir>/compare.json``. Per-optimizer
learning rates: ``--learning_rates=adamw=3e-3,lion=3e-4`` (unset ones use
``examples.lm.train.OPTIMIZER_DEFAULTS``); ``--opt_kwargs`` applies to all. Any gradkit or
optax alias name works in ``--optimizers``. The other flags are the LM's
(``examples/lm/main.py``); ``--help`` lists them all.
"""

from __future__ import annotations

import pathlib
import sys

if __package__ in (None, ""):  # run by path: make the `examples` package importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from absl import app
from absl import flags

from examples.lm import cli

cli.define_flags()
flags.DEFINE_list("optimizers", ["adamw", "lion", "spam", "sophia"],
                  "Optimizer names (gradkit first, then optax).")
flags.DEFINE_list("learning_rates", [], "Per-optimizer peak LRs as name=value pairs.")
flags.DEFINE_float("target_val_loss", 0.8, "Validation loss whose first crossing is reported.")
cli.define_one_cpu_thread_flag()
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.one_cpu_thread:
        cli.use_one_cpu_thread()
    from examples.compare import train as compare_lib  # imports JAX

    out = compare_lib.compare(
        cli.config_from_flags(FLAGS), FLAGS.workdir, FLAGS.optimizers,
        compare_lib.parse_learning_rates(FLAGS.learning_rates), FLAGS.target_val_loss)
    print(out["table"])
    print(f"plot: {out['plot']}")


if __name__ == "__main__":
    app.run(main)
