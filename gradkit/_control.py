"""``cond``: ``jax.lax.cond`` that, called eagerly, runs only the branch it takes.

Eagerly (a concrete predicate, outside ``jax.jit``/``vmap``) ``lax.cond`` traces both
branches, then lowers and compiles them as a new program on every call: its branches are
new closures each time, so no cache hits. The transforms' periodic work (moment resets,
Hessian refreshes, spike counts, SVD refreshes) sits in such conds, and an eager update
spent most of its time there. Under a trace the predicate is a tracer and this is
``lax.cond`` itself, so jitted code, and the check that both branches return the same
types, are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax


def cond(pred: Any, true_fun: Callable[..., Any], false_fun: Callable[..., Any],
         *operands: Any) -> Any:
    """``jax.lax.cond(pred, true_fun, false_fun, *operands)``; a concrete `pred` calls the
    taken branch directly (eagerly, op by op)."""
    if isinstance(pred, jax.core.Tracer):
        return jax.lax.cond(pred, true_fun, false_fun, *operands)
    return true_fun(*operands) if bool(pred) else false_fun(*operands)
