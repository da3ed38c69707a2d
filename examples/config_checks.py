# SPDX-License-Identifier: Apache-2.0
"""Checks of example configurations, run once at the start of each ``train_and_evaluate``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def check_positive_ints(config: Mapping[str, Any], *names: str, where: str = "config") -> None:
    """Raises ``ValueError`` unless every field in ``names`` is an integer ≥ 1 (``where``:
    the config's name in the message, e.g. ``"config.eos"`` for a nested one)."""
    for name in names:
        value = config[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{where}.{name} must be a positive integer, got {value!r}.")


def check_learning_rates(config: Mapping[str, Any], *names: str, optional: bool = False,
                         where: str = "config") -> None:
    """Raises ``ValueError`` unless every field in ``names`` is a finite number ≥ 0
    (or ``None`` where ``optional``; ``where`` as in :func:`check_positive_ints`)."""
    for name in names:
        value = config[name]
        if value is None and optional:
            continue
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or value < 0):
            raise ValueError(
                f"{where}.{name} must be a finite non-negative number, got {value!r}.")
