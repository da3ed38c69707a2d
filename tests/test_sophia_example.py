"""End-to-end runs of examples/sophia.py and notebooks/sophia.ipynb at tiny size."""

from __future__ import annotations

import json

from tests.helpers import run_example
from tests.helpers import run_notebook


def test_example_runs_end_to_end(tmp_path):
    out = run_example("sophia.py", f"--workdir={tmp_path}", "--steps=20", "--eval_every=10",
                      "--num_eval=64", "--hidden=8", "--sweep_lrs=1e-3", "--batch_size=16",
                      "--target_loss=2.5", "--optimizers=adamw,sophia_g")
    assert "| sophia_g |" in out and "| adamw |" in out
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 * 1 * 3  # optimizers × lrs × (1 + steps / eval_every)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["best"]) == {"adamw", "sophia_g"}
    assert 0.0 <= summary["best"]["sophia_g"]["final_win_rate"] <= 1.0
    assert (tmp_path / "loss.png").stat().st_size > 0


def test_notebook_executes_at_tiny_size():
    text = run_notebook("sophia.ipynb")
    assert "| sophia_g |" in text and "| adamw |" in text
