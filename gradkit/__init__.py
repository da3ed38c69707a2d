"""gradkit: recent gradient-method papers as composable optax transformations."""

from gradkit.sign import KAPPA_NAMES
from gradkit.sign import ScaleByLionKState
from gradkit.sign import kappa_fn
from gradkit.sign import lion
from gradkit.sign import lion_k
from gradkit.sign import scale_by_lion_k

__version__ = "0.1.0"

__all__ = (
    "KAPPA_NAMES",
    "ScaleByLionKState",
    "kappa_fn",
    "lion",
    "lion_k",
    "scale_by_lion_k",
)
