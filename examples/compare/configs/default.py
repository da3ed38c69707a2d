# SPDX-License-Identifier: Apache-2.0
"""Default configuration of gradkit's main demo (``python -m examples.compare.main``).

The reference LM's fields (:mod:`examples.lm.configs.default`) plus the comparison's own.
"""

import ml_collections

from examples.lm.configs import default as lm_default


def get_config() -> ml_collections.ConfigDict:
    """The LM defaults, the optimizers compared and the target validation loss."""
    config = lm_default.get_config()
    # Optimizer names (gradkit first, then optax), on the command line as a tuple literal:
    # --config.optimizers='("adamw", "lion")'.
    config.optimizers = ("adamw", "lion", "spam", "sophia")
    # Per-optimizer peak learning rates, e.g. --config.learning_rates='{"lion": 3e-4}';
    # unset ones use config.learning_rate, else trainer.OPTIMIZER_DEFAULTS.
    config.learning_rates = {}
    config.target_val_loss = 0.8  # validation loss whose first crossing is reported
    return config
