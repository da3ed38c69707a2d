# SPDX-License-Identifier: Apache-2.0
"""examples/grokking at a tiny size (in-process) and its notebook."""

from __future__ import annotations

import json

import pytest

from examples.grokking import train
from examples.grokking.configs import default
from tests.helpers import run_notebook


def _config(**fields):
    config = default.get_config()
    config.update(fields)
    return config


@pytest.mark.slow
def test_train_and_evaluate_writes_outputs(tmp_path):
    config = _config(p=5, epochs=8, chunk=4, log_interval=2, loss="stablemax",
                     optimizer="perp_adamw", lr=0.01, progress=False)
    summary = train.train_and_evaluate(config, str(tmp_path))
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    # A row every log_interval epochs (params before that epoch's update), plus the final params.
    assert [r["epoch"] for r in rows] == [0, 2, 4, 6, 8]
    keys = {"train_loss", "train_acc", "test_loss", "test_acc", "sc_fraction",
            "softmax_sc_fraction", "stablemax_sc_fraction", "zero_loss_fraction",
            "weight_norm", "cos_nlm"}
    assert keys <= set(rows[0])
    assert all(0.0 <= r["test_acc"] <= 1.0 for r in rows)
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert all(r["sc_fraction"] == 0.0 for r in rows)  # StableMax losses never exactly 0
    assert summary == json.load(open(tmp_path / "summary.json"))
    assert summary["epochs_run"] == 8 and summary["config"]["n_train"] == 10
    assert summary["config"]["loss"] == "stablemax"
    assert summary["final_test_acc"] == rows[-1]["test_acc"]
    assert (tmp_path / "grokking.png").stat().st_size > 0


def test_rejects_epochs_not_a_multiple_of_log_interval(tmp_path):
    with pytest.raises(ValueError, match="log_interval"):
        train.train_and_evaluate(_config(p=5, epochs=7, log_interval=2, chunk=4),
                                 str(tmp_path))
    with pytest.raises(ValueError, match=r"config\.epochs must be a positive integer"):
        train.train_and_evaluate(_config(p=5, epochs=0), str(tmp_path))
    with pytest.raises(ValueError, match=r"config\.lr must be a finite non-negative"):
        train.train_and_evaluate(_config(lr=float("inf")), str(tmp_path))


@pytest.mark.slow
def test_notebook_executes_at_tiny_size(tmp_path):
    outputs = run_notebook("grokking.ipynb", cwd=tmp_path)
    assert "final test accuracy" in outputs
