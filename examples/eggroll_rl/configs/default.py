# SPDX-License-Identifier: Apache-2.0
"""Default configuration of the eggroll_rl example (``python -m examples.eggroll_rl.main``).

Every field can be overridden on the command line: ``--config.<field>=<value>``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """One EGGROLL RL run (defaults: CartPole-v1, the README's run)."""
    config = ml_collections.ConfigDict()
    config.env = "CartPole-v1"  # gymnax environment id (CartPole-v1, Acrobot-v1, Pendulum-v1)
    config.generations = 60  # ES generations (optimizer steps)
    config.population = 64  # population size N (even: antithetic pairs)
    config.sigma = 0.1  # perturbation scale σ
    config.rank = 1  # rank r of the matrix perturbations
    config.learning_rate = 0.03  # learning rate of the optimizer after the ES estimate
    config.optimizer = "adam"
    config.fitness_shaping = "zscore"
    config.hidden = (64, 64)  # hidden widths of the MLP policy
    config.max_steps = 0  # episode length cap (0: the environment's own)
    config.eval_interval = 5  # evaluate the mean policy every this many generations
    config.eval_episodes = 100  # episodes of the final evaluation
    config.seed = 0  # seed of the policy init, the ES noise and the episodes
    config.progress = True  # tqdm progress bars
    return config
