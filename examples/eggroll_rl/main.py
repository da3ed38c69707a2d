r"""EGGROLL on a gymnax environment (CartPole-v1 by default) with an MLP policy.

Flags only; the logic is ``examples/eggroll_rl/train.py``. Writes ``metrics.jsonl``,
``final.json`` and ``learning_curve.png`` to ``--workdir`` and prints the final result::

    python examples/eggroll_rl/main.py --workdir=/tmp/eggroll_rl

(``python -m examples.eggroll_rl.main ...`` works too.)
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

from examples.eggroll_rl import train

C = train.Config
FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/eggroll_rl", "Where metrics and plots go.")
flags.DEFINE_string("env", C.env, "gymnax environment id (CartPole-v1, Acrobot-v1, "
                    "Pendulum-v1).")
flags.DEFINE_integer("generations", C.generations, "ES generations (optimizer steps).")
flags.DEFINE_integer("population", C.population, "Population size N (even: antithetic pairs).")
flags.DEFINE_float("sigma", C.sigma, "Perturbation scale σ.")
flags.DEFINE_integer("rank", C.rank, "Rank r of the matrix perturbations.")
flags.DEFINE_float("learning_rate", C.learning_rate, "Adam learning rate.")
flags.DEFINE_enum("optimizer", C.optimizer, ["adam", "sgd"],
                  "Optimizer after the ES estimate.")
flags.DEFINE_enum("fitness_shaping", C.fitness_shaping, ["zscore", "centered_rank", "raw"],
                  "Fitness shaping.")
flags.DEFINE_list("hidden", [str(h) for h in C.hidden], "Hidden widths of the MLP policy.")
flags.DEFINE_integer("max_steps", C.max_steps, "Episode length cap (0: the environment's own).")
flags.DEFINE_integer("eval_every", C.eval_every,
                     "Evaluate the mean policy every this many generations.")
flags.DEFINE_integer("eval_episodes", C.eval_episodes, "Episodes of the final evaluation.")
flags.DEFINE_integer("seed", C.seed, "Seed of the policy init, the ES noise and the episodes.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    values = {f.name: getattr(FLAGS, f.name) for f in dataclasses.fields(train.Config)}
    values["hidden"] = tuple(int(h) for h in FLAGS.hidden)
    result = train.train_and_evaluate(train.Config(**values), FLAGS.workdir)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(main)
