"""benchmarks/memory.py runs at a tiny size and its table holds the measured state sizes."""

from __future__ import annotations

import pytest

from tests.helpers import run_benchmark


@pytest.mark.slow
def test_memory_benchmark_table():
    # d = 32: the 32×128 MLP matrices (4096 values) get 8-bit state, the rest stays 32-bit.
    out = run_benchmark("memory", "--size=50000", "--repeats=1", "--only=adamw_8bit,lion")
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip()
            for line in out.splitlines() if line.startswith("| ")}
    assert rows["optax.adamw"] == "8.000" and rows["gradkit.lion"] == "4.000"
    # 49,920 params, 32,768 of them in the eight 4096-value MLP matrices (2 blocks each):
    # per moment 1 byte + 2 float32 absmax per matrix, float32 for the other 17,152, plus
    # Adam's int32 count.
    n, q = 49_920, 32_768
    adam = (2 * q + 2 * 8 * 2 * 4 + 2 * 4 * (n - q) + 4) / n
    lion = (q + 8 * 2 * 4 + 4 * (n - q)) / n
    assert rows["gradkit.adamw_8bit"] == f"{adam:.3f}" == "4.064"
    assert rows["with_8bit_state(gradkit.lion)"] == f"{lion:.3f}"
    assert float(rows["gradkit.adamw_8bit(block_size=256)"]) > adam  # more absmax
