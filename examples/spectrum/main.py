r"""Curvature diagnostics: edge of stability and bulk + outliers (flags only; logic in train.py).

Edge of stability (Cohen et al. 2021, arXiv 2103.00065; Cohen et al. 2022, arXiv
2207.14484): full-batch GD / Adam on a tanh MLP (20 → 64 → 64 → 10, squared loss) on a
generated 10-class Gaussian mixture, sharpness measured every 50 steps by Lanczos through
:func:`gradkit.track_sharpness`. The runs of docs/spectrum.md (from the repository root)::

  python examples/spectrum/main.py --experiment=eos --optimizer=gd --learning_rate=0.2
  python examples/spectrum/main.py --experiment=eos --optimizer=gd --learning_rate=0.3
  python examples/spectrum/main.py --experiment=eos --optimizer=adam --learning_rate=0.001
  python examples/spectrum/main.py --experiment=eos --optimizer=adam --learning_rate=0.003
  python examples/spectrum/main.py --experiment=eos_plot   # eos.png from the four runs

Bulk + outliers (Sagun et al. 2017, arXiv 1706.04454): top-30 Hessian eigenvalues and the
SLQ density of a small classifier trained on C-class Gaussian mixtures, C = 2, 4, …, 10::

  python examples/spectrum/main.py --experiment=outliers

Writes ``<workdir>/<run>/metrics.jsonl`` and ``summary.json`` per run, and the plots
``<workdir>/eos.png`` / ``<workdir>/outliers/outliers.png``. Tiny size (the test)::

  python examples/spectrum/main.py --experiment=eos --num_steps=40 --sharpness_every=20 \
      --width=8 --num_examples=64
"""

from __future__ import annotations

import glob
import json
import os
import pathlib
import sys

if __package__ in (None, ""):  # run by path: make the `examples` package importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from absl import app
from absl import flags

from examples.spectrum import train

FLAGS = flags.FLAGS
flags.DEFINE_enum("experiment", "eos", ["eos", "eos_plot", "outliers"], "What to run.")
flags.DEFINE_string("workdir", "/tmp/gradkit_spectrum", "Output folder.")
flags.DEFINE_enum("optimizer", "gd", ["gd", "adam"], "eos: full-batch optimizer.")
flags.DEFINE_float("learning_rate", 0.2, "eos: learning rate η.")
flags.DEFINE_float("b1", 0.9, "eos: Adam β₁.")
flags.DEFINE_integer("num_steps", 6000, "eos: full-batch steps.")
flags.DEFINE_integer("sharpness_every", 50, "eos: steps between sharpness measurements.")
flags.DEFINE_integer("lanczos_iterations", None,
                     "Lanczos steps (eos: per measurement, default 20; outliers: default 60).")
flags.DEFINE_integer("num_examples", 1000, "Generated training examples.")
flags.DEFINE_integer("width", 64, "eos: MLP width (outliers: its own default, 32).")
flags.DEFINE_list("classes", ["2", "4", "6", "8", "10"], "outliers: numbers of classes C.")
flags.DEFINE_integer("train_steps", 200, "outliers: GD-with-momentum steps before measuring.")
flags.DEFINE_integer("num_top", 30, "outliers: top eigenvalues computed (Lanczos).")
flags.DEFINE_bool("progress", True, "Show a tqdm progress bar.")


def main(argv):
    del argv
    if FLAGS.experiment == "eos":
        config = train.EoSConfig(
            optimizer=FLAGS.optimizer, learning_rate=FLAGS.learning_rate, b1=FLAGS.b1,
            num_steps=FLAGS.num_steps, sharpness_every=FLAGS.sharpness_every,
            lanczos_iterations=FLAGS.lanczos_iterations or 20,
            num_examples=FLAGS.num_examples,
            width=FLAGS.width)
        workdir = os.path.join(FLAGS.workdir, f"eos_{FLAGS.optimizer}_lr{FLAGS.learning_rate:g}")
        summary = train.edge_of_stability(config, workdir, progress=FLAGS.progress)
        train.plot_edge_of_stability([workdir], os.path.join(workdir, "eos.png"))
    elif FLAGS.experiment == "eos_plot":
        runs = sorted(glob.glob(os.path.join(FLAGS.workdir, "eos_*", "summary.json")))
        workdirs = [os.path.dirname(r) for r in runs]
        train.plot_edge_of_stability(workdirs, os.path.join(FLAGS.workdir, "eos.png"))
        summary = {os.path.basename(w): json.load(open(r))["plateau_over_threshold"]
                   for w, r in zip(workdirs, runs, strict=True)}
    else:
        config = train.OutliersConfig(
            classes=tuple(int(c) for c in FLAGS.classes), num_examples=FLAGS.num_examples,
            train_steps=FLAGS.train_steps, num_top=FLAGS.num_top,
            lanczos_iterations=FLAGS.lanczos_iterations or 60,
            slq_iterations=FLAGS.lanczos_iterations or 60)
        summary = train.bulk_outliers(config, os.path.join(FLAGS.workdir, "outliers"),
                                      progress=FLAGS.progress)
    summary = {k: v for k, v in summary.items() if k != "config"}
    print(json.dumps(summary))


if __name__ == "__main__":
    app.run(main)
