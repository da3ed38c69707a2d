# SPDX-License-Identifier: Apache-2.0
"""End-to-end runs of examples/sophia and notebooks/sophia.ipynb at tiny size.

Both run the same tiny sweep (AdamW and Sophia-G, one setting each, on the same toy LM)
and share the test session's persistent compilation cache (tests/conftest.py), so
whichever runs second reuses the other's compiled train steps instead of compiling them
again.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import read_jsonl
from tests.helpers import run_example
from tests.helpers import run_notebook

# Must match the TINY settings of notebooks/sophia.py (shared compile cache).
TINY_LM = ["--config.num_steps=4", "--config.d_model=16", "--config.num_layers=1",
           "--config.num_heads=2", "--config.batch_size=4", "--config.seq_len=16",
           "--config.corpus_bytes=20000", "--config.eval_interval=2", "--config.eval_batches=1",
           "--config.warmup_steps=1", "--config.progress=False"]


@pytest.mark.slow
def test_example_sweep_runs_end_to_end(tmp_path):
    out = run_example("sophia", f"--workdir={tmp_path}", *TINY_LM,
                      "--config.adamw_lrs=(1e-3,)", "--config.sophia_g_lrs=(1e-3,)",
                      "--config.sophia_g_gammas=(0.05,)", "--config.sophia_h_lrs=()",
                      "--config.target_val_loss=10")
    assert "Best of each optimizer:" in out and "Win rate per parameter" in out
    assert "| AdamW | 0.001 | – |" in out and "| Sophia-G | 0.001 | 0.05 |" in out
    runs = read_jsonl(tmp_path / "sweep.jsonl")
    assert [(r["family"], r["gamma"]) for r in runs] == [("AdamW", None), ("Sophia-G", 0.05)]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["best"]) == {"AdamW", "Sophia-G"}
    for r in runs:
        assert r["steps_to_target"] == 2  # the first evaluation is below the loose target
        history = read_jsonl(tmp_path / r["name"] / "metrics.jsonl")
        assert [h["step"] for h in history if "val_loss" in h] == [2, 4]
        if r["family"] == "Sophia-G":
            assert 0.0 <= r["mean_win_rate"] <= 1.0
            assert all("win_rate" in h for h in history)
            by_param = r["final_win_rate_by_param"]
            assert {"params/tok_embed/embedding", "params/block_0/attn/qkv/kernel[k]"} <= set(
                by_param)
            assert all(0.0 <= v <= 1.0 for v in by_param.values())
            # Unused byte rows of the embedding have m = 0 exactly, so they count as won.
            assert by_param["params/tok_embed/embedding"] > 0.5
        else:
            assert r["final_win_rate_by_param"] is None
    assert (tmp_path / "sophia.png").stat().st_size > 0


@pytest.mark.slow
def test_notebook_executes_at_tiny_size():
    text = run_notebook("sophia.ipynb")
    assert "| AdamW |" in text and "| Sophia-G |" in text
    assert "Hutchinson mean" in text and "steps to val loss" in text
    assert "Win rate per parameter tensor" in text
