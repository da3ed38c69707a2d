r"""Grokking at the edge of numerical stability: StableMax and ⊥Grad on a op b mod p.

Flags only; the logic is ``examples/grokking/train.py`` (``train.train_and_evaluate``).
Writes ``metrics.jsonl``, ``summary.json`` and ``grokking.png`` to ``--workdir``. The rows
of docs/grokking.md's results table, with the flags of the official
``run_main_experiments.sh`` (run from the repository root)::

  # Figure 2: float32 softmax CE, no weight decay: memorises, SC spreads, no grokking.
  python examples/grokking/main.py --loss=softmax --optimizer=adamw --lr=0.0005 \
      --adam_eps=1e-30 --epochs=20000 --log_every=100
  # Figure 1: StableMax CE, no weight decay: groks (slowly).
  python examples/grokking/main.py --loss=stablemax --optimizer=adamw --lr=0.01 --b2=0.999 \
      --epochs=80000 --log_every=500 --chunk=5000
  # Figure 6: ⊥AdamW without weight decay vs AdamW with it.
  python examples/grokking/main.py --optimizer=perp_adamw --lr=0.005 --epochs=500
  python examples/grokking/main.py --optimizer=adamw --lr=0.005 --weight_decay=1.0 --epochs=2000

(``python -m examples.grokking.main ...`` works too.)
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys

from absl import app
from absl import flags

if not __package__:  # run as a script: make `examples` (and gradkit) importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from examples.grokking import train

C = train.Config
FLAGS = flags.FLAGS
flags.DEFINE_enum("op", C.op, ["+", "-", "*", "/"], "Operation a op b mod p.")
flags.DEFINE_integer("p", C.p, "Modulus (prime for '/').")
flags.DEFINE_float("train_fraction", C.train_fraction, "Fraction of all pairs used for training.")
flags.DEFINE_enum("loss", C.loss, ["softmax", "stablemax"], "Cross-entropy kind.")
flags.DEFINE_enum("optimizer", C.optimizer, ["adamw", "perp_adamw", "sgd", "perp_sgd"],
                  "Optimizer.")
flags.DEFINE_float("lr", C.lr, "Learning rate.")
flags.DEFINE_float("weight_decay", C.weight_decay,
                   "Weight decay (decoupled for AdamW, L2 for SGD).")
flags.DEFINE_float("b1", C.b1, "AdamW beta1.")
flags.DEFINE_float("b2", C.b2, "AdamW beta2 (paper 0.99; its StableMax runs 0.999).")
flags.DEFINE_float("adam_eps", C.adam_eps, "AdamW epsilon (paper: 1e-25).")
flags.DEFINE_float("momentum", C.momentum, "SGD momentum (paper's ⊥SGD: 0.8).")
flags.DEFINE_enum("dtype", C.dtype, ["float32", "float64"], "Model and loss dtype.")
flags.DEFINE_enum("model", C.model, ["mlp", "transformer"], "Model.")
flags.DEFINE_integer("epochs", C.epochs, "Number of full-batch epochs (steps).")
flags.DEFINE_integer("log_every", C.log_every,
                     "Log all metrics (train and test) every this many epochs.")
flags.DEFINE_integer("chunk", C.chunk, "Epochs per jitted call (a multiple of log_every).")
flags.DEFINE_float("stop_at_test_acc", C.stop_at_test_acc,
                   "If > 0, stop after the chunk in which test accuracy reached it.")
flags.DEFINE_float("max_minutes", C.max_minutes,
                   "If > 0, stop after the first chunk that ends past this wall time.")
flags.DEFINE_integer("seed", C.seed, "Seed of the split and the initialisation.")
flags.DEFINE_string("workdir", "/tmp/gradkit_grokking", "Output directory.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = train.Config(**{f.name: getattr(FLAGS, f.name)
                             for f in dataclasses.fields(train.Config)})
    summary = train.train_and_evaluate(config, FLAGS.workdir)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}))


if __name__ == "__main__":
    app.run(main)
