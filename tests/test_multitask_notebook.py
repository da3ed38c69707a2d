"""Executes notebooks/multitask.ipynb at tiny size (GRADKIT_TINY=1) with nbclient."""

from tests.helpers import run_notebook


def test_multitask_notebook_runs_at_tiny_size():
    outputs = run_notebook("multitask.ipynb")
    assert "tiny" in outputs
    assert "| pcgrad | start [9.0, 9.0]" in outputs
    for mode in ("classical", "stochastic", "sum"):
        assert f"| {mode} | val loss" in outputs
    assert "| adaptive | reached" in outputs and "monotone True" in outputs
    assert "| sven | train MSE" in outputs
