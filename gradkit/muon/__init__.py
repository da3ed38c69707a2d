# SPDX-License-Identifier: Apache-2.0
"""Orthogonalised-momentum family: AuON, Hybrid-AuON and Drop-Muon.

Built on ``optax.contrib.muon``'s public pieces; see ``docs/muon.md``.
"""

from gradkit.muon._auon import ScaleByAuonState
from gradkit.muon._auon import auon
from gradkit.muon._auon import cosh_rms
from gradkit.muon._auon import scale_by_auon
from gradkit.muon._base import newton_schulz_step
from gradkit.muon._drop_muon import ScaleByDropMuonState
from gradkit.muon._drop_muon import drop_muon
from gradkit.muon._drop_muon import drop_muon_next_start_layer
from gradkit.muon._drop_muon import scale_by_drop_muon
from gradkit.muon._drop_muon_layers import drop_muon_layer_indices
from gradkit.muon._drop_muon_layers import drop_muon_value_and_grad

__all__ = (
    "ScaleByAuonState",
    "ScaleByDropMuonState",
    "auon",
    "cosh_rms",
    "drop_muon",
    "drop_muon_layer_indices",
    "drop_muon_next_start_layer",
    "drop_muon_value_and_grad",
    "newton_schulz_step",
    "scale_by_auon",
    "scale_by_drop_muon",
)
