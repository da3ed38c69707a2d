# SPDX-License-Identifier: Apache-2.0
"""The memory example and notebook run at tiny size and write their outputs."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_notebook

TINY = dict(num_steps=4, eval_interval=2, d_model=8, num_layers=1, num_heads=2, batch_size=2,
            seq_len=8, corpus_bytes=4000, warmup_steps=1, progress=False)


@pytest.mark.slow
def test_memory_example_tiny(tmp_path):
    from examples.memory import train
    from examples.memory.configs import default

    config = default.get_config()
    config.update(methods=("adamw", "frugal", "fira"), **TINY)
    out = train.train_and_evaluate(config, str(tmp_path))["table"]
    rows = [json.loads(line) for line in (tmp_path / "memory.jsonl").read_text().splitlines()]
    assert [r["method"] for r in rows] == ["adamw", "frugal", "fira"]
    by = {r["method"]: r for r in rows}
    assert by["adamw"]["state_bytes_per_param"] == pytest.approx(8.0, abs=0.01)
    assert by["frugal"]["state_bytes_per_param"] < by["adamw"]["state_bytes_per_param"]
    assert "| frugal | 0.003 |" in out and (tmp_path / "memory.png").exists()
    assert (tmp_path / "fira" / "metrics.jsonl").exists()


@pytest.mark.slow
def test_memory_notebook_runs_at_tiny_size():
    out = run_notebook("memory.ipynb")
    assert "tiny" in out and "| adamw | 8.00 |" in out
    assert "| frugal | 0.003 |" in out and "spike step" in out
