# SPDX-License-Identifier: Apache-2.0
"""Private helpers shared by every gradkit package: one helper per concept.

- Hyperparameter validation (eager, on concrete Python/NumPy numbers only: schedules,
  traced values and values injected by ``optax.inject_hyperparams`` pass through, since
  they are only known inside the update).
- Static integers (values that set array shapes or Python control flow).
- PRNG keys: an int or a ``jax.random.key`` in, raw ``uint32`` key data in state.
- Moment dtypes (``mu_dtype``/``nu_dtype``).
- Weakly typed hyperparameters (Python floats round like injected ones).
- Finding one transform's state inside a chained optax state.
- Pytree-path names (selecting state leaves by field name).

Nothing here creates a device array at import or construction time, so constructors are
safe before ``jax.distributed.initialize``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

# ------------------------------------------------------------------------- validation


def concrete_number(value: Any) -> float | None:
    """Returns `value` as a float if it is a concrete real scalar, else None."""
    if isinstance(value, numbers.Real):  # bool is an Integral, so a Real
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biuf":
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
    """Raises `ValueError` unless `value` lies in the interval (low, high); `TypeError`
    for a string or bytes (a number written as text would fail later inside JAX)."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"`{name}` must be a number, got {value!r}.")
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
    """Raises unless a concrete learning rate is a finite number >= 0.

    Zero is optax's idiom for freezing parameters; a negative or non-finite learning rate
    would step uphill or destroy the parameters, and None is no learning rate at all.
    Schedules (callables), traced values and values injected by `optax.inject_hyperparams`
    pass through: they are only known inside the update.
    """
    if callable(value) or isinstance(value, jax.Array):
        return
    x = concrete_number(value)
    if x is None or isinstance(value, bool):
        raise TypeError(f"`{name}` must be a number or a schedule (a callable of the step "
                        f"count), got {value!r}.")
    if not (math.isfinite(x) and x >= 0.0):
        raise ValueError(f"`{name}` must be a finite number >= 0 or a schedule (a callable "
                         f"of the step count), got {value!r}.")


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


def static_int(name: str, value: Any, low: int = 1) -> int:
    """A Python int >= `low` from an int or a concrete array (as `inject_hyperparams`
    passes), for values that set array shapes or Python control flow.

    A traced value raises `ValueError` saying to list `name` in ``static_args``.
    """
    if isinstance(value, (jax.Array, np.ndarray)):
        try:
            value = value.item() if np.ndim(value) == 0 else value
        except jax.errors.ConcretizationTypeError as e:
            raise ValueError(
                f"`{name}` sets array shapes or control flow and must be static; with "
                f"`optax.inject_hyperparams` pass `static_args=('{name}',)`.") from e
    check_int(name, value, low=low)
    return int(value)


def static_float(name: str, value: Any) -> float:
    """A Python float from a number or a concrete array (as `inject_hyperparams` passes),
    for values that set array shapes (e.g. a fraction of a dimension).

    A traced value raises `ValueError` saying to list `name` in ``static_args``.
    """
    try:
        return float(value)
    except (TypeError, jax.errors.ConcretizationTypeError) as e:
        raise ValueError(
            f"`{name}` sets array shapes and must be static; with "
            f"`optax.inject_hyperparams` pass `static_args=('{name}',)`.") from e


# ------------------------------------------------------------------------------- keys


def is_int_key(key: Any) -> bool:
    """An integer key: a Python/NumPy int, or an integer scalar array (as
    ``optax.inject_hyperparams`` passes an int default)."""
    return is_int(key) or (isinstance(key, jax.Array) and key.ndim == 0
                           and jnp.issubdtype(key.dtype, jnp.integer))


def key_data(key: Any, name: str = "key", impl: str | None = None) -> jax.Array:
    """Raw ``uint32`` key data (checkpointable state) from an int (seeding a key of PRNG
    implementation `impl`, JAX's default if None), a typed ``jax.random.key`` or raw key
    data."""
    if is_int_key(key):
        return jax.random.key_data(jax.random.key(key, impl=impl))
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    if isinstance(key, jax.Array) and key.dtype == jnp.uint32 and key.ndim >= 1:
        return key
    raise TypeError(f"`{name}` must be an integer or a JAX PRNG key, got {key!r}.")


def typed_key(key: Any, name: str = "key") -> jax.Array:
    """A typed ``jax.random.key`` from an int, a typed key or raw key data."""
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    return jax.random.wrap_key_data(key_data(key, name))


def numpy_seed(key: Any, name: str = "key") -> int | tuple[int, ...]:
    """Entropy for ``numpy.random.default_rng`` (host-side data generators) from a `key`:
    an int is used as it is, a JAX key (typed or raw data) as its ``uint32`` words."""
    if is_int(key):
        return int(key)
    return tuple(int(v) for v in np.asarray(key_data(key, name)).ravel())


# ----------------------------------------------------------------------------- dtypes


def canonicalize_dtype(dtype: Any) -> Any:
    """`jax.dtypes.canonicalize_dtype(dtype)`, or None for None (a `mu_dtype`/`nu_dtype`).

    Pure NumPy/JAX dtype bookkeeping: creates no device array, so it is safe at
    construction time (before `jax.distributed.initialize`).
    """
    return None if dtype is None else jax.dtypes.canonicalize_dtype(dtype)


