# SPDX-License-Identifier: Apache-2.0
"""Memory-efficient optimizer state.

* 8-bit block-wise state (Dettmers et al., 2022, arXiv 2110.02861; reference
  bitsandbytes): :func:`dynamic_quantization_map`, :func:`quantize_blockwise`,
  :func:`dequantize_blockwise`, the wrapper :func:`with_8bit_state` for any optax
  transformation and the alias :func:`adamw_8bit`; :class:`StableEmbedding` is in
  :mod:`gradkit.models.stable_embedding`.
* :func:`scale_by_frugal` / :func:`frugal`: FRUGAL (Zmushko et al., 2025, arXiv
  2411.07837): Adam on a state-full subspace, signSGD on the rest;
* :func:`scale_by_fira` / :func:`fira`: Fira (Chen et al., 2024, arXiv 2410.01623):
  low-rank Adam plus a norm-scaled full-rank residual;
* :func:`limit_norm_growth`: Fira's norm-growth limiter for any optimizer;
* :func:`state_bytes`: the bytes an optimizer state holds.

See ``docs/memory.md``.
"""

from gradkit.memory._8bit import Quantized8bit
from gradkit.memory._8bit import With8bitState
from gradkit.memory._8bit import adamw_8bit
from gradkit.memory._8bit import with_8bit_state
from gradkit.memory._bytes import state_bytes
from gradkit.memory._fira import ScaleByFiraState
from gradkit.memory._fira import fira
from gradkit.memory._fira import scale_by_fira
from gradkit.memory._frugal import ScaleByFrugalState
from gradkit.memory._frugal import frugal
from gradkit.memory._frugal import scale_by_frugal
from gradkit.memory._limiter import LimitNormGrowthState
from gradkit.memory._limiter import limit_norm_growth
from gradkit.memory._quantization import dequantize_blockwise
from gradkit.memory._quantization import dynamic_quantization_map
from gradkit.memory._quantization import linear_quantization_map
from gradkit.memory._quantization import quantize_blockwise

__all__ = (
    "LimitNormGrowthState",
    "Quantized8bit",
    "ScaleByFiraState",
    "ScaleByFrugalState",
    "With8bitState",
    "adamw_8bit",
    "dequantize_blockwise",
    "dynamic_quantization_map",
    "fira",
    "frugal",
    "limit_norm_growth",
    "linear_quantization_map",
    "quantize_blockwise",
    "scale_by_fira",
    "scale_by_frugal",
    "state_bytes",
    "with_8bit_state",
)
