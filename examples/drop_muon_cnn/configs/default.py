# SPDX-License-Identifier: Apache-2.0
"""Default configuration of the drop_muon_cnn example (``python -m examples.drop_muon_cnn.main``).

Every field can be overridden on the command line: ``--config.<field>=<value>``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """The configuration of the drop_muon_cnn example."""
    config = ml_collections.ConfigDict()
    config.channels = (16, 32, 64)
    config.image_size = 28
    config.num_classes = 10
    config.num_train = 8192
    config.noise = 0.6
    config.batch_size = 256
    config.num_steps = 300
    config.learning_rate = 0.05  # Muon matrices (conv kernels, head)
    config.adam_learning_rate = 3e-3  # biases
    config.target_accuracy = 0.9  # training accuracy (EMA of batch accuracy) to reach
    config.log_interval = 10
    config.seed = 0
    config.progress = True
    return config
