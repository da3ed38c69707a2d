# SPDX-License-Identifier: Apache-2.0
"""gradkit: recent gradient-method papers as composable optax transformations."""

from gradkit.evolution import EggrollConfig
from gradkit.evolution import EggrollKey
from gradkit.evolution import LowRankFactors
from gradkit.evolution import ScaleByEggrollState
from gradkit.evolution import eggroll
from gradkit.evolution import eggroll_apply_member
from gradkit.evolution import eggroll_current_key
from gradkit.evolution import eggroll_perturb
from gradkit.evolution import eggroll_population_apply
from gradkit.evolution import eggroll_resolve_kinds
from gradkit.evolution import eggroll_sample_noise
from gradkit.evolution import eggroll_shape_fitness
from gradkit.evolution import population_fitness_pmap
from gradkit.evolution import population_fitness_sharded
from gradkit.evolution import population_mesh
from gradkit.evolution import scale_by_eggroll
from gradkit.hessian import GAMMA_SOPHIA_G
from gradkit.hessian import GAMMA_SOPHIA_H
from gradkit.hessian import GNBDiagHessianState
from gradkit.hessian import HessianTrace
from gradkit.hessian import HutchinsonDiagHessianState
from gradkit.hessian import ScaleBySophiaState
from gradkit.hessian import SpectralDensity
from gradkit.hessian import TrackSharpnessState
from gradkit.hessian import adam_preconditioner
from gradkit.hessian import density_from_nodes
from gradkit.hessian import edge_of_stability_threshold
from gradkit.hessian import gnb_diag_hessian
from gradkit.hessian import hessian_spectral_density
from gradkit.hessian import hessian_top_eigenvalues
from gradkit.hessian import hessian_trace
from gradkit.hessian import hutchinson_diag_hessian
from gradkit.hessian import hvp
from gradkit.hessian import preconditioned_sharpness
from gradkit.hessian import scale_by_sophia
from gradkit.hessian import sharpness
from gradkit.hessian import sophia
from gradkit.hessian import sophia_extra_args
from gradkit.hessian import sophia_preconditioner
from gradkit.hessian import track_sharpness
from gradkit.layers import binarize_weight
from gradkit.layers import ghost_batch_norm
from gradkit.layers import reste_fitting_error
from gradkit.layers import reste_gradient_instability
from gradkit.layers import reste_o_schedule
from gradkit.layers import reste_power
from gradkit.layers import reste_sign
from gradkit.layers import tract_conv
from gradkit.layers import tract_dense
from gradkit.losses import log_stablemax
from gradkit.losses import softmax_collapse_fraction
from gradkit.losses import stablemax
from gradkit.losses import stablemax_collapse_fraction
from gradkit.losses import stablemax_cross_entropy
from gradkit.losses import zero_loss_fraction
from gradkit.memory import LimitNormGrowthState
from gradkit.memory import Quantized8bit
from gradkit.memory import ScaleByFiraState
from gradkit.memory import ScaleByFrugalState
from gradkit.memory import With8bitState
from gradkit.memory import adamw_8bit
from gradkit.memory import dequantize_blockwise
from gradkit.memory import dynamic_quantization_map
from gradkit.memory import fira
from gradkit.memory import frugal
from gradkit.memory import limit_norm_growth
from gradkit.memory import quantize_blockwise
from gradkit.memory import scale_by_fira
from gradkit.memory import scale_by_frugal
from gradkit.memory import with_8bit_state
from gradkit.multitask import GCondState
from gradkit.multitask import PCGradState
from gradkit.multitask import ScaleBySvenState
from gradkit.multitask import gcond
from gradkit.multitask import gcond_accumulate
from gradkit.multitask import gcond_effective_angle
from gradkit.multitask import pcgrad
from gradkit.multitask import scale_by_sven
from gradkit.multitask import sven
from gradkit.multitask import sven_direction
from gradkit.muon import ScaleByAuonState
from gradkit.muon import ScaleByDropMuonState
from gradkit.muon import auon
from gradkit.muon import cosh_rms
from gradkit.muon import drop_muon
from gradkit.muon import drop_muon_layer_indices
from gradkit.muon import drop_muon_next_start_layer
from gradkit.muon import drop_muon_value_and_grad
from gradkit.muon import newton_schulz_step
from gradkit.muon import scale_by_auon
from gradkit.muon import scale_by_drop_muon
from gradkit.orthogonal import perp_adamw
from gradkit.orthogonal import perp_sgd
from gradkit.orthogonal import project_orthogonal
from gradkit.persample import ADADAGRAD_TESTS
from gradkit.persample import AdaptiveBatchSize
from gradkit.persample import PerSampleStatistics
from gradkit.persample import adadagrad_batch_size
from gradkit.persample import adadagrad_batch_size_from_statistics
from gradkit.persample import adadagrad_variances
from gradkit.persample import bucket_batch_size
from gradkit.persample import per_sample_statistics
from gradkit.persample import per_sample_statistics_from_loss
from gradkit.schedules import AnnealingAreas
from gradkit.schedules import AnnealingLawFit
from gradkit.schedules import AnnealingLawParams
from gradkit.schedules import annealing_law_areas
from gradkit.schedules import fit_annealing_law
from gradkit.schedules import predict_annealing_law
from gradkit.schedules import refined_schedule
from gradkit.schedules import wsd_s_schedule
from gradkit.schedules import wsd_schedule
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
from gradkit.stepsize import ScaleByAdaGradNormState
from gradkit.stepsize import ScaleByDiffGradState
from gradkit.stepsize import adagrad_norm
from gradkit.stepsize import diffgrad
from gradkit.stepsize import scale_by_adagrad_norm
from gradkit.stepsize import scale_by_diffgrad

