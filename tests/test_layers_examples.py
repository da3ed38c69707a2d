# SPDX-License-Identifier: Apache-2.0
"""examples/layers and notebooks/layers.ipynb at tiny size."""

from __future__ import annotations

import json

import pytest

from tests.helpers import read_jsonl
from tests.helpers import run_example
from tests.helpers import run_notebook

pytestmark = pytest.mark.slow  # end-to-end: new processes or kernels

# The binarised-MLP part (train.train_reste) runs in the notebook test; here tract + ghost_bn.
TINY_FLAGS = ('--config.experiments=("tract", "ghost_bn")', "--config.seeds=1",
              "--config.num_train=128", "--config.num_test=64", "--config.batch_size=32",
              "--config.width=4", "--config.tract_epochs=2",
              '--config.tract_optimizers=("sgd:0.08",)', "--config.tract_input_scales=(0.1,)",
              "--config.gbn_epochs=1", "--config.gbn_large_batch=64", "--config.gbn_ghost=32")


def test_layers_example_writes_metrics_summary_and_plot(tmp_path):
    out = run_example("layers", *TINY_FLAGS, f"--workdir={tmp_path}")
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    tract = [r for r in rows if r["experiment"] == "tract"]
    assert {(r["method"], r["input_scale"]) for r in tract} == {("plain", 0.1), ("tract", 0.1)}
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in rows if "test_accuracy" in r)
    assert not [r for r in rows if r["experiment"] == "reste"]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["ghost_bn_equivalence"]["max_abs_diff_logits"] < 1e-4
    assert {e["method"] for e in summary["ghost_bn"]} == {"small_bn", "large_bn", "large_gbn"}
    assert (tmp_path / "layers.png").stat().st_size > 0
    assert "| sgd:0.08 | ×0.1 |" in out


def test_layers_notebook_runs_at_tiny_size():
    outputs = run_notebook("layers.ipynb")
    assert "tiny" in outputs
    closed = float(outputs.split("max |TrAct − closed form| =")[1].split()[0])
    assert closed < 1e-4
    assert "| sgd:0.08 | 1 |" in outputs
    assert "| ste | None |" in outputs and "| reste_fixed | 3.0 |" in outputs
    assert "| 5 | " in outputs  # the fitting-error / instability table over o


def test_layers_benchmark_prints_ratio_table():
    from tests.helpers import run_benchmark

    out = run_benchmark("layers", "--batch=8", "--repeats=1", "--only=TrActDense b=8 <")
    assert "| TrActDense b=8 < n=32 |" in out and "GhostBatchNorm" not in out
