# SPDX-License-Identifier: Apache-2.0
"""Default configuration of the eggroll_lm example (``python -m examples.eggroll_lm.main``).

Every field can be overridden on the command line: ``--config.<field>=<value>``.
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
    """One EGGROLL LM run (defaults: 300 ES steps on the generated corpus)."""
    config = ml_collections.ConfigDict()
    config.steps = 300  # ES steps
    config.population = 64  # population size N (even)
    config.sigma = 0.02  # perturbation scale σ
    config.rank = 1  # rank r of the matrix perturbations
    config.learning_rate = 0.01  # Adam learning rate
    config.features = 64  # model width
    config.depth = 2  # minGRU layers
    config.batch = 16  # sequences per step (shared by all members)
    config.seq_len = 64  # bytes (characters) per sequence
    config.eval_interval = 25  # held-out evaluation period (steps)
    config.seed = 0  # seed of init, noise, data order and generated corpus
    config.data_path = config_dict.placeholder(str)  # text file or directory; None: generated
    config.corpus_bytes = 200_000  # size of the generated corpus
    # Head bias at init: the training data's log unigram prior, or zeros.
    config.head_bias_init = "unigram"
    config.progress = True  # tqdm progress bars
    return config
