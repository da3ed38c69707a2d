r"""Lion vs AdamW on a generated classification task (a small Flax MLP).

Flags only; the logic is ``examples/lion_vs_adamw/train.py``. Writes ``metrics.jsonl``
and ``loss.png`` to ``--workdir`` and prints a markdown table::

  python examples/lion_vs_adamw/main.py --steps=2000 --workdir=/tmp/lion_vs_adamw

(``python -m examples.lion_vs_adamw.main ...`` works too.)
"""

from __future__ import annotations

import dataclasses
import pathlib
import sys

from absl import app
from absl import flags

if not __package__:  # run as a script: make `examples` (and gradkit) importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from examples.lion_vs_adamw import train

C = train.Config
FLAGS = flags.FLAGS
flags.DEFINE_integer("steps", C.steps, "Training steps per optimizer.")
flags.DEFINE_integer("batch_size", C.batch_size, "Batch size.")
flags.DEFINE_integer("num_test", C.num_test, "Test examples.")
flags.DEFINE_integer("width", C.width, "Hidden width of the student MLP.")
flags.DEFINE_float("adamw_lr", C.adamw_lr, "AdamW learning rate.")
flags.DEFINE_float("adamw_wd", C.adamw_wd, "AdamW weight decay.")
flags.DEFINE_float("lion_lr", C.lion_lr, "Lion learning rate (paper: 3-10x below AdamW's).")
flags.DEFINE_float("lion_wd", C.lion_wd, "Lion weight decay (paper: 3-10x above AdamW's).")
flags.DEFINE_integer("eval_every", C.eval_every, "Evaluate every this many steps.")
flags.DEFINE_integer("seed", C.seed, "Random seed (data, init and batches).")
flags.DEFINE_string("workdir", "/tmp/gradkit_lion_vs_adamw", "Output directory.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = train.Config(**{f.name: getattr(FLAGS, f.name)
                             for f in dataclasses.fields(train.Config)})
    final = train.train_and_evaluate(config, FLAGS.workdir)
    print("\n" + train.summary_table(final))
    print(f"\nmetrics and plot written to {FLAGS.workdir}")


if __name__ == "__main__":
    app.run(main)
