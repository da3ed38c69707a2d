# SPDX-License-Identifier: Apache-2.0
"""The benchmarks run (at a tiny size) and print their table; timings are not asserted."""

from __future__ import annotations

import pytest

from tests.helpers import benchmark_process
from tests.helpers import run_benchmark

pytestmark = pytest.mark.slow  # end-to-end: new processes or kernels


def test_lion_benchmark_prints_ratio_table():
    out = run_benchmark("lion", "--num_params=256", "--width=16", "--repeats=2")
    assert "| optax.adamw |" in out and "| gradkit.lion |" in out


@pytest.mark.parametrize("model_flags", [
    ["--model=mlp", "--dim=8", "--hidden=16", "--classes=4", "--batch_size=8"],
    ["--model=gpt", "--batch_size=4", "--seq_len=8", "--d_model=16", "--num_layers=1",
     "--num_heads=2"],
])
def test_sophia_benchmark_prints_ratio_table(model_flags):
    out = run_benchmark("sophia", *model_flags, "--repeats=1", "--steps_per_call=10")
    assert ("GPT d_model 16" in out) == ("--model=gpt" in model_flags)
    assert "| optax.adamw |" in out and "| 1.00 |" in out
    for row in ("gnb, k=10", "hutchinson, k=10", "gnb, k=1", "hutchinson, k=1"):
        assert f"| gradkit.sophia ({row}) |" in out


def test_spam_benchmark_prints_ratio_table():
    out = run_benchmark("spam", "--scale=0.001", "--iters=2")
    assert "| optax.adamw |" in out and "| gradkit.stable_spam |" in out
    assert "state bytes / param" in out


def test_eggroll_benchmark_prints_ratio_table():
    out = run_benchmark("eggroll", "--width=8", "--depth=1", "--population=4", "--ranks=1",
                        "--repeats=1", "--naive_population=2", "--naive_chunk=2",
                        "--lm_features=8", "--lm_population=4", "--lm_batch=2",
                        "--lm_seq_len=4")
    for row in ("plain batched inference", "EGGROLL r=1, pre-generated noise",
                "EGGROLL r=1, on the fly (counter hash, default)", "naive full-rank ES"):
        assert f"| {row} |" in out
    for row in ("MLP 8×1, N=4, r=1 | kept in memory (default)",
                "minGRU LM d=8, N=4, 2×4 bytes, r=1 | eggroll_sample_noise inside the jit"):
        assert f"| {row} |" in out


def test_eggroll_benchmark_rejects_naive_population_above_population():
    result = benchmark_process("eggroll", "--population=4", "--naive_population=8")
    assert result.returncode != 0
    assert "--naive_population must be in [1, --population=4]" in result.stderr


def test_grokking_benchmark_prints_ratio_table():
    out = run_benchmark("grokking", "--repeats=1")
    assert "| update, paper MLP (107.8k) | optax.adamw |" in out
    assert "| value+grad, [5107, 113] logits | softmax CE |" in out


def test_drop_muon_benchmark_prints_ratio_table():
    # The CNN only (the GPT path shares `_time_steps`); two conv layers keep compiles few.
    out = run_benchmark("drop_muon", "--model=cnn", "--batch_size=2", "--channels=2,2",
                        "--repeats=1")
    assert "| optax.contrib.muon (full backward) | " in out
    assert "truncated (static s), mean over uniform s" in out and "CNN channels" in out


def test_updates_benchmark_table():
    # --quick: d = 32, the 32×128 MLP matrices (4096 values) get 8-bit state, the rest
    # stays 32-bit.
    out = run_benchmark("updates", "--quick", "--only=adamw_8bit,lion")
    lines = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0]]
    rows = {c[0].strip(): dict(zip(header, (x.strip() for x in c), strict=True))
            for c in lines[1:]}
    assert set(rows) == {
        "optax.adamw", "optax.lion", "gradkit.lion", "gradkit.lion_k_tanh",
        "gradkit.lion_k_relativistic", "gradkit.adamw_8bit", "with_8bit_state(gradkit.lion)",
        "gradkit.adamw_8bit(block_size=256)"}
    assert rows["gradkit.lion"]["optax peer"] == "optax.lion"
    assert rows["gradkit.adamw_8bit"]["optax peer"] == "optax.adamw"
    for row in rows.values():
        assert row["update × optax.adamw"] != "error"
        assert float(row["LM train step × optax.adamw"]) > 0
    assert rows["optax.adamw"]["update × optax.adamw"] == "1.00"
    state = {name: row["state B/param"] for name, row in rows.items()}
    assert state["optax.adamw"] == "8.000" and state["gradkit.lion"] == "4.000"
    # 49,920 params, 32,768 of them in the eight 4096-value MLP matrices (2 blocks each):
    # per moment 1 byte + 2 float32 absmax per matrix, float32 for the other 17,152, plus
    # Adam's int32 count.
    n, q = 49_920, 32_768
    adam = (2 * q + 2 * 8 * 2 * 4 + 2 * 4 * (n - q) + 4) / n
    lion = (q + 8 * 2 * 4 + 4 * (n - q)) / n
    assert state["gradkit.adamw_8bit"] == f"{adam:.3f}" == "4.064"
    assert state["with_8bit_state(gradkit.lion)"] == f"{lion:.3f}"
    assert float(state["gradkit.adamw_8bit(block_size=256)"]) > adam  # more absmax
