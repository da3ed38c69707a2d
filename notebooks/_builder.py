"""What the notebook build scripts (``build_*.py``) share: cell helpers and the set-up cell.

Every notebook starts with :func:`setup_cell`: inside a gradkit checkout it does nothing;
on a fresh Colab runtime it clones the repository named in ``pyproject.toml``
(``[project.urls] Repository``, the only place that names it) and installs gradkit from the
clone. ``python notebooks/_builder.py`` rewrites that cell in every committed notebook in
place (other cells and their outputs unchanged), without executing anything.
"""

import pathlib
import sys
import tomllib

import nbformat as nbf

HERE = pathlib.Path(__file__).parent
PYPROJECT = HERE.parent / "pyproject.toml"

# Marks the set-up cell (first line of its source) so it can be found and replaced.
SETUP_MARKER = "# Set-up: gradkit and its examples"

SETUP_TEMPLATE = r'''
{marker} (run this cell first).
# Inside a gradkit checkout (a clone of the repository, as in its tests) it only puts the
# checkout on sys.path, so that `examples.<task>` imports.
# On a fresh Colab runtime it clones the repository (shallow; the notebooks import code from
# its examples/ folder), installs gradkit from the clone with its `examples` extra and works
# from the clone. Elsewhere, run the notebook from a checkout:
#   git clone {url} && pip install -e "./gradkit[examples]"
import importlib
import importlib.util
import os
import pathlib
import subprocess
import sys

REPOSITORY = "{url}"


def gradkit_checkout():
    """The checkout this notebook runs in: the working folder, one of its parents, or the
    folder above the importable gradkit package; None if none holds gradkit and examples/."""
    here = pathlib.Path.cwd().resolve()
    candidates = [here, *here.parents]
    spec = importlib.util.find_spec("gradkit")
    if spec is not None and spec.origin is not None:
        candidates.append(pathlib.Path(spec.origin).resolve().parents[1])
    for path in candidates:
        if (path / "gradkit" / "__init__.py").is_file() and (path / "examples").is_dir():
            return path
    return None


ROOT = gradkit_checkout()
if ROOT is None:
    if "google.colab" not in sys.modules:
        raise RuntimeError(
            "This notebook needs a gradkit checkout (it imports code from examples/): run "
            f"`git clone {{REPOSITORY}}`, `pip install -e \"./gradkit[examples]\"`, then open "
            "the notebook from the clone's notebooks/ folder, or open it on Colab.")
    ROOT = pathlib.Path.cwd().resolve() / "gradkit"
    if not (ROOT / "examples").is_dir():
        subprocess.run(["git", "clone", "--quiet", "--depth=1", REPOSITORY, str(ROOT)],
                       check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", f"{{ROOT}}[examples]"],
                   check=True)
    importlib.invalidate_caches()
    os.chdir(ROOT)
    print("gradkit installed from", REPOSITORY, "into", ROOT)
if str(ROOT) not in sys.path:  # the notebooks import `examples.<task>` from the checkout
    sys.path.insert(0, str(ROOT))
'''


def repository_url() -> str:
    """The repository URL: ``[project.urls] Repository`` in pyproject.toml."""
    with open(PYPROJECT, "rb") as f:
        return tomllib.load(f)["project"]["urls"]["Repository"]


def setup_cell() -> str:
    """The source of every notebook's first code cell (see the module docstring)."""
    return SETUP_TEMPLATE.format(marker=SETUP_MARKER, url=repository_url()).strip()


def is_setup_cell(cell) -> bool:
    """Whether `cell` is a notebook's set-up cell (this one, or the older Colab install
    cell it replaces)."""
    return cell.cell_type == "code" and (cell.source.startswith(SETUP_MARKER)
                                         or "google.colab" in cell.source)


class Builder:
    """Collects cells (the set-up cell first) and writes ``notebooks/<name>``."""

    def __init__(self):
        self.cells = []
        self.code(setup_cell())

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


def update_setup_cells(paths=None) -> list[pathlib.Path]:
    """Replaces the set-up cell of each notebook in `paths` (default: all committed
    notebooks) by :func:`setup_cell`, keeping every other cell, its outputs and execution
    counts (the cell itself prints nothing inside a checkout); returns the notebooks
    changed."""
    changed = []
    source = setup_cell()
    for path in sorted(paths or HERE.glob("*.ipynb")):
        nb = nbf.read(path, as_version=4)
        cell = next((c for c in nb.cells if is_setup_cell(c)), None)
        if cell is None:
            raise ValueError(f"{path}: no set-up cell (a code cell starting with "
                             f"{SETUP_MARKER!r}) to update")
        if cell.source == source and not cell.outputs:
            continue
        cell.source, cell.outputs = source, []
        nbf.write(nb, path)
        changed.append(path)
    return changed


if __name__ == "__main__":
    for path in update_setup_cells([pathlib.Path(p) for p in sys.argv[1:]] or None):
        print("updated", path)
