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
from gradkit.evolution import LowRankFactors
from gradkit.evolution import ScaleByEggrollState
from gradkit.evolution import apply_member as eggroll_apply_member
from gradkit.evolution import current_key as eggroll_current_key
from gradkit.evolution import eggroll
from gradkit.evolution import perturb as eggroll_perturb
from gradkit.evolution import population_apply as eggroll_population_apply
from gradkit.evolution import resolve_kinds as eggroll_resolve_kinds
from gradkit.evolution import sample_noise as eggroll_sample_noise
from gradkit.evolution import scale_by_eggroll
from gradkit.evolution import shape_fitness as eggroll_shape_fitness
from gradkit.layers import binarize_weight
from gradkit.layers import ghost_batch_norm
from gradkit.layers import reste_fitting_error
from gradkit.layers import reste_gradient_instability
from gradkit.layers import reste_o_schedule
from gradkit.layers import reste_power
from gradkit.layers import reste_sign
from gradkit.layers import tract_conv
from gradkit.layers import tract_dense
from gradkit.orthogonal import perp_adamw
from gradkit.orthogonal import perp_sgd
from gradkit.orthogonal import project_orthogonal
from gradkit.parallel import population_fitness_pmap
from gradkit.parallel import population_fitness_sharded
from gradkit.parallel import population_mesh
from gradkit.sign import KAPPA_NAMES
from gradkit.sign import ScaleByLionKState
from gradkit.sign import kappa_fn
from gradkit.sign import lion
from gradkit.sign import lion_k
from gradkit.sign import scale_by_lion_k
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
from gradkit.stablemax import log_stablemax
from gradkit.stablemax import softmax_collapse_fraction
from gradkit.stablemax import stablemax
from gradkit.stablemax import stablemax_collapse_fraction
from gradkit.stablemax import stablemax_cross_entropy
from gradkit.stablemax import zero_loss_fraction

__version__ = "0.1.0"

__all__ = (
    "GAMMA_SOPHIA_G",
    "GAMMA_SOPHIA_H",
    "KAPPA_NAMES",
    "ClipSpikesState",
    "GNBDiagHessianState",
    "HutchinsonDiagHessianState",
    "LowRankFactors",
    "ScaleByEggrollState",
    "ScaleByLionKState",
    "ScaleBySophiaState",
    "ScaleBySpamState",
    "ScaleByStableSpamState",
    "WithPeriodicResetState",
    "binarize_weight",
    "clip_spikes",
    "eggroll",
    "eggroll_apply_member",
    "eggroll_current_key",
    "eggroll_perturb",
    "eggroll_population_apply",
    "eggroll_resolve_kinds",
    "eggroll_sample_noise",
    "eggroll_shape_fitness",
    "ghost_batch_norm",
    "gnb_diag_hessian",
    "hutchinson_diag_hessian",
    "kappa_fn",
    "lion",
    "lion_k",
    "log_stablemax",
    "perp_adamw",
    "perp_sgd",
    "population_fitness_pmap",
    "population_fitness_sharded",
    "population_mesh",
    "post_reset_warmup",
    "project_orthogonal",
    "reste_fitting_error",
    "reste_gradient_instability",
    "reste_o_schedule",
    "reste_power",
    "reste_sign",
    "scale_by_eggroll",
    "scale_by_lion_k",
    "scale_by_sophia",
    "scale_by_spam",
    "scale_by_stable_spam",
    "softmax_collapse_fraction",
    "sophia",
    "sophia_extra_args",
    "spam",
    "stable_spam",
    "stablemax",
    "stablemax_collapse_fraction",
    "stablemax_cross_entropy",
    "tract_conv",
    "tract_dense",
    "with_periodic_reset",
    "zero_loss_fraction",
)