def nu_dtype_for(param_dtype: Any, nu_dtype: Any) -> Any:
    """dtype of a second moment (or another squared statistic): `nu_dtype`, else float32
    for float params narrower than 32 bits (a bf16 square underflows), else the params'."""
    if nu_dtype is not None:
        return jnp.dtype(nu_dtype)
    param_dtype = jnp.dtype(param_dtype)
    if jnp.issubdtype(param_dtype, jnp.floating) and param_dtype.itemsize < 4:
        return jnp.dtype(jnp.float32)
    return param_dtype


def check_float_dtype(name: str, dtype: Any) -> None:
    """Raises `TypeError` unless `dtype` is None or a floating dtype (moments are floats)."""
    if dtype is not None and not jnp.issubdtype(jnp.dtype(dtype), jnp.floating):
        raise TypeError(f"`{name}` must be a floating dtype or None, got {dtype!r}.")


def weak(x: Any) -> Any:
    """A Python float as a weakly typed array: it then rounds like the same value
    injected by ``optax.inject_hyperparams`` (and keeps bf16 math in bf16)."""
    return jnp.asarray(x) if isinstance(x, float) else x


# ------------------------------------------------------------------------------ state


def find_state(opt_state: Any, kind: type, who: str | None = None) -> Any:
    """The one state of type `kind` inside a (chained, wrapped) optax state."""
    found = [value for _, value in optax.tree.get_all_with_path(opt_state, kind.__name__)
             if isinstance(value, kind)]
    if len(found) != 1:
        where = f"{who} needs" if who else "Expected"
        raise ValueError(f"{where} exactly one {kind.__name__} in `opt_state`, found "
                         f"{len(found)}.")
    return found[0]


def path_names(path: Any) -> set[str]:
    """The string names on a pytree key path (NamedTuple fields, dict keys)."""
    names = set()
    for entry in path:
        for attr in ("name", "key"):
            value = getattr(entry, attr, None)
            if isinstance(value, str):
                names.add(value)
    return names


# ------------------------------------------------------------------- stacked gradients


def _describe_shapes(tree: Any) -> str:
    return ", ".join(f"{jax.tree_util.keystr(path)}: {tuple(leaf.shape)}"
                     for path, leaf in jax.tree_util.tree_leaves_with_path(tree))


def as_stacked(updates: Any, params: Any | None, what: str = "task") -> Any:
    """Returns `updates` with a leading `what` axis (tasks, samples) on every leaf.

    Accepts the stacked form (every leaf has a leading axis of the same size K), or,
    when `params` is given, a tuple/list of K trees each structured like `params`, which
    are stacked. Raises `ValueError` naming the mismatch otherwise.
    """
    if params is not None and isinstance(updates, (tuple, list)):
        p_def = jax.tree.structure(params)
        if jax.tree.structure(updates) != p_def:
            if len(updates) == 0:
                raise ValueError(f"`updates` is an empty sequence: need at least one {what}.")
            for i, tree in enumerate(updates):
                if jax.tree.structure(tree) != p_def:
                    raise ValueError(
                        f"`updates[{i}]` is not structured like `params`; pass one gradient "
                        f"tree per {what} (each like params) or one tree whose leaves have a "
                        f"leading {what} axis.\n  got: {jax.tree.structure(tree)}\n"
                        f"  expected: {p_def}")
            updates = jax.tree.map(lambda *xs: jnp.stack(xs), *updates)
    leaves = jax.tree.leaves(updates)
    if not leaves:
        raise ValueError("`updates` has no leaves.")
    for leaf in leaves:
        if jnp.ndim(leaf) < 1:
            raise ValueError(
                f"every leaf of `updates` needs a leading {what} axis; got a scalar leaf "
                f"(leaf shapes: {_describe_shapes(updates)}).")
    sizes = {leaf.shape[0] for leaf in leaves}
    if len(sizes) != 1:
        raise ValueError(
            f"mismatched {what} axes: the leaves of `updates` have leading sizes "
            f"{sorted(sizes)}; every leaf must have the same number of {what}s "
            f"(leaf shapes: {_describe_shapes(updates)}).")
    if params is not None:
        if jax.tree.structure(updates) != jax.tree.structure(params):
            raise ValueError(
                "`updates` (with its leading axis) must have the pytree structure of "
                f"`params`.\n  updates: {jax.tree.structure(updates)}\n"
                f"  params: {jax.tree.structure(params)}")
        for (path, u), p in zip(jax.tree_util.tree_leaves_with_path(updates),
                                jax.tree.leaves(params), strict=True):
            if tuple(u.shape[1:]) != tuple(jnp.shape(p)):
                raise ValueError(
                    f"leaf {jax.tree_util.keystr(path)} of `updates` has shape "
                    f"{tuple(u.shape)}; expected ({what}s, *{tuple(jnp.shape(p))}) to match "
                    "`params`.")
    return updates


def num_stacked(updates: Any) -> int:
    """The size of the leading (task/sample) axis of a stacked tree."""
    return int(jax.tree.leaves(updates)[0].shape[0])
