r"""Backprop-free byte-level language modelling with EGGROLL (toy scale).

Flags only; the logic is ``examples/eggroll_lm/train.py``. Writes ``metrics.jsonl``,
``final.json`` and ``loss.png`` to ``--workdir`` and prints the final result::

    python examples/eggroll_lm/main.py --workdir=/tmp/eggroll_lm
    python examples/eggroll_lm/main.py --data_path=/path/to/text.txt

(``python -m examples.eggroll_lm.main ...`` works too.)
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

from examples.eggroll_lm import train

C = train.Config
FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/eggroll_lm", "Where metrics and plots go.")
flags.DEFINE_integer("steps", C.steps, "ES steps.")
flags.DEFINE_integer("population", C.population, "Population size N (even).")
flags.DEFINE_float("sigma", C.sigma, "Perturbation scale σ.")
flags.DEFINE_integer("rank", C.rank, "Rank r of the matrix perturbations.")
flags.DEFINE_float("learning_rate", C.learning_rate, "Adam learning rate.")
flags.DEFINE_integer("features", C.features, "Model width.")
flags.DEFINE_integer("depth", C.depth, "minGRU layers.")
flags.DEFINE_integer("batch", C.batch, "Sequences per step (shared by all members).")
flags.DEFINE_integer("seq_len", C.seq_len, "Bytes (characters) per sequence.")
flags.DEFINE_integer("eval_every", C.eval_every, "Held-out evaluation period (steps).")
flags.DEFINE_integer("seed", C.seed, "Seed of init, noise, data order and generated corpus.")
flags.DEFINE_string("data_path", C.data_path,
                    "Local text file or directory (default: generated).")
flags.DEFINE_integer("corpus_bytes", C.corpus_bytes, "Size of the generated corpus.")
flags.DEFINE_enum("head_bias_init", C.head_bias_init, ["unigram", "zeros"],
                  "Head bias at init: the training data's log unigram prior, or zeros.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = train.Config(**{f.name: getattr(FLAGS, f.name)
                             for f in dataclasses.fields(train.Config)})
    result = train.train_and_evaluate(config, FLAGS.workdir)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(main)
