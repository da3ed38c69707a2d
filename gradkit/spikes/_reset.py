# SPDX-License-Identifier: Apache-2.0
"""The momentum-reset phase and SPAM's post-reset warm-up, shared by the spikes family."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

from gradkit import _common


def check_reset_interval(value: Any) -> None:
    """Raises unless `value` is None, 0 (no resets) or a positive integer; arrays
    (injected or traced) pass."""
    if value is not None:
        _common.check_nonnegative_int("reset_interval", value)


def reset_phase(count: jax.Array, reset_interval: Any) -> tuple[jax.Array, jax.Array,
                                                                 jax.Array]:
    """Where update `count` (1-based, int32) stands in the reset period ΔT.

    Args:
      count: t, the 1-based update index.
      reset_interval: ΔT (a positive integer, an array allowed), or None/0 for no resets.

    Returns:
      ``(reset, phase, has_reset)``: whether t % ΔT == 0, t % ΔT, and whether resets are
      on at all (with no resets, phase is t and reset is False).
    """
    if reset_interval is None:
        return jnp.asarray(False), count, jnp.asarray(False)
    has_reset = jnp.asarray(reset_interval) > 0
    phase = count % jnp.maximum(jnp.asarray(reset_interval, jnp.int32), 1)
    return has_reset & (phase == 0), phase, has_reset


def post_reset_warmup(
    reset_interval: int | None = 500,
    warmup_steps: int = 150,
    *,
    base: optax.ScalarOrSchedule = 1.0,
    initial_scale: float = 0.01,
) -> optax.Schedule:
    r"""SPAM's cosine warm-up after every momentum reset, times a base schedule.

    With t = count + 1 the 1-based update index (optax schedules receive the number
    of updates already made), ΔT = ``reset_interval``, N = ``warmup_steps`` and
    k = t mod ΔT:

    .. math::

        s(t) = \begin{cases}
          1 - (1 - s_0)\,\tfrac{1}{2}\bigl(1 + \cos\tfrac{\pi k}{N+1}\bigr)
             & t \ge \Delta T,\ k < N \\
          1 & \text{otherwise} \end{cases}

    and the schedule returns ``base(count) · s(t)``. s₀ = ``initial_scale`` = 0.01 is
    the official ``1 − CosineDecay(0.99, N)``: the official code evaluates
    ``CosineAnnealingLR`` (period N+1) in closed form at k, so the update at a reset
    step (k = 0) is scaled by exactly 0.01 and the scale reaches 1 at k = N. There is
    no warm-up at the start of training (the official ``current_step`` starts at N+1).
    pytorch-optimizer's ``SPAM`` steps the scheduler once more and so evaluates at
    k + 1 (a one-step shift).

    Use it as a learning-rate schedule with any optimizer reset by
    :func:`gradkit.with_periodic_reset` (same ΔT), or as ``optax.scale_by_schedule(...)``
    right after the optimizer's direction so that decoupled weight decay is not warmed
    up (as :func:`gradkit.spam` does, like the official code).

    Args:
      reset_interval: ΔT, a positive integer (arrays allowed); None: no resets,
        s(t) = 1.
      warmup_steps: N ≥ 0; 0 disables the warm-up.
      base: a scalar or schedule multiplied by the warm-up factor.
      initial_scale: s₀ in [0, 1], the factor at the reset step.

    Returns:
      An ``optax.Schedule``.

    Example:
      >>> import gradkit, optax
      >>> lr = gradkit.post_reset_warmup(
      ...     500, 150, base=optax.cosine_decay_schedule(1e-3, 10_000))

    References:
      Huang et al., `SPAM: Spike-Aware Adam with Momentum Reset for Stable LLM
      Training <https://arxiv.org/abs/2501.06842>`_, 2025 (§3, "momentum reset").
    """
    if reset_interval is not None and not isinstance(reset_interval, jax.Array):
        _common.check_positive_int("reset_interval", reset_interval)
    _common.check_nonnegative_int("warmup_steps", warmup_steps)
    _common.check_interval("initial_scale", initial_scale, 0.0, 1.0, high_closed=True)

    def schedule(count):
        t = jnp.asarray(count, jnp.int32) + 1
        _, k, has_reset = reset_phase(t, reset_interval)
        n = jnp.asarray(warmup_steps, jnp.float32)
        ramp = 1.0 - (1.0 - initial_scale) * 0.5 * (
            1.0 + jnp.cos(math.pi * k.astype(jnp.float32) / (n + 1.0)))
        warming = has_reset & (t > k) & (k < warmup_steps)  # k = t mod ΔT: t > k ⟺ t ≥ ΔT
        value = base(count) if callable(base) else base
        return value * jnp.where(warming, ramp, 1.0)

    return schedule
