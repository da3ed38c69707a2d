"""Each example's main.py (a subprocess, the only one per example): ``--help`` lists the
example's own flags, one per field of its ``train.Config``; the runs themselves are
tested in-process through ``train.train_and_evaluate``."""

from __future__ import annotations

import dataclasses
import importlib
import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT
from tests.helpers import subprocess_env

EXAMPLES = ["grokking", "spikes", "lion_vs_adamw", "eggroll_lm", "eggroll_rl"]


@pytest.mark.slow
@pytest.mark.parametrize("name", EXAMPLES)
def test_help_lists_a_flag_for_every_config_field(name):
    config = importlib.import_module(f"examples.{name}.train").Config
    result = subprocess.run([sys.executable, str(ROOT / "examples" / name / "main.py"), "--help"],
                            capture_output=True, text=True, env=subprocess_env(), check=False,
                            timeout=120, cwd=ROOT.parent)  # absl's --help exits with status 1
    out = result.stdout
    assert f"examples/{name}/main.py:" in out, result.stderr[-2000:]
    for field in dataclasses.fields(config):
        assert re.search(rf"--(\[no\])?{field.name}:", out), field.name
    assert "--workdir:" in out
