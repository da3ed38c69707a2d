# SPDX-License-Identifier: Apache-2.0
"""Losses with a gradient motive: StableMax and the Softmax Collapse metrics.

Prieto et al., `Grokking at the Edge of Numerical Stability
<https://arxiv.org/abs/2501.04697>`_, 2025.
"""

from gradkit.losses._stablemax import log_stablemax
from gradkit.losses._stablemax import softmax_collapse_fraction
from gradkit.losses._stablemax import stablemax
from gradkit.losses._stablemax import stablemax_collapse_fraction
from gradkit.losses._stablemax import stablemax_cross_entropy
from gradkit.losses._stablemax import zero_loss_fraction

__all__ = (
    "log_stablemax",
    "softmax_collapse_fraction",
    "stablemax",
    "stablemax_collapse_fraction",
    "stablemax_cross_entropy",
    "zero_loss_fraction",
)
