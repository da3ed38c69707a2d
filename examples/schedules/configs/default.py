# SPDX-License-Identifier: Apache-2.0
"""Default configuration of the schedules example (``python -m examples.schedules.main``).

The reference LM's fields (:mod:`examples.lm.configs.default`; here logged every step and
evaluated every 10) plus the experiments'.
"""

import ml_collections

from examples.lm.configs import default as lm_default


def get_config() -> ml_collections.ConfigDict:
    """The 10 runs of docs/schedules.md (4,800 steps in all)."""
    config = lm_default.get_config()
    config.log_interval = 1  # the law and the refinement need per-step values
    config.eval_interval = 10
    config.num_budgets = 3  # budgets T/n, 2T/n, ..., T (T = num_steps)
    config.decay_fraction = 0.2  # WSD: decay steps / budget; WSD-S: per cycle
    config.decay_shape = "linear"  # decay shape of WSD and WSD-S (gradkit.schedules)
    config.final_fraction = 0.1  # floor of WSD/WSD-S as a fraction of the peak
    config.refine_tau = 0.1  # median-filter width of refined_schedule (fraction)
    config.decay_factor = 0.999  # λ of the annealing law's S2
    # Also refit the law for λ in {0.999, 0.99, 0.95, 0.9} and from step T/3.
    config.law_sensitivity = False
    config.reuse = False  # load finished runs from workdir instead of training them
    return config
