# SPDX-License-Identifier: Apache-2.0
"""Default configuration of the lion_vs_adamw example (``python -m examples.lion_vs_adamw.main``).

Every field can be overridden on the command line: ``--config.<field>=<value>``.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    """Lion vs AdamW (defaults: the README's run)."""
    config = ml_collections.ConfigDict()
    config.steps = 2000  # training steps per optimizer
    config.batch_size = 128
    config.num_test = 2048  # held-out examples
    config.width = 128  # hidden width of the student MLP
    config.adamw_lr = 3e-3
    config.adamw_wd = 1e-2
    config.lion_lr = 3e-4  # paper: 3-10x below AdamW's
    config.lion_wd = 1e-1  # paper: 3-10x above AdamW's
    config.eval_interval = 50  # evaluate every this many steps
    config.seed = 0  # data, init and batches
    config.progress = True  # tqdm progress bars
    return config
