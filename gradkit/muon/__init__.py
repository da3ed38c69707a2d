"""Orthogonalised-momentum family (AuON, Hybrid-AuON, Drop-Muon) and diffGrad.

Built on ``optax.contrib.muon``'s public pieces; see ``docs/muon.md``.
"""

from gradkit.muon._auon import ScaleByAuonState
from gradkit.muon._auon import auon
from gradkit.muon._auon import cosh_rms
from gradkit.muon._auon import newton_schulz_step
from gradkit.muon._auon import scale_by_auon
from gradkit.muon._diffgrad import ScaleByDiffGradState
from gradkit.muon._diffgrad import diffgrad
from gradkit.muon._diffgrad import scale_by_diffgrad
from gradkit.muon._drop_muon import ScaleByDropMuonState
from gradkit.muon._drop_muon import drop_muon
from gradkit.muon._drop_muon import drop_muon_next_start_layer
from gradkit.muon._drop_muon import drop_muon_value_and_grad
from gradkit.muon._drop_muon import layer_indices
from gradkit.muon._drop_muon import scale_by_drop_muon

__all__ = (
    "ScaleByAuonState",
    "ScaleByDiffGradState",
    "ScaleByDropMuonState",
    "auon",
    "cosh_rms",
    "diffgrad",
    "drop_muon",
    "drop_muon_next_start_layer",
    "drop_muon_value_and_grad",
    "layer_indices",
    "newton_schulz_step",
    "scale_by_auon",
    "scale_by_diffgrad",
    "scale_by_drop_muon",
)
