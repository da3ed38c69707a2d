"""End-to-end runs of examples/sophia.py and notebooks/sophia.ipynb at tiny size."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import nbformat
from nbclient import NotebookClient

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = ""
    return env


def test_example_runs_end_to_end(tmp_path):
    cmd = [sys.executable, str(ROOT / "examples" / "sophia.py"), f"--workdir={tmp_path}",
           "--steps=20", "--eval_every=10", "--num_eval=64", "--hidden=8",
           "--sweep_lrs=1e-3", "--batch_size=16", "--target_loss=2.5",
           "--optimizers=adamw,sophia_g"]
    out = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| sophia_g |" in out.stdout and "| adamw |" in out.stdout
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 * 1 * 3  # optimizers × lrs × (1 + steps / eval_every)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["best"]) == {"adamw", "sophia_g"}
    assert 0.0 <= summary["best"]["sophia_g"]["final_win_rate"] <= 1.0
    assert (tmp_path / "loss.png").stat().st_size > 0


def test_notebook_executes_at_tiny_size():
    nb = nbformat.read(ROOT / "notebooks" / "sophia.ipynb", as_version=4)
    os.environ["GRADKIT_TINY"] = "1"
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "XLA_FLAGS")}
    try:
        os.environ.update({k: v for k, v in _env().items() if k in saved})
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        os.environ.pop("GRADKIT_TINY")
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.get("outputs", []))
    assert "| sophia_g |" in text and "| adamw |" in text
