"""Each example's main.py defines one flag per field of its ``train.Config`` (plus
``--workdir``), read statically; one subprocess checks that ``--help`` lists them. The
runs themselves are tested in-process through ``train.train_and_evaluate``."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import subprocess
import sys

import pytest

from tests.helpers import ROOT
from tests.helpers import subprocess_env

EXAMPLES = ["grokking", "spikes", "lion_vs_adamw", "eggroll_lm", "eggroll_rl"]


def _defined_flags(name: str) -> set[str]:
    tree = ast.parse((ROOT / "examples" / name / "main.py").read_text())
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr.startswith("DEFINE_")}


@pytest.mark.parametrize("name", EXAMPLES)
def test_main_defines_a_flag_for_every_config_field(name):
    config = importlib.import_module(f"examples.{name}.train").Config
    assert _defined_flags(name) == {f.name for f in dataclasses.fields(config)} | {"workdir"}


@pytest.mark.slow
def test_help_lists_the_examples_own_flags():
    # grokking's train module imports JAX lazily, so this subprocess starts in a second.
    result = subprocess.run([sys.executable, str(ROOT / "examples/grokking/main.py"), "--help"],
                            capture_output=True, text=True, env=subprocess_env(), check=False,
                            timeout=120, cwd=ROOT.parent)  # absl's --help exits with status 1
    for flag in _defined_flags("grokking"):
        assert f"--{flag}:" in result.stdout, result.stderr[-2000:]
