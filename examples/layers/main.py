r"""Layer-level gradient rules on generated images: TrAct, ReSTE, Ghost BatchNorm.

Runs the experiments of ``train.py`` (see its docstring) and writes ``metrics.jsonl``,
``summary.json`` and ``layers.png`` to ``--workdir``. Full size (about 4 CPU-minutes):

    PYTHONPATH=. python examples/layers/main.py --workdir /tmp/layers

One experiment only: ``--experiments=tract`` (or ``reste``, ``ghost_bn``).
"""

from __future__ import annotations

import json
import pathlib
import sys

if __package__ in (None, ""):  # run by path: make the `examples` package importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from absl import app
from absl import flags

from examples.layers import train

_DEFAULTS = train.Config()
FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/gradkit_layers", "Where outputs are written.")
flags.DEFINE_list("experiments", list(_DEFAULTS.experiments), "tract, reste, ghost_bn.")
flags.DEFINE_integer("seeds", _DEFAULTS.seeds, "Seeds (data, init, batches) per setting.")
flags.DEFINE_integer("image_size", _DEFAULTS.image_size, "Image side in pixels.")
flags.DEFINE_integer("num_classes", _DEFAULTS.num_classes, "Orientation classes.")
flags.DEFINE_integer("num_train", _DEFAULTS.num_train, "Training images.")
flags.DEFINE_integer("num_test", _DEFAULTS.num_test, "Test images.")
flags.DEFINE_float("noise", _DEFAULTS.noise, "Pixel noise level.")
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Minibatch size (and ghost base).")
flags.DEFINE_integer("tract_epochs", _DEFAULTS.tract_epochs, "Epochs per TrAct run.")
flags.DEFINE_float("tract_target", _DEFAULTS.tract_target, "Test accuracy target.")
flags.DEFINE_float("tract_lam", _DEFAULTS.tract_lam, "TrAct λ.")
flags.DEFINE_list("tract_optimizers", list(_DEFAULTS.tract_optimizers),
                  "Optimizer settings sgd:LR (momentum 0.9) or adam:LR.")
flags.DEFINE_list("tract_input_scales", [str(c) for c in _DEFAULTS.tract_input_scales],
                  "Input contrast factors (standardised images × c).")
flags.DEFINE_integer("width", _DEFAULTS.width, "CNN width.")
flags.DEFINE_integer("reste_epochs", _DEFAULTS.reste_epochs, "Epochs per binarised-MLP run.")
flags.DEFINE_integer("reste_hidden", _DEFAULTS.reste_hidden, "Binarised MLP width.")
flags.DEFINE_float("reste_lr", _DEFAULTS.reste_lr, "Peak SGD learning rate (cosine).")
flags.DEFINE_list("reste_fixed_o", [str(o) for o in _DEFAULTS.reste_fixed_o],
                  "Fixed powers o for the indicator trade-off.")
flags.DEFINE_float("reste_o_end", _DEFAULTS.reste_o_end, "Final o of the ReSTE schedule.")
flags.DEFINE_integer("gbn_epochs", _DEFAULTS.gbn_epochs, "Epochs per Ghost-BN run.")
flags.DEFINE_integer("gbn_large_batch", _DEFAULTS.gbn_large_batch, "Large batch size.")
flags.DEFINE_integer("gbn_ghost", _DEFAULTS.gbn_ghost, "Ghost batch size.")
flags.DEFINE_float("gbn_lr", _DEFAULTS.gbn_lr, "Small-batch SGD learning rate.")


def main(argv):
    del argv
    cfg = train.Config(
        experiments=tuple(FLAGS.experiments), seeds=FLAGS.seeds, image_size=FLAGS.image_size,
        num_classes=FLAGS.num_classes, num_train=FLAGS.num_train, num_test=FLAGS.num_test,
        noise=FLAGS.noise, batch_size=FLAGS.batch_size, tract_epochs=FLAGS.tract_epochs,
        tract_target=FLAGS.tract_target, tract_lam=FLAGS.tract_lam,
        tract_optimizers=tuple(FLAGS.tract_optimizers),
        tract_input_scales=tuple(float(c) for c in FLAGS.tract_input_scales), width=FLAGS.width,
        reste_epochs=FLAGS.reste_epochs, reste_hidden=FLAGS.reste_hidden,
        reste_lr=FLAGS.reste_lr, reste_fixed_o=tuple(float(o) for o in FLAGS.reste_fixed_o),
        reste_o_end=FLAGS.reste_o_end, gbn_epochs=FLAGS.gbn_epochs,
        gbn_large_batch=FLAGS.gbn_large_batch, gbn_ghost=FLAGS.gbn_ghost, gbn_lr=FLAGS.gbn_lr)
    summary = train.train_and_evaluate(cfg, FLAGS.workdir)
    print(json.dumps(summary, indent=1, default=str))
    for entry in summary.get("tract", {}).get("table", []):
        print(f"| {entry['optimizer']} | ×{entry['input_scale']:g} | "
              f"{entry['plain_median_epochs']} | "
              f"{entry['tract_median_epochs']} |")
    for entry in summary.get("reste", []):
        print(f"| {entry['method']} | {entry['o']} | {entry['final_test_accuracy']:.3f} | "
              f"{entry['fitting_error']:.2f} | {entry['gradient_instability']:.3e} |")


if __name__ == "__main__":
    app.run(main)
