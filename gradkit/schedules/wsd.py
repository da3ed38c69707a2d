# SPDX-License-Identifier: Apache-2.0
"""Warmup-Stable-Decay (WSD) and its multi-budget variant WSD-S.

WSD (MiniCPM, Hu et al. 2024, arXiv 2404.06395) warms up linearly, holds the peak
learning rate, and decays only over the last ``decay_steps``. WSD-S (Wen et al. 2024,
arXiv 2410.05192) keeps one main branch: at each budget point it decays, then jumps
straight back to the peak and continues training *from the decayed iterate*, so one
run yields a decayed checkpoint for every budget. Our WSD-S follows the schedule of
levanter's ``OptimizerConfig.lr_scheduler`` (stanford-crfm/levanter,
``src/levanter/optim/config.py``, Apache-2.0; the test transcribes it and compares on a
grid of steps). Both are plain ``optax.Schedule`` callables: pure ``jnp`` functions of
the step count, jit-able and usable as any gradkit/optax ``learning_rate`` or under
``optax.inject_hyperparams``.

The floor r (``final_fraction``) multiplies every decay shape,
``η = η_max·[r + (1 − r)·S(x)]`` (as Hugging Face's WSD does; pytorch-optimizer applies
it to cosine only). With ``r = 0`` every shape ends exactly at 0.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable
from collections.abc import Sequence
from typing import Literal

import jax
import jax.numpy as jnp
import optax

from gradkit import _common

DecayShape = Literal["linear", "cosine", "1-sqrt", "1-square"]
DECAY_SHAPES: tuple[str, ...] = ("linear", "cosine", "1-sqrt", "1-square")


def decay_shape_fn(decay_shape: DecayShape) -> Callable[[jax.Array], jax.Array]:
    """The decay shape S(x) on x ∈ [0, 1], with S(0) = 1 and S(1) = 0.

    ``"linear"``: 1 − x; ``"cosine"``: ½(1 + cos πx); ``"1-sqrt"``: 1 − √x
    (Hägele et al. 2024, arXiv 2405.18392); ``"1-square"``: 1 − x².
    """
    _common.check_choice("decay_shape", decay_shape, DECAY_SHAPES)
    if decay_shape == "linear":
        return lambda x: 1.0 - x
    if decay_shape == "cosine":
        return lambda x: 0.5 * (1.0 + jnp.cos(jnp.pi * x))
    if decay_shape == "1-sqrt":
        return lambda x: 1.0 - jnp.sqrt(x)
    return lambda x: 1.0 - x * x


def _check_peak(peak_value) -> None:
    _common.check_positive("peak_value", peak_value)
    x = _common.concrete_number(peak_value)
    if x is not None and not math.isfinite(x):
        raise ValueError(f"`peak_value` must be finite, got {peak_value!r}.")


def _step(count) -> jax.Array:
    # Float step, clamped below at 0 (optax schedules do the same for negative counts).
    return jnp.maximum(jnp.asarray(count, jnp.float32), 0.0)


def wsd_schedule(
    peak_value: float,
    total_steps: int,
    warmup_steps: int,
    decay_steps: int,
    decay_shape: DecayShape = "linear",
    final_fraction: float = 0.0,
) -> optax.Schedule:
    r"""Warmup-Stable-Decay learning-rate schedule.

    With η_max = ``peak_value``, T = ``total_steps``, T_w = ``warmup_steps``,
    T_d = ``decay_steps`` and r = ``final_fraction``, the value at step t (the optax
    update count, 0 for the first update) is

    .. math::
      η(t) = \begin{cases}
        η_{max}\, t / T_w & 0 ≤ t < T_w \\
        η_{max} & T_w ≤ t < T - T_d \\
        η_{max}\,[r + (1 - r)\, S(x)],\ x = \frac{t - (T - T_d)}{T_d} & T - T_d ≤ t ≤ T
      \end{cases}

    and η_max·r for t > T (negative t act as 0). S is the ``decay_shape``: linear
    1 − x, cosine ½(1 + cos πx), 1-sqrt 1 − √x, 1-square 1 − x². ``decay_steps = 0``
    gives warm-up + constant.

    Args:
      peak_value: η_max > 0.
      total_steps: T ≥ 1, the training budget.
      warmup_steps: T_w ≥ 0 linear warm-up steps from 0.
      decay_steps: T_d ≥ 0 steps of decay at the end; T_w + T_d ≤ T.
      decay_shape: ``"linear"`` (default), ``"cosine"``, ``"1-sqrt"`` or ``"1-square"``.
      final_fraction: r ∈ [0, 1], the floor as a fraction of η_max, applied to every shape.

    Returns:
      An ``optax.Schedule`` (float32 values; jit-able).

    Raises:
      ValueError: naming the argument, for a non-positive ``peak_value``, a negative or
        non-integer step count, ``warmup_steps + decay_steps > total_steps``, an unknown
        ``decay_shape`` or ``final_fraction`` outside [0, 1].

    Example:
      >>> import gradkit, optax
      >>> lr = gradkit.wsd_schedule(3e-3, total_steps=1000, warmup_steps=50,
      ...                           decay_steps=200, decay_shape="1-sqrt")
      >>> opt = optax.adamw(lr)
      >>> float(lr(500)), float(lr(1000))
      (0.003000000026077032, 0.0)

    References:
      Hu et al., `MiniCPM: Unveiling the Potential of Small Language Models with Scalable
      Training Strategies <https://arxiv.org/abs/2404.06395>`_, 2024 (§4.1, WSD).
      Hägele et al., `Scaling Laws and Compute-Optimal Training Beyond Fixed Training
      Durations <https://arxiv.org/abs/2405.18392>`_, 2024 (the 1-sqrt cooldown).
      Wen et al., `Understanding Warmup-Stable-Decay Learning Rates: A River Valley Loss
      Landscape Perspective <https://arxiv.org/abs/2410.05192>`_, 2024.
      MiniCPM's own decay is exponential; the shapes here are the ones of the later
      papers and libraries (see ``docs/schedules.md``).
    """
    _check_peak(peak_value)
    _common.check_positive_int("total_steps", total_steps)
    _common.check_nonnegative_int("warmup_steps", warmup_steps)
    _common.check_nonnegative_int("decay_steps", decay_steps)
    if decay_steps > total_steps:
        raise ValueError(
            f"`decay_steps` must be <= `total_steps` ({total_steps}), got {decay_steps}."
        )
    if warmup_steps + decay_steps > total_steps:
        raise ValueError(
            f"`warmup_steps` + `decay_steps` must be <= `total_steps` ({total_steps}), got "
            f"{warmup_steps} + {decay_steps}."
        )
    shape = decay_shape_fn(decay_shape)
    _common.check_interval("final_fraction", final_fraction, 0.0, 1.0, high_closed=True)
    r = float(final_fraction)
    decay_start = total_steps - decay_steps

    def schedule(count):
        t = _step(count)
        value = jnp.full_like(t, 1.0)
        if warmup_steps > 0:
            value = jnp.where(t < warmup_steps, t / warmup_steps, value)
        if decay_steps > 0:
            x = jnp.clip((t - decay_start) / decay_steps, 0.0, 1.0)
            value = jnp.where(t >= decay_start, r + (1.0 - r) * shape(x), value)
        return peak_value * value

    return schedule


def _frac_or_steps(name: str, value, cycle_steps: int) -> int:
    """Steps in a cycle: a float in [0, 1] is a fraction of the cycle, an int is steps."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"`{name}` must be a fraction in [0, 1] or a step count, got {value!r}.")
    if isinstance(value, numbers.Integral):
        if value < 0:
            raise ValueError(f"`{name}` must be >= 0, got {value!r}.")
        return int(value)
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v > 1 and v % 1 != 0):
        raise ValueError(
            f"`{name}` must be a fraction in [0, 1] or a whole number of steps, got {value!r}."
        )
    return int(v * cycle_steps) if v <= 1 else int(v)


