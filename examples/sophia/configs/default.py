# SPDX-License-Identifier: Apache-2.0
"""Default configuration of the Sophia sweep (``python -m examples.sophia.main``).

The reference LM's fields (:mod:`examples.lm.configs.default`; here with gradient clipping
1.0 as in the paper's runs and an evaluation every 25 steps) plus the sweep's. The grids
are tuples, on the command line tuple literals: ``--config.adamw_lrs='(8e-3,)'``.
"""

import ml_collections

from examples.lm.configs import default as lm_default


def get_config() -> ml_collections.ConfigDict:
    """The sweep reported in docs/sophia.md for the unigram head-bias init (16 runs, about
    20 minutes on 2 idle CPU cores); the notebook runs the same at full size."""
    config = lm_default.get_config()
    config.grad_clip = 1.0
    config.eval_interval = 25
    config.adamw_lrs = (2e-3, 4e-3, 8e-3, 1.6e-2)  # AdamW peak learning rates
    config.sophia_g_lrs = (3e-4, 1e-3, 3e-3)  # Sophia-G peak learning rates
    config.sophia_g_gammas = (0.05, 0.5)  # Sophia-G γ values
    config.sophia_h_lrs = (1e-3, 3e-3, 1e-2)  # Sophia-H peak learning rates (empty: none)
    config.sophia_h_gammas = (1.0, 10.0)  # Sophia-H γ values
    config.adamw_b2 = 0.95  # AdamW β₂ (the paper's GPT-2 baselines use 0.95)
    config.weight_decay = 0.1  # decoupled weight decay of every optimizer
    config.update_interval = 10  # Sophia's Hessian refresh period k
    # Sophia's first ĥ at step 1 (paper) or after step k (official code).
    config.refresh_at_start = True
    # Sophia's ratio uses debiased m and h (not in the paper; see scale_by_sophia).
    config.bias_correction = False
    config.target_val_loss = 0.8  # validation loss whose first crossing is reported
    return config
