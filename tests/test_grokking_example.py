"""Runs examples/grokking.py end to end at a tiny size, and the notebook."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["JAX_PLATFORMS"] = "cpu"
    env.pop("XLA_FLAGS", None)  # one device is enough here
    return env


def test_example_runs_and_writes_outputs(tmp_path):
    cmd = [sys.executable, str(ROOT / "examples" / "grokking.py"), "--p=5", "--epochs=6",
           "--chunk=3", "--eval_every=2", "--loss=stablemax", "--optimizer=perp_adamw",
           "--lr=0.01", f"--workdir={tmp_path}"]
    subprocess.run(cmd, check=True, env=_env(), timeout=300, capture_output=True)
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
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    path = ROOT / "notebooks" / "grokking.ipynb"
    nb = nbformat.read(path, as_version=4)
    env = _env()
    env["GRADKIT_TINY"] = "1"
    old = dict(os.environ)
    os.environ.update(env)
    try:
        nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "final test accuracy" in outputs
