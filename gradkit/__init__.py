"""gradkit: recent gradient-method papers as composable optax transformations."""

from gradkit.curvature import GAMMA_SOPHIA_G
from gradkit.curvature import GAMMA_SOPHIA_H
from gradkit.curvature import GNBDiagHessianState
from gradkit.curvature import HutchinsonDiagHessianState
from gradkit.curvature import ScaleBySophiaState
from gradkit.curvature import gnb_diag_hessian
from gradkit.curvature import hutchinson_diag_hessian
from gradkit.curvature import scale_by_sophia
from gradkit.curvature import sophia
from gradkit.curvature import sophia_extra_args
from gradkit.orthogonal import perp_adamw
from gradkit.orthogonal import perp_sgd
from gradkit.orthogonal import project_orthogonal
from gradkit.sign import KAPPA_NAMES
from gradkit.sign import ScaleByLionKState
from gradkit.sign import kappa_fn
from gradkit.sign import lion
from gradkit.sign import lion_k
from gradkit.sign import scale_by_lion_k
from gradkit.stablemax import log_stablemax
from gradkit.stablemax import softmax_collapse_fraction
from gradkit.stablemax import stablemax
from gradkit.stablemax import stablemax_collapse_fraction
from gradkit.stablemax import stablemax_cross_entropy
from gradkit.stablemax import zero_loss_fraction
from gradkit.spikes import ClipSpikesState
from gradkit.spikes import ScaleBySpamState
from gradkit.spikes import ScaleByStableSpamState
from gradkit.spikes import WithPeriodicResetState
from gradkit.spikes import clip_spikes
from gradkit.spikes import post_reset_warmup
from gradkit.spikes import scale_by_spam
from gradkit.spikes import scale_by_stable_spam
from gradkit.spikes import spam
from gradkit.spikes import stable_spam
from gradkit.spikes import with_periodic_reset

__version__ = "0.1.0"

__all__ = (
    "GAMMA_SOPHIA_G",
    "GAMMA_SOPHIA_H",
    "KAPPA_NAMES",
    "GNBDiagHessianState",
    "HutchinsonDiagHessianState",
    "ScaleByLionKState",
    "ScaleBySophiaState",
    "gnb_diag_hessian",
    "hutchinson_diag_hessian",
    "kappa_fn",
    "lion",
    "lion_k",
    "log_stablemax",
    "perp_adamw",
    "perp_sgd",
    "project_orthogonal",
    "scale_by_lion_k",
    "scale_by_sophia",
    "sophia",
    "sophia_extra_args",
    "softmax_collapse_fraction",
    "stablemax",
    "stablemax_collapse_fraction",
    "stablemax_cross_entropy",
    "zero_loss_fraction",
    "ClipSpikesState",
    "ScaleByLionKState",
    "ScaleBySpamState",
    "ScaleByStableSpamState",
    "WithPeriodicResetState",
    "clip_spikes",
    "kappa_fn",
    "lion",
    "lion_k",
    "post_reset_warmup",
    "scale_by_lion_k",
    "scale_by_spam",
    "scale_by_stable_spam",
    "spam",
    "stable_spam",
    "with_periodic_reset",
)
