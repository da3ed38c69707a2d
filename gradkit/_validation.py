"""Eager hyperparameter checks shared by every transform.

Only concrete Python/NumPy numbers are checked: schedules, traced values and
values injected by `optax.inject_hyperparams` pass through untouched, since they
are only known inside the update.
"""

from __future__ import annotations

import math
import numbers
import warnings
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


def check_learning_rate(value: Any, name: str = "learning_rate") -> None:
    """Raises `ValueError` unless a concrete learning rate is finite and > 0.

    A zero, negative or non-finite learning rate would silently stop training or step
    uphill. Schedules (callables), traced values and values injected by
    `optax.inject_hyperparams` pass through: they are only known inside the update.
    """
    if callable(value):
        return
    x = concrete_number(value)
    if x is None:
        return
    if isinstance(value, bool) or not (math.isfinite(x) and x > 0.0):
        raise ValueError(
            f"`{name}` must be a finite number > 0 or a schedule (a callable of the step "
            f"count), got {value!r}.")


def is_int(value: Any) -> bool:
    """True for a Python/NumPy integer (bools excluded)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value: Any, low: int = 0, high: int | None = None,
              high_name: str | None = None) -> None:
    """Raises `ValueError` unless `value` is an integer with ``low <= value`` (``< high``).

    The message says "a non-negative integer" (low 0), "a positive integer" (low 1), or
    "an integer in [low, high)" (``high_name`` labels the bound, e.g. ``num_steps=5``).
    """
    ok = is_int(value) and value >= low and (high is None or value < high)
    if ok:
        return
    if high is not None:
        bound = f"{high_name}={high}" if high_name else f"{high}"
        what = f"an integer in [{low}, {bound})"
    elif low == 0:
        what = "a non-negative integer"
    elif low == 1:
        what = "a positive integer"
    else:
        what = f"an integer >= {low}"
    raise ValueError(f"`{name}` must be {what}, got {value!r}.")


def check_nonnegative_int(name: str, value: Any) -> None:
    """`check_int` with ``low=0``; a JAX array (traced or injected) passes unchecked."""
    if isinstance(value, jax.Array):
        return
    check_int(name, value, low=0)


def check_positive_int(name: str, value: Any) -> None:
    check_int(name, value, low=1)


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



def resolve_key(key: Any, seed: Any, who: str) -> Any:
    """`key`, or the deprecated `seed` (with a DeprecationWarning at the caller); default 0."""
    if seed is None:
        return 0 if key is None else key
    if key is not None:
        raise TypeError(f"{who}: pass `key` only (`seed` is its deprecated alias).")
    warnings.warn(f"{who}(seed=...) is deprecated and will be removed in the next "
                  "release: pass `key=`.", DeprecationWarning, stacklevel=3)
    return seed
