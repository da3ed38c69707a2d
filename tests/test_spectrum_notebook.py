# SPDX-License-Identifier: Apache-2.0
"""Executes notebooks/spectrum.ipynb at tiny size (TINY = True) with nbclient."""

import pytest

from tests.helpers import run_notebook

pytestmark = pytest.mark.slow  # end-to-end: new processes or kernels


def test_spectrum_notebook_runs_at_tiny_size():
    outputs = run_notebook("spectrum.ipynb")
    assert "tiny" in outputs
    assert "Lanczos top-3" in outputs and "SLQ density integral: 1.0" in outputs
    assert "| 3 |" in outputs
