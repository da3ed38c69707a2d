# SPDX-License-Identifier: Apache-2.0
r"""Learning-rate schedules on the reference byte-level LM: WSD-S, WSD, cosine, the
annealing law and refined schedules (gradkit.schedules).

From the repository root::

  python -m examples.schedules.main                     # 10 runs, 4,800 steps
  python -m examples.schedules.main --config.reuse --config.law_sensitivity  # tables again
                                                                             # + λ sensitivity

The three claims tested and the outputs are described in ``examples/schedules/train.py``;
the configuration is ``examples/schedules/configs/default.py`` (the LM's fields plus the
experiments').
"""

import pathlib

from absl import app
from absl import flags
from ml_collections import config_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/gradkit_schedules", "Output directory.")
config_flags.DEFINE_config_file(
    "config", str(pathlib.Path(__file__).parent / "configs" / "default.py"),
    "Experiment configuration.", lock_config=True)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from examples.schedules import train  # imports JAX

    s = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    T = FLAGS.config.num_steps
    print("\nValidation loss at each budget:\n" + s["budget_table"])
    p = s["law"]["params"]
    print(f"\nAnnealing law fit on {s['law']['fit_on']}: L0={p['L0']:.4f} A={p['A']:.4f} "
          f"alpha={p['alpha']:.4f} C={p['C']:.4f}\n" + s["law_table"])
    refined, cosine = s["refined"]["refined"], s["refined"][f"cosine_{T}"]
    print(f"\nRefined from cosine_{T}'s gradient ℓ1 norms: final val loss "
          f"{refined['final_val_loss']:.4f} vs cosine {cosine['final_val_loss']:.4f}")
    if "law_sensitivity_table" in s:
        print("\nLaw: mean abs(ΔL) of the predicted curves (secondary analysis):\n"
              + s["law_sensitivity_table"])
    print("plots: " + ", ".join(s["plots"]))


if __name__ == "__main__":
    app.run(main)
