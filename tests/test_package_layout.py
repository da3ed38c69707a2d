# SPDX-License-Identifier: Apache-2.0
"""The package layout's rules, read from the source (no import needed).

- No import cycles between gradkit's modules.
- Imports only go down the layers: ``_common`` imports no gradkit module; a method
  package (one per purpose) imports ``_common`` and itself only; ``layers``, ``models``
  and ``data`` sit above the methods; nothing imports ``gradkit/__init__``'s re-exports
  from inside the package.
- No module imports another module's underscore names.
- ``gradkit/__init__.py`` re-exports one name per function (no ``as`` renames) and its
  ``__all__`` lists exactly what it imports.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import gradkit

PACKAGE = pathlib.Path(gradkit.__file__).resolve().parent
TOP_LEVEL = {"layers", "models", "data"}  # may import method packages


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports() -> dict[str, list[tuple[str, str | None]]]:
    """module -> [(imported module, imported name or None)] for gradkit imports."""
    result = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        found = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found += [(a.name, None) for a in node.names if a.name.startswith("gradkit")]
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(module, node, path.name == "__init__.py")
                if target.startswith("gradkit"):
                    found += [(target, a.name) for a in node.names]
        result[module] = found
    return result


IMPORTS = _imports()
MODULES = set(IMPORTS)


def _target_module(target: str, name: str | None) -> str:
    """The module an import refers to: `from gradkit.x import y` is module gradkit.x.y
    when that is a module, else gradkit.x."""
    if name is not None and f"{target}.{name}" in MODULES:
        return f"{target}.{name}"
    return target


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_no_import_cycles():
    graph = {m: {_target_module(t, n) for t, n in deps} - {m} for m, deps in IMPORTS.items()}
    # A package's __init__ imports its modules; the modules never import the __init__.
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*stack, node, nxt]))
            if nxt not in state:
                visit(nxt, [*stack, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m != "gradkit"))
def test_imports_go_down_the_layers(module):
    package = _package(module)
    for target, name in IMPORTS[module]:
        target = _target_module(target, name)
        assert target != "gradkit", f"{module} imports gradkit's public re-exports"
        other = _package(target)
        if module == "gradkit._common":
            pytest.fail(f"gradkit._common imports {target}")
        if other in ("_common", package):
            continue
        assert package in TOP_LEVEL and other not in TOP_LEVEL - {package}, (
            f"{module} imports {target}: a method package imports only gradkit._common "
            f"and itself; layers/models/data import methods, never each other upwards")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_underscore_names_from_other_modules(module):
    for target, name in IMPORTS[module]:
        if name is None or _target_module(target, name) != target:
            continue  # a module import (private modules of one's own package are fine)
        assert not name.startswith("_"), f"{module} imports the private name {target}.{name}"


def test_init_reexports_one_name_each():
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    imported = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                assert alias.asname is None, f"gradkit/__init__ renames {alias.name}"
                imported.append(alias.name)
    assert len(imported) == len(set(imported))
    assert sorted(gradkit.__all__) == sorted(imported)
    assert len(set(map(id, (getattr(gradkit, n) for n in imported
                            if callable(getattr(gradkit, n)))))) == sum(
        callable(getattr(gradkit, n)) for n in imported), "one public name per function"
