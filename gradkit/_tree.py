"""Pytree-path helpers shared by the transforms that select state leaves by name."""

from __future__ import annotations

from typing import Any


def path_names(path: Any) -> set[str]:
    """The string names on a pytree key path (NamedTuple fields, dict keys)."""
    names = set()
    for entry in path:
        for attr in ("name", "key"):
            value = getattr(entry, attr, None)
            if isinstance(value, str):
                names.add(value)
    return names
