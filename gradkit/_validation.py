"""Eager hyperparameter checks shared by every transform.

Only concrete Python/NumPy numbers are checked: schedules, traced values and
values injected by `optax.inject_hyperparams` pass through untouched, since they
are only known inside the update.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import numpy as np


def concrete_number(value: Any) -> float | None:
    """Returns `value` as a float if it is a concrete real scalar, else None."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return float(value)
    return None


def check_interval(
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_closed: bool = True,
    high_closed: bool = False,
) -> None:
    """Raises `ValueError` unless `value` lies in the interval (low, high)."""
    x = concrete_number(value)
    if x is None:
        return
    above = x >= low if low_closed else x > low
    below = x <= high if high_closed else x < high
    if not (above and below) or math.isnan(x):
        interval = (
            ("[" if low_closed else "(")
            + f"{low}, {high}"
            + ("]" if high_closed else ")")
        )
        raise ValueError(f"`{name}` must be in {interval}, got {value!r}.")


def check_positive(name: str, value: Any) -> None:
    check_interval(name, value, 0.0, math.inf, low_closed=False, high_closed=True)


def check_nonnegative(name: str, value: Any) -> None:
    check_interval(name, value, 0.0, math.inf, low_closed=True, high_closed=True)


def check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}, got {value!r}.")


def check_same_structure(updates: Any, state_tree: Any, what: str = "params") -> None:
    """Raises `ValueError` if `updates` is not structured like the state's `what` tree.

    Runs at trace time (structures are static), so a mismatched pytree fails at the
    first call with a readable message instead of deep inside `jax.tree.map`.
    """
    got, want = jax.tree.structure(updates), jax.tree.structure(state_tree)
    if got != want:
        raise ValueError(
            f"`updates` must have the same pytree structure as the {what} the optimizer "
            f"state was initialised with.\n  updates: {got}\n  expected: {want}"
        )


def canonicalize_dtype(dtype: Any) -> Any:
    """`jax.dtypes.canonicalize_dtype(dtype)`, or None for None (a `mu_dtype`/`nu_dtype`).

    Pure NumPy/JAX dtype bookkeeping: creates no device array, so it is safe at
    construction time (before `jax.distributed.initialize`).
    """
    return None if dtype is None else jax.dtypes.canonicalize_dtype(dtype)


def check_nonnegative_int(name: str, value: Any) -> None:
    """Raises `ValueError` unless a concrete `value` is an integer ≥ 0 (traced: unchecked)."""
    if concrete_number(value) is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"`{name}` must be a non-negative integer, got {value!r}.")


def check_learning_rate(value: Any) -> None:
    """Raises `ValueError` unless a concrete learning rate is > 0 (schedules unchecked)."""
    check_positive("learning_rate", value)