def wsd_s_cycle_points(total_steps: int, cycles: int | Sequence[int]) -> list[int]:
    """Cycle end points ``[0, c_1, ..., T]`` of :func:`wsd_s_schedule` (levanter's rule).

    An int n gives n cycles ending at ``int(T/n·(i+1))``, i < n − 1, and at T; a list
    gives the end points (T is appended when the last one is smaller).
    """
    _common.check_positive_int("total_steps", total_steps)
    if isinstance(cycles, numbers.Integral) and not isinstance(cycles, bool):
        if cycles < 1 or cycles > total_steps:
            raise ValueError(
                f"`cycles` must be in [1, total_steps={total_steps}] when an integer, got "
                f"{cycles!r}."
            )
        points = [int(total_steps / cycles * (i + 1)) for i in range(cycles - 1)]
    else:
        try:
            points = list(cycles)
        except TypeError:
            raise ValueError(
                f"`cycles` must be a positive integer or a list of cycle end steps, got "
                f"{cycles!r}."
            ) from None
        if not points:
            raise ValueError("`cycles` must not be an empty list.")
        for p in points:
            if isinstance(p, bool) or not isinstance(p, numbers.Integral):
                raise ValueError(f"`cycles` end points must be integers, got {cycles!r}.")
        points = [int(p) for p in points]
        if any(b <= a for a, b in zip([0, *points], points, strict=False)):
            raise ValueError(
                f"`cycles` end points must be strictly increasing and > 0, got {cycles!r}."
            )
        if points[-1] > total_steps:
            raise ValueError(
                f"`cycles` end points must be <= total_steps={total_steps}, got {cycles!r}."
            )
    points = [0, *points]
    if points[-1] != total_steps:
        points.append(total_steps)
    return points


