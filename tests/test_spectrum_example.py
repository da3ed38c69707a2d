# SPDX-License-Identifier: Apache-2.0
"""examples/spectrum and benchmarks/spectrum run at tiny size and write what they promise.

The bulk + outliers experiment (``train.bulk_outliers``) runs in the notebook test.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers import read_jsonl
from tests.helpers import run_benchmark
from tests.helpers import run_example

pytestmark = pytest.mark.slow  # end-to-end: new processes or kernels


def test_eos_adam_tracks_preconditioned_sharpness_and_plots(tmp_path):
    out = run_example("spectrum", "--config.experiment=eos", "--config.eos.optimizer=adam",
                      "--config.eos.learning_rate=0.01", "--config.eos.num_steps=40",
                      "--config.eos.sharpness_interval=20", "--config.eos.lanczos_iterations=4",
                      "--config.eos.width=8", "--config.eos.num_examples=64",
                      f"--workdir={tmp_path}", "--config.progress=False")
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["tracked"] == "preconditioned_sharpness"
    assert abs(summary["threshold"] - 3800.0) < 1e-6  # 38/η at β₁ = 0.9
    run = tmp_path / "eos_adam_lr0.01"
    rows = read_jsonl(run / "metrics.jsonl")
    assert [r["step"] for r in rows] == [0, 20]
    assert rows[0]["sharpness"] > 0 and rows[1]["preconditioned_sharpness"] > 0
    assert (run / "eos.png").stat().st_size > 0


def test_spectrum_benchmark_prints_ratio_table():
    out = run_benchmark("spectrum", "--dim=8", "--hidden=16", "--classes=4", "--batch_size=8",
                        "--repeats=1", "--lanczos_iterations=4", "--trace_samples=2")
    assert "| gradient (value_and_grad) |" in out and "| 1.00 |" in out
    for row in ("gradkit.hvp", "gradkit.sharpness (4 Lanczos steps)",
                "gradkit.hessian_trace (2 probes)"):
        assert f"| {row} |" in out
