"""Curvature diagnostics: Hessian spectrum, sharpness tracking, edge of stability.

Written once for any pytree model and any optax optimizer, on top of the
forward-over-reverse Hessian-vector product shared with Sophia's estimators
(``gradkit._hvp``):

- :func:`hvp` (batched, ``axis_name`` averaging as Sophia's estimators do);
- :func:`hessian_top_eigenvalues`: Lanczos with full re-orthogonalisation or power
  iteration with deflation (PyHessian, Yao et al. 2020, arXiv 1912.07145, Algorithm 1);
- :func:`hessian_trace`: Hutchinson with a standard error (PyHessian Algorithm 2);
- :func:`hessian_spectral_density`: stochastic Lanczos quadrature (Ghorbani, Krishnan,
  Xiao 2019, arXiv 1901.10159), re-derived; facts checked against google/spectral-density
  (Apache-2.0) and PyHessian (GPL; facts only, no code);
- :func:`sharpness`, :func:`preconditioned_sharpness`, :func:`adam_preconditioner`,
  :func:`sophia_preconditioner`, :func:`edge_of_stability_threshold` (Cohen et al. 2021,
  arXiv 2103.00065; Cohen et al. 2022, arXiv 2207.14484) and :func:`track_sharpness`, a
  wrapper that measures them every k steps inside any optax optimizer.

Derivations, checks against exact Hessians and the reproductions (edge of stability,
bulk + outliers) are in ``docs/spectrum.md``.
"""

from gradkit.hessian._sophia import GAMMA_SOPHIA_G
from gradkit.hessian._sophia import GAMMA_SOPHIA_H
from gradkit.hessian._sophia import GNBDiagHessianState
from gradkit.hessian._sophia import HutchinsonDiagHessianState
from gradkit.hessian._sophia import ScaleBySophiaState
from gradkit.hessian._sophia import gnb_diag_hessian
from gradkit.hessian._sophia import hutchinson_diag_hessian
from gradkit.hessian._sophia import scale_by_sophia
from gradkit.hessian._sophia import sophia
from gradkit.hessian._sophia import sophia_extra_args
from gradkit.hessian._spectrum import HessianTrace
from gradkit.hessian._spectrum import SpectralDensity
from gradkit.hessian._spectrum import density_from_nodes
from gradkit.hessian._spectrum import hessian_spectral_density
from gradkit.hessian._spectrum import hessian_top_eigenvalues
from gradkit.hessian._spectrum import hessian_trace
from gradkit.hessian._spectrum import hvp
from gradkit.hessian._sharpness import TrackSharpnessState
from gradkit.hessian._sharpness import adam_preconditioner
from gradkit.hessian._sharpness import edge_of_stability_threshold
from gradkit.hessian._sharpness import preconditioned_sharpness
from gradkit.hessian._sharpness import sharpness
from gradkit.hessian._sharpness import sophia_preconditioner
from gradkit.hessian._sharpness import track_sharpness

__all__ = (
    "HessianTrace",
    "SpectralDensity",
    "TrackSharpnessState",
    "adam_preconditioner",
    "density_from_nodes",
    "edge_of_stability_threshold",
    "hessian_spectral_density",
    "hessian_top_eigenvalues",
    "hessian_trace",
    "hvp",
    "preconditioned_sharpness",
    "sharpness",
    "sophia_preconditioner",
    "track_sharpness",
)
