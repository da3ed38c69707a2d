# SPDX-License-Identifier: Apache-2.0
"""The notebooks are jupytext pairs: ``notebooks/<name>.py`` (py:percent, the source, linted
by ruff) and ``notebooks/<name>.ipynb`` (committed with outputs). Each pair is in sync; each
notebook opens with a Colab badge, then a cell that installs gradkit on Colab, and has a
``parameters`` cell with ``TINY = False`` that the tests override (tests.helpers.run_notebook).
Executing them is tested by the ``test_<name>_notebook.py`` modules."""

from __future__ import annotations

import jupytext
import nbformat
import pytest

from tests.helpers import ROOT

NOTEBOOKS = ROOT / "notebooks"
NAMES = sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb"))
INSTALL = '%pip install -q "gradkit[examples] @ git+https://github.com/gradkit/gradkit"'


def _cells(notebook):
    return [(c.cell_type, c.source.strip(), sorted(c.get("metadata", {}).get("tags", [])))
            for c in notebook.cells]


def test_every_notebook_is_a_pair():
    assert NAMES
    sources = {p.stem for p in NOTEBOOKS.glob("*.py")}
    assert sources == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_pair_is_in_sync(name):
    source = jupytext.read(NOTEBOOKS / f"{name}.py")
    committed = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    assert _cells(source) == _cells(committed), (
        f"notebooks/{name}.ipynb is out of sync with its source: run "
        f"`jupytext --sync notebooks/{name}.py`")
    assert committed.metadata["jupytext"]["formats"] == "ipynb,py:percent"


@pytest.mark.parametrize("name", NAMES)
def test_badge_install_cell_and_parameters(name):
    cells = jupytext.read(NOTEBOOKS / f"{name}.py").cells
    assert cells[0].cell_type == "markdown"
    url = ("https://colab.research.google.com/github/gradkit/gradkit/blob/main/notebooks/"
           f"{name}.ipynb")
    assert f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})" \
        in cells[0].source
    code = [c for c in cells if c.cell_type == "code"]
    assert 'if "google.colab" in sys.modules:' in code[0].source
    assert INSTALL in code[0].source
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].source.startswith("TINY = False")
    assert "GRADKIT_TINY" not in "".join(c.source for c in cells)
