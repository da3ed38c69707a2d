"""Memory-efficient optimizer state: FRUGAL, Fira and the norm-growth limiter.

* :func:`scale_by_frugal` / :func:`frugal`: FRUGAL (Zmushko et al., 2025, arXiv
  2411.07837): Adam on a state-full subspace, signSGD on the rest;
* :func:`scale_by_fira` / :func:`fira`: Fira (Chen et al., 2024, arXiv 2410.01623):
  low-rank Adam plus a norm-scaled full-rank residual;
* :func:`limit_norm_growth`: Fira's norm-growth limiter for any optimizer.

See ``docs/memory.md``.
"""

from gradkit.memory._fira import ScaleByFiraState
from gradkit.memory._fira import fira
from gradkit.memory._fira import scale_by_fira
from gradkit.memory._frugal import ScaleByFrugalState
from gradkit.memory._frugal import frugal
from gradkit.memory._frugal import scale_by_frugal
from gradkit.memory._limiter import LimitNormGrowthState
from gradkit.memory._limiter import limit_norm_growth

__all__ = (
    "LimitNormGrowthState",
    "ScaleByFiraState",
    "ScaleByFrugalState",
    "fira",
    "frugal",
    "limit_norm_growth",
    "scale_by_fira",
    "scale_by_frugal",
)
