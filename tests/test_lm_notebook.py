"""Executes notebooks/lm.ipynb at tiny size (GRADKIT_TINY=1) with nbclient."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_lm_notebook_runs_at_tiny_size(monkeypatch):
    pytest.importorskip("ipykernel")
    nb = nbformat.read(os.path.join(ROOT, "notebooks", "lm.ipynb"), as_version=4)
    # The kernel inherits the environment: tiny sizes, gradkit importable, one CPU device.
    monkeypatch.setenv("GRADKIT_TINY", "1")
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": ROOT}}
    ).execute()
    outputs = "".join(
        o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
    )
    assert "| adamw |" in outputs and "| lion |" in outputs and "| spam |" in outputs
    assert "LR sensitivity" in outputs
