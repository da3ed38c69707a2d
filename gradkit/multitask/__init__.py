"""Several gradients at once: per-task (PCGrad, GCond) and per-sample (AdAdaGrad, Sven).

* :func:`pcgrad`: PCGrad gradient surgery over per-task gradients (Yu et al., 2020,
  arXiv 2001.06782; reference ``tianheyu927/PCGrad``, MIT).
* :func:`gcond` / :func:`gcond_accumulate`: GCond's arbitrated, angle-remapped conflict
  resolution with momentum, and its classical/stochastic accumulation (Limarenko et al.,
  2025, arXiv 2509.07252; reference ``AlevLab-dev/GCond``, no licence: facts only).
* :func:`adadagrad_batch_size` (+ statistics helpers, :class:`AdaptiveBatchSize`) and
  :func:`adagrad_norm`: AdAdaGrad's adaptive batch-size tests from per-sample gradients
  (Lau, Liu, Kolar, 2024, arXiv 2402.11215; reference ``timlautk/AdAdaGrad``, MIT).
* :func:`scale_by_sven` / :func:`sven`: Sven's truncated-SVD pseudo-inverse step from the
  per-sample residuals' Jacobian (Bright-Thonney et al., 2026, arXiv 2604.01279;
  reference ``sambt/sven``, no licence: facts only).

Every transform here takes *stacked* gradients: a leading task or sample axis on every
leaf, as produced by ``jax.vmap(jax.grad(...))`` or ``jax.jacrev``.
"""

from gradkit.multitask._adadagrad import TEST_NAMES as ADADAGRAD_TESTS
from gradkit.multitask._adadagrad import AdaptiveBatchSize
from gradkit.multitask._adadagrad import PerSampleStatistics
from gradkit.multitask._adadagrad import ScaleByAdaGradNormState
from gradkit.multitask._adadagrad import adadagrad_batch_size
from gradkit.multitask._adadagrad import adadagrad_batch_size_from_statistics
from gradkit.multitask._adadagrad import adadagrad_variances
from gradkit.multitask._adadagrad import adagrad_norm
from gradkit.multitask._adadagrad import bucket_batch_size
from gradkit.multitask._adadagrad import per_sample_statistics
from gradkit.multitask._adadagrad import per_sample_statistics_from_loss
from gradkit.multitask._adadagrad import scale_by_adagrad_norm
from gradkit.multitask._gcond import GCondState
from gradkit.multitask._gcond import effective_angle as gcond_effective_angle
from gradkit.multitask._gcond import gcond
from gradkit.multitask._gcond import gcond_accumulate
from gradkit.multitask._pcgrad import PCGradState
from gradkit.multitask._pcgrad import pcgrad
from gradkit.multitask._sven import ScaleBySvenState
from gradkit.multitask._sven import scale_by_sven
from gradkit.multitask._sven import sven
from gradkit.multitask._sven import sven_direction

__all__ = (
    "ADADAGRAD_TESTS",
    "AdaptiveBatchSize",
    "GCondState",
    "PCGradState",
    "PerSampleStatistics",
    "ScaleByAdaGradNormState",
    "ScaleBySvenState",
    "adadagrad_batch_size",
    "adadagrad_batch_size_from_statistics",
    "adadagrad_variances",
    "adagrad_norm",
    "bucket_batch_size",
    "gcond",
    "gcond_accumulate",
    "gcond_effective_angle",
    "pcgrad",
    "per_sample_statistics",
    "per_sample_statistics_from_loss",
    "scale_by_adagrad_norm",
    "scale_by_sven",
    "sven",
    "sven_direction",
)