__version__ = "0.1.0"

__all__ = (
    "ADADAGRAD_TESTS",
    "GAMMA_SOPHIA_G",
    "GAMMA_SOPHIA_H",
    "KAPPA_NAMES",
    "AdaptiveBatchSize",
    "AnnealingAreas",
    "AnnealingLawFit",
    "AnnealingLawParams",
    "ClipSpikesState",
    "EggrollConfig",
    "EggrollKey",
    "GCondState",
    "GNBDiagHessianState",
    "HessianTrace",
    "HutchinsonDiagHessianState",
    "LimitNormGrowthState",
    "LowRankFactors",
    "PCGradState",
    "PerSampleStatistics",
    "Quantized8bit",
    "ScaleByAdaGradNormState",
    "ScaleByAuonState",
    "ScaleByDiffGradState",
    "ScaleByDropMuonState",
    "ScaleByEggrollState",
    "ScaleByFiraState",
    "ScaleByFrugalState",
    "ScaleByLionKState",
    "ScaleBySophiaState",
    "ScaleBySpamState",
    "ScaleByStableSpamState",
    "ScaleBySvenState",
    "SpectralDensity",
    "TrackSharpnessState",
    "With8bitState",
    "WithPeriodicResetState",
    "adadagrad_batch_size",
    "adadagrad_batch_size_from_statistics",
    "adadagrad_variances",
    "adagrad_norm",
    "adam_preconditioner",
    "adamw_8bit",
    "annealing_law_areas",
    "auon",
    "binarize_weight",
    "bucket_batch_size",
    "clip_spikes",
    "cosh_rms",
    "density_from_nodes",
    "dequantize_blockwise",
    "diffgrad",
    "drop_muon",
    "drop_muon_layer_indices",
    "drop_muon_next_start_layer",
    "drop_muon_value_and_grad",
    "dynamic_quantization_map",
    "edge_of_stability_threshold",
    "eggroll",
    "eggroll_apply_member",
    "eggroll_current_key",
    "eggroll_perturb",
    "eggroll_population_apply",
    "eggroll_resolve_kinds",
    "eggroll_sample_noise",
    "eggroll_shape_fitness",
    "fira",
    "fit_annealing_law",
    "frugal",
    "gcond",
    "gcond_accumulate",
    "gcond_effective_angle",
    "ghost_batch_norm",
    "gnb_diag_hessian",
    "hessian_spectral_density",
    "hessian_top_eigenvalues",
    "hessian_trace",
    "hutchinson_diag_hessian",
    "hvp",
    "kappa_fn",
    "limit_norm_growth",
    "lion",
    "lion_k",
    "log_stablemax",
    "newton_schulz_step",
    "pcgrad",
    "per_sample_statistics",
    "per_sample_statistics_from_loss",
    "perp_adamw",
    "perp_sgd",
    "population_fitness_pmap",
    "population_fitness_sharded",
    "population_mesh",
    "post_reset_warmup",
    "preconditioned_sharpness",
    "predict_annealing_law",
    "project_orthogonal",
    "quantize_blockwise",
    "refined_schedule",
    "reste_fitting_error",
    "reste_gradient_instability",
    "reste_o_schedule",
    "reste_power",
    "reste_sign",
    "scale_by_adagrad_norm",
    "scale_by_auon",
    "scale_by_diffgrad",
    "scale_by_drop_muon",
    "scale_by_eggroll",
    "scale_by_fira",
    "scale_by_frugal",
    "scale_by_lion_k",
    "scale_by_sophia",
    "scale_by_spam",
    "scale_by_stable_spam",
    "scale_by_sven",
    "sharpness",
    "softmax_collapse_fraction",
    "sophia",
    "sophia_extra_args",
    "sophia_preconditioner",
    "spam",
    "stable_spam",
    "stablemax",
    "stablemax_collapse_fraction",
    "stablemax_cross_entropy",
    "sven",
    "sven_direction",
    "track_sharpness",
    "tract_conv",
    "tract_dense",
    "with_8bit_state",
    "with_periodic_reset",
    "wsd_s_schedule",
    "wsd_schedule",
    "zero_loss_fraction",
)
