"""Checks every notebook shares: the set-up cell that makes it run on a fresh Colab runtime.

The notebooks themselves are executed at tiny size by their families' tests; here the first
code cell is checked against ``notebooks/_builder.py`` and executed in-process with
``subprocess.run`` replaced, so nothing is installed or downloaded.
"""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys
import tomllib
import types

import nbformat
import pytest

from tests.helpers import ROOT

sys.path.insert(0, str(ROOT / "notebooks"))
import _builder

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REPOSITORY = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"][
    "Repository"]


def first_code_cell(path: pathlib.Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return next(c for c in nb.cells if c.cell_type == "code").source


def test_notebooks_are_found():
    assert len(NOTEBOOKS) >= 10


def test_repository_url_is_read_from_pyproject():
    assert REPOSITORY.startswith("https://github.com/")
    assert _builder.repository_url() == REPOSITORY
    assert f'REPOSITORY = "{REPOSITORY}"' in _builder.setup_cell()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_first_code_cell_is_the_current_setup_cell(path):
    source = first_code_cell(path)
    # Regenerate with `python notebooks/_builder.py` when this fails.
    assert source == _builder.setup_cell()
    assert REPOSITORY in source
    for needed_variable in ("environ", "getenv", "GRADKIT_PIP", "GRADKIT_REPO"):
        assert needed_variable not in source


def run_setup_cell(monkeypatch, cwd, *, colab: bool, gradkit_importable: bool):
    """Executes the set-up cell in `cwd`; returns (its namespace, the commands it ran)."""
    commands = []

    def fake_run(cmd, check=False, **kwargs):
        commands.append(list(cmd))
        if cmd[:2] == ["git", "clone"]:  # what a clone leaves behind
            clone = pathlib.Path(cmd[-1])
            (clone / "gradkit").mkdir(parents=True)
            (clone / "gradkit" / "__init__.py").write_text("")
            (clone / "examples").mkdir()
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "path", list(sys.path))
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    if not gradkit_importable:
        real_find_spec = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None
                            if name == "gradkit" else real_find_spec(name, *a))
    namespace = {}
    exec(compile(_builder.setup_cell(), "setup cell", "exec"), namespace)
    return namespace, commands


@pytest.mark.parametrize("colab", [False, True])
def test_setup_cell_inside_the_checkout_installs_nothing(monkeypatch, colab):
    namespace, commands = run_setup_cell(monkeypatch, ROOT / "notebooks", colab=colab,
                                         gradkit_importable=True)
    assert commands == []
    assert namespace["ROOT"] == ROOT
    assert pathlib.Path.cwd() == ROOT / "notebooks"
    assert str(ROOT) in sys.path  # `from examples.<task> import train` works


def test_setup_cell_finds_the_checkout_of_the_importable_gradkit(monkeypatch, tmp_path):
    # As the tests run some notebooks: working folder elsewhere, gradkit on PYTHONPATH.
    namespace, commands = run_setup_cell(monkeypatch, tmp_path, colab=True,
                                         gradkit_importable=True)
    assert commands == [] and namespace["ROOT"] == ROOT


def test_setup_cell_on_a_fresh_colab_runtime_clones_and_installs(monkeypatch, tmp_path):
    namespace, commands = run_setup_cell(monkeypatch, tmp_path, colab=True,
                                         gradkit_importable=False)
    clone = tmp_path.resolve() / "gradkit"
    assert commands == [
        ["git", "clone", "--quiet", "--depth=1", REPOSITORY, str(clone)],
        [sys.executable, "-m", "pip", "install", "--quiet", f"{clone}[examples]"],
    ]
    assert namespace["ROOT"] == clone
    assert pathlib.Path.cwd() == clone and sys.path[0] == str(clone)


def test_setup_cell_outside_a_checkout_and_colab_says_what_to_do(monkeypatch, tmp_path):
    with pytest.raises(RuntimeError, match=f"git clone {REPOSITORY}"):
        run_setup_cell(monkeypatch, tmp_path, colab=False, gradkit_importable=False)
