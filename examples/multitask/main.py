r"""Multi-gradient methods on small generated tasks: PCGrad, GCond, AdAdaGrad, Sven.

Logic in ``train.py`` (importable); this file only parses flags. Writes
``metrics.jsonl``, ``<experiment>_summary.json`` and ``<experiment>.png`` to --workdir.

Full size (the numbers in docs/multitask.md), CPU:

    PYTHONPATH=. python examples/multitask/main.py --workdir /tmp/multitask

One experiment: ``--experiments=sven``. Tiny size (tests): see tests/test_multitask_example.py.
"""

from __future__ import annotations

import json
import pathlib
import sys

if __package__ in (None, ""):  # run by path: make the `examples` package importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from absl import app
from absl import flags

from examples.multitask import train

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/gradkit_multitask", "Where outputs are written.")
flags.DEFINE_list("experiments", list(train.EXPERIMENTS), "Which experiments to run.")
flags.DEFINE_integer("seed", 0, "Seed of data and init.")
flags.DEFINE_integer("log_every", 25, "Steps per logged row (GCond).")
# PCGrad toy
flags.DEFINE_integer("toy_steps", 50_000, "Adam steps per toy trajectory.")
flags.DEFINE_list("toy_starts", ["-8.5:7.5", "9:9", "0:0"], "Starting points x:y.")
flags.DEFINE_float("learning_rate_toy", 1e-3, "Adam learning rate on the toy.")
# GCond toy
flags.DEFINE_integer("gcond_steps", 600, "Optimizer steps.")
flags.DEFINE_integer("gcond_micro_batches", 4, "Micro-batches accumulated per step.")
flags.DEFINE_integer("gcond_micro_batch_size", 32, "Samples per micro-batch.")
flags.DEFINE_integer("gcond_hidden", 32, "Trunk width.")
flags.DEFINE_float("gcond_learning_rate", 3e-3, "Adam learning rate (b1 = 0 with GCond).")
flags.DEFINE_integer("gcond_seeds", 3, "Minibatch seeds per mode.")
# AdAdaGrad
flags.DEFINE_integer("ada_steps", 300, "Optimizer steps.")
flags.DEFINE_integer("ada_num_samples", 8192, "Generated training samples.")
flags.DEFINE_integer("ada_initial_batch", 8, "Initial (and fixed-run) batch size.")
flags.DEFINE_integer("ada_max_batch", 2048, "Largest batch.")
flags.DEFINE_integer("ada_hidden", 64, "Hidden width of the classifier.")
flags.DEFINE_float("ada_center_scale", 0.5, "Std of the class centers (overlap).")
flags.DEFINE_float("ada_learning_rate", 0.1, "AdaGrad learning rate.")
flags.DEFINE_enum("ada_optimizer", "adagrad", ["adagrad", "adagrad_norm"], "Optimizer.")
flags.DEFINE_enum("ada_test", "norm", list(train.gradkit.ADADAGRAD_TESTS), "Batch-size test.")
flags.DEFINE_float("ada_eta", 0.5, "Norm-test η (the paper: 0.1 on MNIST, 0.5 on CIFAR-10).")
flags.DEFINE_float("ada_theta", 0.5, "Inner-product-test θ.")
flags.DEFINE_float("ada_nu", 1.0, "Orthogonality-test ν.")
flags.DEFINE_float("ada_target_loss", 1.0, "Full-data train loss to reach.")
flags.DEFINE_integer("ada_eval_every", 5, "Steps per full-data evaluation.")
# Sven
flags.DEFINE_list("sven_methods", ["adam", "sven"], "Optimizers on the regression.")
flags.DEFINE_integer("sven_epochs", 100, "Epochs.")
flags.DEFINE_integer("sven_num_train", 10_000, "Train (and val) points.")
flags.DEFINE_integer("sven_batch_size", 128, "Batch size.")
flags.DEFINE_float("sven_learning_rate", 0.1, "Sven learning rate.")
flags.DEFINE_integer("sven_k", 64, "Singular values kept.")
flags.DEFINE_float("sven_rtol", 1e-3, "Relative singular-value cut.")
flags.DEFINE_float("adam_learning_rate", 1e-3, "Adam learning rate (Sven comparison).")


def main(argv):
    del argv
    summaries = train.train_and_evaluate(FLAGS, FLAGS.workdir)
    print(json.dumps(summaries, indent=1))


if __name__ == "__main__":
    app.run(main)
