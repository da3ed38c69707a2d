# SPDX-License-Identifier: Apache-2.0
"""Executes notebooks/muon.ipynb at tiny size (TINY = True) with nbclient."""

import pytest

from tests.helpers import run_notebook

pytestmark = pytest.mark.slow  # end-to-end: new processes or kernels


def test_muon_notebook_runs_at_tiny_size():
    out = run_notebook("muon.ipynb")
    assert "tiny" in out
    finals = {line.split("|")[1].strip(): float(line.split("=")[1].strip(" |"))
              for line in out.splitlines() if "final x =" in line}
    assert abs(finals["diffGrad lr 0.1"] + 0.3) < 0.01
    assert abs(finals["Adam lr 0.1"] - 0.2) < 0.01
    assert "| drop_muon |" in out and "step-time ratio" in out
