r"""Drop-Muon vs Muon wall clock on a small CNN with generated image-like data.

  python examples/drop_muon_cnn/main.py --workdir=/tmp/drop_muon_cnn
  python examples/drop_muon_cnn/main.py --channels=64,128,256 --batch_size=1024

Prints a JSON summary (steps and seconds to the training-accuracy target, median step
times, their ratio) and writes ``metrics.jsonl``, ``summary.json`` and a plot to
``--workdir``. The logic lives in ``train.py``.
"""

from __future__ import annotations

import json
import pathlib
import sys

if __package__ in (None, ""):  # run by path: make the `examples` package importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from absl import app
from absl import flags

from examples.drop_muon_cnn import train

_D = train.Config()
flags.DEFINE_string("workdir", "/tmp/drop_muon_cnn", "Output directory.")
flags.DEFINE_list("channels", [str(c) for c in _D.channels], "Conv channels per layer.")
flags.DEFINE_integer("num_train", _D.num_train, "Generated training images.")
flags.DEFINE_float("noise", _D.noise, "Pixel noise σ.")
flags.DEFINE_integer("batch_size", _D.batch_size, "Batch size.")
flags.DEFINE_integer("num_steps", _D.num_steps, "Training steps per method.")
flags.DEFINE_float("learning_rate", _D.learning_rate, "Muon learning rate (matrices).")
flags.DEFINE_float("adam_learning_rate", _D.adam_learning_rate, "Adam learning rate (biases).")
flags.DEFINE_float("target_accuracy", _D.target_accuracy, "Training-accuracy target.")
flags.DEFINE_integer("log_every", _D.log_every, "Metrics interval.")
flags.DEFINE_integer("seed", _D.seed, "Seed of data, init and start layers.")
flags.DEFINE_bool("progress", True, "tqdm progress bar.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    cfg = train.Config(
        channels=tuple(int(c) for c in FLAGS.channels), num_train=FLAGS.num_train,
        noise=FLAGS.noise, batch_size=FLAGS.batch_size, num_steps=FLAGS.num_steps,
        learning_rate=FLAGS.learning_rate, adam_learning_rate=FLAGS.adam_learning_rate,
        target_accuracy=FLAGS.target_accuracy, log_every=FLAGS.log_every, seed=FLAGS.seed,
        progress=FLAGS.progress)
    summary = train.train_and_evaluate(cfg, FLAGS.workdir)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    app.run(main)
