# SPDX-License-Identifier: Apache-2.0
"""Spike-aware clipping, periodic moment reset, SPAM and Stable-SPAM.

SPAM (Huang et al., 2025, arXiv 2501.06842; official code
``TianjinYellow/SPAM-Optimizer``) and Stable-SPAM (Huang et al., 2025, arXiv
2502.17055; official code ``TianjinYellow/StableSPAM``), as composable optax
transformations:

* :func:`clip_spikes`: spike-aware clipping with its own EMA of g², before any optimizer;
* :func:`with_periodic_reset`: re-initialises any transformation's moments every ΔT steps;
* :func:`post_reset_warmup`: the cosine step-size warm-up after each reset, as a schedule;
* :func:`scale_by_spam` / :func:`spam`: Adam's moments shared with the spike test, as the
  official code, with optional sparse momentum (``density``);
* :func:`scale_by_stable_spam` / :func:`stable_spam`: adaptive clipping and norm scaling.

The transforms that clip count the clipped entries when asked (``count_interval``): the
state's ``num_clipped`` is then an int32 scalar, else None;
``optax.tree_utils.tree_get(opt_state, "num_clipped")`` finds it in a chain.
"""

from gradkit.spikes._clip_spikes import ClipSpikesState
from gradkit.spikes._clip_spikes import clip_spikes
from gradkit.spikes._periodic_reset import WithPeriodicResetState
from gradkit.spikes._periodic_reset import with_periodic_reset
from gradkit.spikes._reset import post_reset_warmup
from gradkit.spikes._spam import ScaleBySpamState
from gradkit.spikes._spam import scale_by_spam
from gradkit.spikes._spam import spam
from gradkit.spikes._stable_spam import ScaleByStableSpamState
from gradkit.spikes._stable_spam import scale_by_stable_spam
from gradkit.spikes._stable_spam import stable_spam

__all__ = (
    "ClipSpikesState",
    "ScaleBySpamState",
    "ScaleByStableSpamState",
    "WithPeriodicResetState",
    "clip_spikes",
    "post_reset_warmup",
    "scale_by_spam",
    "scale_by_stable_spam",
    "spam",
    "stable_spam",
    "with_periodic_reset",
)
