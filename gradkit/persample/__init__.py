# SPDX-License-Identifier: Apache-2.0
"""Per-example gradients: their statistics and AdAdaGrad's adaptive batch-size tests.

* :func:`per_sample_statistics` / :func:`per_sample_statistics_from_loss`
  (:class:`PerSampleStatistics`): B, ‖ḡ‖², Σ‖∇f_i‖², Σ⟨∇f_i, ḡ⟩, Σ⟨∇f_i, ḡ⟩² of a
  batch, the latter without materialising B gradient copies.
* :func:`adadagrad_batch_size` (+ :func:`adadagrad_batch_size_from_statistics`,
  :func:`adadagrad_variances`, :func:`bucket_batch_size`, :class:`AdaptiveBatchSize`):
  AdAdaGrad's norm, inner-product and orthogonality tests (Lau, Liu, Kolar, 2024,
  arXiv 2402.11215; reference ``timlautk/AdAdaGrad``, MIT).

Per-sample gradients come stacked: a leading sample axis on every leaf, as produced by
``jax.vmap(jax.grad(...))``. See ``docs/persample.md``.
"""

from gradkit.persample._adadagrad import ADADAGRAD_TESTS
from gradkit.persample._adadagrad import AdaptiveBatchSize
from gradkit.persample._adadagrad import adadagrad_batch_size
from gradkit.persample._adadagrad import adadagrad_batch_size_from_statistics
from gradkit.persample._adadagrad import adadagrad_variances
from gradkit.persample._adadagrad import bucket_batch_size
from gradkit.persample._statistics import PerSampleStatistics
from gradkit.persample._statistics import per_sample_statistics
from gradkit.persample._statistics import per_sample_statistics_from_loss

__all__ = (
    "ADADAGRAD_TESTS",
    "AdaptiveBatchSize",
    "PerSampleStatistics",
    "adadagrad_batch_size",
    "adadagrad_batch_size_from_statistics",
    "adadagrad_variances",
    "bucket_batch_size",
    "per_sample_statistics",
    "per_sample_statistics_from_loss",
)