def wsd_s_schedule(
    peak_value: float,
    total_steps: int,
    cycles: int | Sequence[int],
    *,
    warmup: float | int = 0.01,
    decay: float | int | None = 0.1,
    rewarmup: float | int = 0.0,
    decay_shape: DecayShape = "linear",
    final_fraction: float = 0.1,
) -> optax.Schedule:
    r"""WSD-S: one WSD branch with a decay at every budget point, then back to the peak.

    The steps are cut into cycles at the end points ``[0, c_1, …, c_K = T]``
    (:func:`wsd_s_cycle_points`). Cycle k, from s_k to e_k (length n_k), has

    - a (re-)warm-up of w_k steps: ``warmup`` in the first cycle (from 0), ``rewarmup``
      in later ones (from the previous cycle's final value r·η_max), linear to η_max;
    - d_k = ``decay`` steps of decay at its end, η_max·[r + (1 − r)·S(x)],
      x = (t − (e_k − d_k))/d_k (``decay=None``: the whole cycle after the warm-up);
    - η_max in between (n_k − w_k − d_k steps).

    With ``rewarmup=0`` (levanter's default) the rate jumps from r·η_max straight back to
    η_max at s_{k+1}; training continues from the decayed iterate, and the parameters
    after step c_k are the checkpoint for budget c_k. After T the value stays at the
    last cycle's end value. ``decay=None`` with ``decay_shape="cosine"`` is cyclic cosine.

    ``warmup``, ``decay`` and ``rewarmup`` are a float fraction in [0, 1] of the cycle's
    length or an int number of steps (a whole float > 1 also counts as steps). This is
    levanter's ``_convert_frac_or_steps`` except for the int 1, which levanter reads as
    the fraction 1.0 (the whole cycle) and we read as one step.

    Args:
      peak_value: η_max > 0.
      total_steps: T ≥ 1.
      cycles: number of equal cycles, or the list of cycle end steps (budget points).
      warmup: first-cycle warm-up (default 0.01 = levanter's).
      decay: decay length per cycle (default 0.1 of each cycle; ``None``: the whole
        cycle after its warm-up). levanter's default is ``decay=None``, under which a
        cycle has no stable phase (with its default cosine shape, cyclic cosine):
        that is the baseline WSD-S is compared against, not WSD-S. We default to a
        short decay, 0.1 of each cycle, the fraction of levanter's own cyclic
        configuration (``config/llama2_7b.yaml``: ``cycle_length`` 10000, ``decay``
        0.1, ``rewarmup`` 0); pass ``decay=None`` for levanter's default schedule.
      rewarmup: re-warm-up per later cycle (default 0, levanter's).
      decay_shape: S, as in :func:`wsd_schedule` (levanter has linear and cosine; the
        1-sqrt and 1-square shapes are our extension).
      final_fraction: r ∈ [0, 1] (default 0.1 = levanter's ``min_lr_ratio``).

    Returns:
      An ``optax.Schedule``.

    Raises:
      ValueError: naming the argument, e.g. when a cycle's warm-up plus decay is longer
        than the cycle, end points are not increasing or exceed ``total_steps``.

    Example:
      >>> import gradkit
      >>> lr = gradkit.wsd_s_schedule(1.0, 600, cycles=[200, 400], decay=0.2,
      ...                             warmup=10, final_fraction=0.0)
      >>> [round(float(lr(t)), 3) for t in (100, 180, 199, 200, 599)]
      [1.0, 0.5, 0.025, 1.0, 0.025]

    References:
      Wen et al., `Understanding Warmup-Stable-Decay Learning Rates: A River Valley Loss
      Landscape Perspective <https://arxiv.org/abs/2410.05192>`_, 2024 (WSD-S, §5).
      Schedule semantics: levanter ``OptimizerConfig.lr_scheduler`` (Apache-2.0).
    """
    _check_peak(peak_value)
    points = wsd_s_cycle_points(total_steps, cycles)
    shape = decay_shape_fn(decay_shape)
    _common.check_interval("final_fraction", final_fraction, 0.0, 1.0, high_closed=True)
    r = float(final_fraction)

    segments = []  # (start, end, warmup_steps, decay_steps, warmup_from)
    previous_end = 0.0
    for k, (start, end) in enumerate(itertools.pairwise(points)):
        n = end - start
        w = _frac_or_steps("warmup" if k == 0 else "rewarmup", warmup if k == 0 else rewarmup, n)
        d = n - w if decay is None else _frac_or_steps("decay", decay, n)
        if w + d > n:
            raise ValueError(
                f"cycle {k} ({start}..{end}, {n} steps): its warm-up ({w}) plus `decay` ({d}) "
                f"steps exceed the cycle; lower `decay`/`warmup`/`rewarmup`."
            )
        segments.append((start, end, w, d, previous_end))
        previous_end = r if d > 0 else 1.0

    def schedule(count):
        t = _step(count)
        value = jnp.zeros_like(t)
        for start, end, w, d, warm_from in segments:
            v = jnp.full_like(t, 1.0)
            if w > 0:
                v = jnp.where(t < start + w, warm_from + (1.0 - warm_from) * (t - start) / w, v)
            if d > 0:
                x = jnp.clip((t - (end - d)) / d, 0.0, 1.0)
                v = jnp.where(t >= end - d, r + (1.0 - r) * shape(x), v)
            value = jnp.where(t >= start, v, value)
        return peak_value * value

    return schedule
