"""gradkit: recent gradient-method papers as composable optax transformations."""

from gradkit.eggroll import LowRankFactors
from gradkit.eggroll import ScaleByEggrollState
from gradkit.eggroll import apply_member as eggroll_apply_member
from gradkit.eggroll import current_key as eggroll_current_key
from gradkit.eggroll import eggroll
from gradkit.eggroll import perturb as eggroll_perturb
from gradkit.eggroll import population_apply as eggroll_population_apply
from gradkit.eggroll import resolve_kinds as eggroll_resolve_kinds
from gradkit.eggroll import sample_noise as eggroll_sample_noise
from gradkit.eggroll import scale_by_eggroll
from gradkit.eggroll import shape_fitness as eggroll_shape_fitness
from gradkit.parallel import population_fitness_pmap
from gradkit.parallel import population_fitness_sharded
from gradkit.parallel import population_mesh
from gradkit.sign import KAPPA_NAMES
from gradkit.sign import ScaleByLionKState
from gradkit.sign import kappa_fn
from gradkit.sign import lion
from gradkit.sign import lion_k
from gradkit.sign import scale_by_lion_k

__version__ = "0.1.0"

__all__ = (
    "KAPPA_NAMES",
    "LowRankFactors",
    "ScaleByEggrollState",
    "ScaleByLionKState",
    "eggroll",
    "eggroll_apply_member",
    "eggroll_current_key",
    "eggroll_perturb",
    "eggroll_population_apply",
    "eggroll_resolve_kinds",
    "eggroll_sample_noise",
    "eggroll_shape_fitness",
    "kappa_fn",
    "lion",
    "lion_k",
    "population_fitness_pmap",
    "population_fitness_sharded",
    "population_mesh",
    "scale_by_eggroll",
    "scale_by_lion_k",
)
