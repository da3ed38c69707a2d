"""What the notebook build scripts (``build_*.py``) share: cell helpers, the Colab cell."""

import pathlib

import nbformat as nbf

HERE = pathlib.Path(__file__).parent

# Every notebook's first cell: install gradkit when running on Colab.
COLAB_INSTALL = r'''
# On Colab, install gradkit first: set GRADKIT_PIP to your gradkit source, e.g.
# "gradkit[examples] @ git+<your gradkit repository URL>" (elsewhere install it yourself).
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    os.environ.get("GRADKIT_PIP", "gradkit[examples]")], check=True)
'''


class Builder:
    """Collects cells (the Colab install cell first) and writes ``notebooks/<name>``."""

    def __init__(self):
        self.cells = []
        self.code(COLAB_INSTALL)

    def md(self, text: str) -> None:
        self.cells.append(nbf.v4.new_markdown_cell(text.strip(), id=self._next_id()))

    def code(self, text: str) -> None:
        self.cells.append(nbf.v4.new_code_cell(text.strip(), id=self._next_id()))

    def _next_id(self) -> str:
        # Positional ids (nbformat's default is random) keep rebuilds free of id-only diffs.
        return f"cell-{len(self.cells)}"

    def write(self, name: str) -> pathlib.Path:
        nb = nbf.v4.new_notebook(cells=self.cells)
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        path = HERE / name
        nbf.write(nb, path)
        print("wrote", path)
        return path
