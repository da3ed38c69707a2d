# SPDX-License-Identifier: Apache-2.0
r"""Curvature diagnostics: edge of stability and bulk + outliers.

Edge of stability (Cohen et al. 2021, arXiv 2103.00065; Cohen et al. 2022, arXiv
2207.14484): full-batch GD / Adam on a tanh MLP (20 → 64 → 64 → 10, squared loss) on a
generated 10-class Gaussian mixture, sharpness measured every 50 steps by Lanczos through
:func:`gradkit.track_sharpness`. The runs of docs/spectrum.md (from the repository root)::

  python -m examples.spectrum.main --config.eos.optimizer=gd --config.eos.learning_rate=0.2
  python -m examples.spectrum.main --config.eos.optimizer=gd --config.eos.learning_rate=0.3
  python -m examples.spectrum.main --config.eos.optimizer=adam --config.eos.learning_rate=0.001
  python -m examples.spectrum.main --config.eos.optimizer=adam --config.eos.learning_rate=0.003
  python -m examples.spectrum.main --config.experiment=eos_plot   # eos.png from the four runs

Bulk + outliers (Sagun et al. 2017, arXiv 1706.04454): top-30 Hessian eigenvalues and the
SLQ density of a small classifier trained on C-class Gaussian mixtures, C = 2, 4, …, 10::

  python -m examples.spectrum.main --config.experiment=outliers

The configuration is ``examples/spectrum/configs/default.py``; the logic is
``examples/spectrum/train.py``. Writes ``<workdir>/<run>/metrics.jsonl`` and
``summary.json`` per run, and the plots ``<workdir>/eos.png`` /
``<workdir>/outliers/outliers.png``.
"""

import json
import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/gradkit_spectrum", "Output directory.")
config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).parent / "configs" / "default.py"),
    "Experiment configuration.", lock_config=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from examples.spectrum import train  # imports JAX

    summary = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print(json.dumps({k: v for k, v in summary.items() if k != "config"}))


if __name__ == "__main__":
    app.run(main)
