# SPDX-License-Identifier: Apache-2.0
r"""Compare optimizers on one byte-level LM config and seed: gradkit's main demo.

From the repository root::

  python -m examples.compare.main     # AdamW, Lion, SPAM, Sophia: ~2.5 min, 2 CPU cores
  python -m examples.compare.main --config.optimizers='("adamw", "lion")' \
      --config.num_steps=2000 --config.d_model=128
  python -m examples.compare.main --config.learning_rates='{"adamw": 3e-3, "lion": 3e-4}'

Every optimizer trains the same model from the same init on the same batches. Prints a
markdown table (steps to ``config.target_val_loss``, final validation loss, median time per
step relative to AdamW) and writes ``<workdir>/compare.png`` (train and validation curves
of every optimizer, the target line) and ``<workdir>/compare.json``. Unset learning rates
use ``examples.lm.trainer.OPTIMIZER_DEFAULTS``; ``config.opt_kwargs`` applies to all. Any
gradkit or optax alias name works in ``config.optimizers``. The configuration is
``examples/compare/configs/default.py`` (the LM's fields plus the comparison's);
``--help`` lists the flags.
"""

import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

from examples.lm import cpu

FLAGS = flags.FLAGS
flags.adopt_module_key_flags(cpu)  # --one_cpu_thread, listed by --help
flags.DEFINE_string("workdir", "/tmp/gradkit_lm", "Output directory (runs, table, plot).")
config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).parent / "configs" / "default.py"),
    "Comparison configuration.", lock_config=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if cpu.ONE_CPU_THREAD.value:
        cpu.use_one_cpu_thread()
    from examples.compare import train  # imports JAX

    out = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print(out["table"])
    print(f"plot: {out['plot']}")


if __name__ == "__main__":
    app.run(main)
