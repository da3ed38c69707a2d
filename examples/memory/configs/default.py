# SPDX-License-Identifier: Apache-2.0
"""Default configuration of the memory example (``python -m examples.memory.main``).

The reference LM's fields (:mod:`examples.lm.configs.default`) plus the methods compared.
"""

import ml_collections

from examples.lm.configs import default as lm_default


def get_config() -> ml_collections.ConfigDict:
    """The LM defaults (the demo's 600 steps) and the methods of the main table."""
    config = lm_default.get_config()
    # Methods among examples.memory.train.ALL_METHODS (the main table: METHODS), on the
    # command line as a tuple literal: --config.methods='("adamw", "frugal")'.
    config.methods = ("adamw", "adamw_8bit", "frugal", "fira", "fira_lr1e-2")
    return config
