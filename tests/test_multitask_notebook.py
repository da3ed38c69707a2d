# SPDX-License-Identifier: Apache-2.0
"""Executes notebooks/multitask.ipynb at tiny size (TINY = True) with nbclient."""

import pytest

from tests.helpers import run_notebook

pytestmark = pytest.mark.slow  # end-to-end: new processes or kernels


def test_multitask_notebook_runs_at_tiny_size():
    outputs = run_notebook("multitask.ipynb")
    assert "tiny" in outputs
    assert "| pcgrad | start [9.0, 9.0]" in outputs
    for mode in ("classical", "stochastic", "sum"):
        assert f"| {mode} | val loss" in outputs
    assert "| adaptive | reached" in outputs and "monotone True" in outputs
    assert "| sven | train MSE" in outputs
