# SPDX-License-Identifier: Apache-2.0
"""Executes notebooks/spam.ipynb at tiny size (TINY = True) with nbclient."""

import math

import pytest

from tests.helpers import run_notebook


@pytest.mark.slow
def test_spam_notebook_runs_at_tiny_size():
    outputs = run_notebook("spam.ipynb")
    assert "tiny" in outputs
    for name in ("adam", "spam", "stable_spam"):
        assert f"| {name} |" in outputs
    # 60 steps logged every 10, 3 optimizers × (spiked, clean).
    assert "36 logged rows" in outputs
    table = {line.split("|")[1].strip(): line.split("|")[2:6]
             for line in outputs.splitlines() if line.startswith("| ") and "e" in line}
    # SPAM clips the injected spikes; Adam has no clipping at all.
    assert int(table["adam"][3]) == 0
    assert int(table["spam"][3]) > 0
    for name in ("adam", "spam", "stable_spam"):
        assert all(math.isfinite(float(v)) for v in table[name][:3])  # not NaN, not ±inf
