r"""Learning-rate schedules on the reference byte-level LM: WSD-S, WSD, cosine, the
annealing law and refined schedules (gradkit.schedules).

From the repository root::

  python examples/schedules/main.py                           # 10 runs, 4,800 steps
  python examples/schedules/main.py --reuse --law_sensitivity  # tables again + λ sensitivity

The three claims tested and the outputs are described in ``examples/schedules/train.py``;
the model, data and loop flags are the LM's (``--help`` lists them all).
"""

from __future__ import annotations

import pathlib
import sys

if __package__ in (None, ""):  # run by path: make the `examples` package importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from absl import app
from absl import flags

import gradkit
from examples.lm import cli
from examples.schedules import train as schedules_lib

cli.define_flags()
flags.DEFINE_integer("num_budgets", 3, "Budgets T/n, 2T/n, ..., T (T = --num_steps).")
flags.DEFINE_float("decay_fraction", 0.2, "WSD: decay steps / budget; WSD-S: per cycle.")
flags.DEFINE_enum("decay_shape", "linear", list(gradkit.schedules.DECAY_SHAPES),
                  "Decay shape of WSD and WSD-S.")
flags.DEFINE_float("final_fraction", 0.1, "Floor of WSD/WSD-S as a fraction of the peak.")
flags.DEFINE_float("refine_tau", 0.1, "Median-filter width of refined_schedule (fraction).")
flags.DEFINE_float("decay_factor", 0.999, "λ of the annealing law's S2.")
flags.DEFINE_bool("law_sensitivity", False,
                  "Also refit the law for λ in {0.999, 0.99, 0.95, 0.9} and from step T/3.")
flags.DEFINE_bool("reuse", False, "Load finished runs from workdir instead of training.")
flags.adopt_module_key_flags(cli)
FLAGS = flags.FLAGS
FLAGS.set_default("workdir", "/tmp/gradkit_schedules")
FLAGS.set_default("eval_every", 10)
FLAGS.set_default("log_every", 1)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    base = cli.config_from_flags(FLAGS)
    s = schedules_lib.run_all(
        base, FLAGS.workdir, num_budgets=FLAGS.num_budgets, decay_fraction=FLAGS.decay_fraction,
        decay_shape=FLAGS.decay_shape, final_fraction=FLAGS.final_fraction,
        refine_tau=FLAGS.refine_tau, decay_factor=FLAGS.decay_factor, reuse=FLAGS.reuse,
        sensitivity=FLAGS.law_sensitivity)
    T = base.num_steps
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
