"""The benchmarks run (at a tiny size) and print their table; timings are not asserted."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT


def run_benchmark(module: str, *flags: str) -> str:
    result = subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *flags],
                            capture_output=True, text=True, cwd=ROOT, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def test_lion_benchmark_prints_ratio_table():
    out = run_benchmark("lion", "--num_params=256", "--width=16", "--repeats=2")
    assert "| optax.adamw |" in out and "| gradkit.lion |" in out
