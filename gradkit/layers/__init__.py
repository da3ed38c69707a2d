# SPDX-License-Identifier: Apache-2.0
"""Layer-level gradient rules as Flax modules: TrAct, ReSTE binarisation, Ghost BatchNorm.

The top-level names are the Flax **linen** modules; the NNX twins live in
:mod:`gradkit.layers.nnx` under the same names. The functional cores (custom-VJP rules)
are also re-exported from :mod:`gradkit`.
"""

from gradkit.layers import nnx
from gradkit.layers._ghost_bn import ghost_batch_norm
from gradkit.layers._ghost_bn import ghost_batch_statistics
from gradkit.layers._ghost_bn import update_running_statistics as ghost_update_running_statistics
from gradkit.layers._reste import binarize_weight
from gradkit.layers._reste import reste_fitting_error
from gradkit.layers._reste import reste_gradient_instability
from gradkit.layers._reste import reste_o_schedule
from gradkit.layers._reste import reste_power
from gradkit.layers._reste import reste_sign
from gradkit.layers._tract import conv_patches
from gradkit.layers._tract import tract_conv
from gradkit.layers._tract import tract_dense
from gradkit.layers._tract import tract_weight_gradient
from gradkit.layers.linen import BinaryConv
from gradkit.layers.linen import BinaryDense
from gradkit.layers.linen import GhostBatchNorm
from gradkit.layers.linen import TrActConv
from gradkit.layers.linen import TrActDense

__all__ = (
    "BinaryConv",
    "BinaryDense",
    "GhostBatchNorm",
    "TrActConv",
    "TrActDense",
    "binarize_weight",
    "conv_patches",
    "ghost_batch_norm",
    "ghost_batch_statistics",
    "ghost_update_running_statistics",
    "nnx",
    "reste_fitting_error",
    "reste_gradient_instability",
    "reste_o_schedule",
    "reste_power",
    "reste_sign",
    "tract_conv",
    "tract_dense",
    "tract_weight_gradient",
)
