# SPDX-License-Identifier: Apache-2.0
"""examples/lion_vs_adamw at a tiny size, in-process."""

from __future__ import annotations

import pytest

from examples.lion_vs_adamw import train
from examples.lion_vs_adamw.configs import default
from tests.helpers import read_jsonl


@pytest.mark.slow
def test_train_and_evaluate_writes_metrics_and_plot(tmp_path):
    config = default.get_config()
    config.update(steps=20, eval_interval=10, num_test=128, width=16, batch_size=32,
                  progress=False)
    final = train.train_and_evaluate(config, str(tmp_path))
    records = read_jsonl(tmp_path / "metrics.jsonl")
    assert {r["optimizer"] for r in records} == {"adamw", "lion"}
    assert [r["step"] for r in records if r["optimizer"] == "lion"] == [10, 20]
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in records)
    for name in ("adamw", "lion"):  # both learn: the first evaluation beats chance (10 classes)
        assert final[name] == [r for r in records if r["optimizer"] == name][-1]
        assert final[name]["test_accuracy"] > 0.15
    assert (tmp_path / "loss.png").stat().st_size > 0
    assert "| lion |" in train.summary_table(final)
