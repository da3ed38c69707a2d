"""Runs examples/grokking.py end to end at a tiny size, and the notebook."""

from __future__ import annotations

import json

from tests.helpers import run_example
from tests.helpers import run_notebook


def test_example_runs_and_writes_outputs(tmp_path):
    run_example("grokking.py", "--p=5", "--epochs=6", "--chunk=3", "--eval_every=2",
                "--loss=stablemax", "--optimizer=perp_adamw", "--lr=0.01",
                f"--workdir={tmp_path}")
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert [r["epoch"] for r in rows] == list(range(6))
    keys = {"train_loss", "train_acc", "test_loss", "test_acc", "sc_fraction",
            "softmax_sc_fraction", "zero_loss_fraction", "weight_norm", "cos_nlm"}
    assert keys <= set(rows[0])
    assert rows[1]["test_acc"] is None and rows[2]["test_acc"] is not None
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    summary = json.load(open(tmp_path / "summary.json"))
    assert summary["epochs_run"] == 6 and summary["config"]["n_train"] == 10
    assert (tmp_path / "grokking.png").stat().st_size > 0


def test_notebook_executes_at_tiny_size(tmp_path):
    outputs = run_notebook("grokking.ipynb", cwd=tmp_path)
    assert "final test accuracy" in outputs
