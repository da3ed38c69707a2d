# SPDX-License-Identifier: Apache-2.0
"""Second-order information from Hessian-vector products: Sophia and curvature diagnostics.

Written once for any pytree model and any optax optimizer, on one forward-over-reverse
Hessian-vector product (``_hvp.py``) that every tool below differentiates and reduces
over devices with:

- :func:`hvp` (batched, ``axis_name`` averaging as Sophia's estimators do);
- :func:`hutchinson_diag_hessian`, :func:`gnb_diag_hessian`: diagonal-Hessian estimators
  (``_estimators.py``);
- :func:`scale_by_sophia`, :func:`sophia`, :func:`sophia_extra_args` (Liu et al. 2023,
  arXiv 2305.14342, Algorithm 3; ``_sophia.py``);
- :func:`hessian_top_eigenvalues` (Lanczos or power iteration with deflation),
  :func:`hessian_trace` (Hutchinson), :func:`hessian_spectral_density` (stochastic
  Lanczos quadrature) (``_spectrum.py`` on the Krylov methods of ``_krylov.py``);
- :func:`sharpness`, :func:`preconditioned_sharpness`, :func:`adam_preconditioner`,
  :func:`sophia_preconditioner`, :func:`edge_of_stability_threshold` (Cohen et al. 2021,
  arXiv 2103.00065; Cohen et al. 2022, arXiv 2207.14484) and :func:`track_sharpness`, a
  wrapper that measures them every k steps inside any optax optimizer (``_sharpness.py``).

Derivations, deviations from the official code and measurements: ``docs/sophia.md`` and
``docs/spectrum.md``.
"""

from gradkit.hessian._estimators import GNBDiagHessianState
from gradkit.hessian._estimators import HutchinsonDiagHessianState
from gradkit.hessian._estimators import gnb_diag_hessian
from gradkit.hessian._estimators import hutchinson_diag_hessian
from gradkit.hessian._hvp import hvp
from gradkit.hessian._sharpness import TrackSharpnessState
from gradkit.hessian._sharpness import adam_preconditioner
from gradkit.hessian._sharpness import edge_of_stability_threshold
from gradkit.hessian._sharpness import preconditioned_sharpness
from gradkit.hessian._sharpness import sharpness
from gradkit.hessian._sharpness import sophia_preconditioner
from gradkit.hessian._sharpness import track_sharpness
from gradkit.hessian._sophia import GAMMA_SOPHIA_G
from gradkit.hessian._sophia import GAMMA_SOPHIA_H
from gradkit.hessian._sophia import ScaleBySophiaState
from gradkit.hessian._sophia import scale_by_sophia
from gradkit.hessian._sophia import sophia
from gradkit.hessian._sophia import sophia_extra_args
from gradkit.hessian._spectrum import HessianTrace
from gradkit.hessian._spectrum import SpectralDensity
from gradkit.hessian._spectrum import density_from_nodes
from gradkit.hessian._spectrum import hessian_spectral_density
from gradkit.hessian._spectrum import hessian_top_eigenvalues
from gradkit.hessian._spectrum import hessian_trace

__all__ = (
    "GAMMA_SOPHIA_G",
    "GAMMA_SOPHIA_H",
    "GNBDiagHessianState",
    "HessianTrace",
    "HutchinsonDiagHessianState",
    "ScaleBySophiaState",
    "SpectralDensity",
    "TrackSharpnessState",
    "adam_preconditioner",
    "density_from_nodes",
    "edge_of_stability_threshold",
    "gnb_diag_hessian",
    "hessian_spectral_density",
    "hessian_top_eigenvalues",
    "hessian_trace",
    "hutchinson_diag_hessian",
    "hvp",
    "preconditioned_sharpness",
    "scale_by_sophia",
    "sharpness",
    "sophia",
    "sophia_extra_args",
    "sophia_preconditioner",
    "track_sharpness",
)
