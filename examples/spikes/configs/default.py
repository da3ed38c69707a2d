# SPDX-License-Identifier: Apache-2.0
"""Default configuration of the spikes example (``python -m examples.spikes.main``).

Every field can be overridden on the command line: ``--config.<field>=<value>``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """One fault-injection comparison (defaults: the README's run, ~1 min on a CPU)."""
    config = ml_collections.ConfigDict()
    config.steps = 3000  # training steps
    config.spike_first = 150  # first step (0-based) with an injected spike
    config.spike_interval = 300  # steps between spikes (0: no spikes)
    config.spike_scales = (1e3, 1e4, 1e5, 1e6)  # spike factors, cycled
    config.learning_rate = 1e-3  # learning rate of every optimizer
    config.optimizers = ("adam", "spam", "stable_spam")  # see make_optimizer
    config.hidden = 64  # hidden width of the MLP
    config.num_samples = 1024  # generated training samples
    config.batch_size = 64  # minibatch size
    config.log_interval = 25  # steps per logged row (and per jitted chunk)
    config.seed = 0  # seed of data, init and minibatches
    config.also_clean = True  # also train each optimizer without spikes
    config.progress = True  # tqdm progress bars
    return config
