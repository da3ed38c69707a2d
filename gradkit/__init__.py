"""gradkit: recent gradient-method papers as composable optax transformations."""

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

__version__ = "0.1.0"

__all__ = (
    "KAPPA_NAMES",
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
