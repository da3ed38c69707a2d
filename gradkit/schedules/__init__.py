# SPDX-License-Identifier: Apache-2.0
"""Learning-rate schedules: WSD, WSD-S, refined schedules, the annealing scaling law.

- :func:`wsd_schedule`, :func:`wsd_s_schedule` (``wsd.py``): Warmup-Stable-Decay
  (MiniCPM, arXiv 2404.06395) and its multi-budget variant WSD-S (Wen et al., arXiv
  2410.05192; semantics of levanter's scheduler).
- :func:`refined_schedule` (``refined.py``): Defazio et al., arXiv 2310.07831.
- :func:`annealing_law_areas`, :func:`fit_annealing_law`, :func:`predict_annealing_law`
  (``annealing_law.py``): Tissue et al., arXiv 2408.11029.

All schedules are plain ``optax.Schedule`` callables. Notes, checks against the
references and measured results: ``docs/schedules.md``.
"""

from gradkit.schedules.annealing_law import AnnealingAreas
from gradkit.schedules.annealing_law import AnnealingLawFit
from gradkit.schedules.annealing_law import AnnealingLawParams
from gradkit.schedules.annealing_law import annealing_law_areas
from gradkit.schedules.annealing_law import fit_annealing_law
from gradkit.schedules.annealing_law import predict_annealing_law
from gradkit.schedules.refined import refined_schedule
from gradkit.schedules.refined import refined_schedule_values
from gradkit.schedules.wsd import DECAY_SHAPES
from gradkit.schedules.wsd import decay_shape_fn
from gradkit.schedules.wsd import wsd_s_cycle_points
from gradkit.schedules.wsd import wsd_s_schedule
from gradkit.schedules.wsd import wsd_schedule

__all__ = (
    "DECAY_SHAPES",
    "AnnealingAreas",
    "AnnealingLawFit",
    "AnnealingLawParams",
    "annealing_law_areas",
    "decay_shape_fn",
    "fit_annealing_law",
    "predict_annealing_law",
    "refined_schedule",
    "refined_schedule_values",
    "wsd_s_cycle_points",
    "wsd_s_schedule",
    "wsd_schedule",
)
