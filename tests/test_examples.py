"""Runs the examples end-to-end at tiny size, in a subprocess, as a user would."""

from __future__ import annotations

from tests.helpers import read_jsonl
from tests.helpers import run_example


def test_lion_vs_adamw_runs_and_writes_metrics_and_plot(tmp_path):
    out = run_example("lion_vs_adamw.py", "--steps=20", "--eval_every=10",
                      "--num_test=128", "--width=16",
                      f"--workdir={tmp_path}")
    records = read_jsonl(tmp_path / "metrics.jsonl")
    assert {r["optimizer"] for r in records} == {"adamw", "lion"}
    assert [r["step"] for r in records if r["optimizer"] == "lion"] == [10, 20]
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in records)
    assert (tmp_path / "loss.png").stat().st_size > 0
    assert "| lion |" in out
