# SPDX-License-Identifier: Apache-2.0
"""Default configuration of the Muon/AuON LM example (``python -m examples.muon_lm.main``).

The reference LM's fields (:mod:`examples.lm.configs.default`) plus the grid's.
"""

import ml_collections

from examples.lm.configs import default as lm_default


def get_config() -> ml_collections.ConfigDict:
    """The LM defaults, the methods (each at its 3-point grid) and the target loss."""
    config = lm_default.get_config()
    # Methods among examples.muon_lm.train.GRIDS, on the command line as a tuple literal:
    # --config.methods='("auon", "contrib.muon")'.
    config.methods = ("adamw", "contrib.muon", "auon", "frob_nesterov")
    # Learning rates used for every method instead of its grid (empty: the grids).
    config.grid_override = ()
    config.target_val_loss = 2.0  # validation loss whose first crossing is reported
    return config
