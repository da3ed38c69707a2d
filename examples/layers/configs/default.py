# SPDX-License-Identifier: Apache-2.0
"""Default configuration of the layers example (``python -m examples.layers.main``).

Every field can be overridden on the command line: ``--config.<field>=<value>``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """Every knob of the three experiments (full size: about 4 CPU-minutes)."""
    config = ml_collections.ConfigDict()
    config.experiments = ("tract", "reste", "ghost_bn")
    config.seeds = 2
    config.image_size = 16
    config.num_classes = 10
    config.num_train = 2048
    config.num_test = 1024
    config.noise = 0.4
    config.batch_size = 128
    # TrAct
    config.tract_epochs = 10
    config.tract_target = 0.85
    config.tract_lam = 0.1
    config.tract_optimizers = ("sgd:0.08", "adam:0.003")
    config.tract_input_scales = (1.0, 0.1)
    config.width = 32
    # ReSTE
    config.reste_epochs = 20
    config.reste_hidden = 128
    config.reste_lr = 0.1
    config.reste_fixed_o = (1.0, 1.5, 2.0, 3.0, 5.0)
    config.reste_o_end = 3.0
    config.reste_noise = 2.0  # pixel noise of the template data (σ = 2·reste_noise)
    # Ghost BN
    config.gbn_epochs = 10
    config.gbn_large_batch = 512
    config.gbn_ghost = 128
    config.gbn_lr = 0.05
    return config
