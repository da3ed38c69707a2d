"""Executes notebooks/spam.ipynb at tiny size (GRADKIT_TINY=1) with nbclient."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_spam_notebook_runs_at_tiny_size(monkeypatch):
    pytest.importorskip("ipykernel")
    nb = nbformat.read(os.path.join(ROOT, "notebooks", "spam.ipynb"), as_version=4)
    # The kernel inherits the environment: tiny sizes, gradkit importable, one CPU device.
    monkeypatch.setenv("GRADKIT_TINY", "1")
    monkeypatch.setenv("PYTHONPATH", ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": ROOT}}
    ).execute()
    outputs = "".join(
        o.get("text", "") for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs
    )
    assert "tiny" in outputs
    for name in ("adam", "spam", "stable_spam"):
        assert f"| {name} |" in outputs
    # 60 steps logged every 10, 3 optimizers × (spiked, clean).
    assert "36 logged rows" in outputs
    table = {line.split("|")[1].strip(): line.split("|")[2:6]
             for line in outputs.splitlines() if line.startswith("| ") and "e" in line}
    # SPAM clips the injected spikes; Adam has no clipping at all.
    assert int(table["adam"][3]) == 0
    assert int(table["spam"][3]) > 0
    for name in ("adam", "spam", "stable_spam"):
        assert all(float(v) == float(v) for v in table[name][:3])  # finite, not NaN
