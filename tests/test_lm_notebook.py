# SPDX-License-Identifier: Apache-2.0
"""Executes notebooks/lm.ipynb at tiny size (TINY = True) with nbclient."""

import pytest

from tests.helpers import run_notebook

pytestmark = pytest.mark.slow  # end-to-end: new processes or kernels


def test_lm_notebook_runs_at_tiny_size():
    outputs = run_notebook("lm.ipynb")
    assert "| adamw |" in outputs and "| lion |" in outputs and "| spam |" in outputs
    assert "LR sensitivity" in outputs
    assert "adamw @ batch 16" in outputs and "lion @ batch 16" in outputs  # 4 × tiny batch 4
