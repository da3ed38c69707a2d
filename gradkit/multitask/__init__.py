# SPDX-License-Identifier: Apache-2.0
"""Several gradients at once: per-task (PCGrad, GCond) and per-sample residuals (Sven).

* :func:`pcgrad`: PCGrad gradient surgery over per-task gradients (Yu et al., 2020,
  arXiv 2001.06782; reference ``tianheyu927/PCGrad``, MIT).
* :func:`gcond` / :func:`gcond_accumulate`: GCond's arbitrated, angle-remapped conflict
  resolution with momentum, and its classical/stochastic accumulation (Limarenko et al.,
  2025, arXiv 2509.07252; reference ``AlevLab-dev/GCond``, no licence: facts only).
* :func:`scale_by_sven` / :func:`sven`: Sven's truncated-SVD pseudo-inverse step from the
  per-sample residuals' Jacobian (Bright-Thonney et al., 2026, arXiv 2604.01279;
  reference ``sambt/sven``, no licence: facts only).

Every transform here takes *stacked* gradients: a leading task or sample axis on every
leaf, as produced by ``jax.vmap(jax.grad(...))`` or ``jax.jacrev``. AdAdaGrad's batch-size
tests live in ``gradkit.persample``, AdaGrad-Norm in ``gradkit.stepsize``.
"""

from gradkit.multitask._gcond import GCondState
from gradkit.multitask._gcond import gcond
from gradkit.multitask._gcond import gcond_accumulate
from gradkit.multitask._gcond import gcond_effective_angle
from gradkit.multitask._pcgrad import PCGradState
from gradkit.multitask._pcgrad import pcgrad
from gradkit.multitask._sven import ScaleBySvenState
from gradkit.multitask._sven import scale_by_sven
from gradkit.multitask._sven import sven
from gradkit.multitask._sven import sven_direction

__all__ = (
    "GCondState",
    "PCGradState",
    "ScaleBySvenState",
    "gcond",
    "gcond_accumulate",
    "gcond_effective_angle",
    "pcgrad",
    "scale_by_sven",
    "sven",
    "sven_direction",
)
