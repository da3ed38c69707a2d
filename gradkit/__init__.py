"""gradkit: recent gradient-method papers as composable optax transformations."""

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

__version__ = "0.1.0"

__all__ = (
    "KAPPA_NAMES",
    "ScaleByLionKState",
    "kappa_fn",
    "lion",
    "lion_k",
    "log_stablemax",
    "perp_adamw",
    "perp_sgd",
    "project_orthogonal",
    "scale_by_lion_k",
    "softmax_collapse_fraction",
    "stablemax",
    "stablemax_collapse_fraction",
    "stablemax_cross_entropy",
    "zero_loss_fraction",
)
