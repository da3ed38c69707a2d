"""Several gradients at once: per-task (PCGrad, GCond) and per-sample (AdAdaGrad, Sven).

* :func:`pcgrad`: PCGrad gradient surgery over per-task gradients (Yu et al., 2020,
  arXiv 2001.06782; reference ``tianheyu927/PCGrad``, MIT).

Every transform here takes *stacked* gradients: a leading task or sample axis on every
leaf, as produced by ``jax.vmap(jax.grad(...))`` or ``jax.jacrev``.
"""

from gradkit.multitask._pcgrad import PCGradState
from gradkit.multitask._pcgrad import pcgrad

__all__ = (
    "PCGradState",
    "pcgrad",
)
