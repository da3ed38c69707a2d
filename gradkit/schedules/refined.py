# SPDX-License-Identifier: Apache-2.0
"""Refined learning-rate schedules from a previous run's gradient norms.

Defazio, Cutkosky, Mehta, Mishchenko, *When, Why and How Much? Adaptive Learning Rate
Scheduling by Refinement*, 2023, arXiv 2310.07831. The paper's last-iterate bound for
SGD with step sizes η_t (its Theorem/Algorithm for refinement) is minimised by
η_t ∝ w_t·Σ_{p>t} w_p with w_t = ‖g_t‖⁻²; with constant gradient norms that is linear
decay to zero, the worst-case optimal schedule. For Adam-type (coordinate-wise
adaptive) methods the paper uses w_t = 1/‖g_t‖₁. The norms are first smoothed by the
median filter of Algorithm 1 (width τT made odd, the start padded with the nearest value,
the end by reflection), as in the authors' README recipe. The reference code is CC-BY-NC:
this module is re-derived from the paper and that recipe (see ``docs/schedules.md``); it
follows them exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import jax.numpy as jnp
import numpy as np
import optax

from gradkit import _common

OptimizerKind = Literal["sgd", "adam"]


def median_filter(grad_norms: np.ndarray, tau: float) -> np.ndarray:
    """The paper's running median of a 1-D float64 array (Algorithm 1's filter).

    Width ⌊τT⌋ made odd, 2·⌊⌊τT⌋/2⌋ + 1, on a centred window; before the first step the
    window reads G_1 (nearest), past the last step it reads the sequence reflected about
    G_T without repeating it (… G_{T−1} G_T | G_{T−1} G_{T−2} …).
    """
    import scipy.ndimage  # imported here, only when needed (slow to import)

    n = grad_norms.size
    width = 2 * (int(tau * n) // 2) + 1
    half = width // 2
    # The end is padded by reflection explicitly; scipy's "nearest" mode then only acts at
    # the start. (scipy's own "reflect" mode repeats the edge value, d c b a | a b c d.)
    padded = np.pad(grad_norms, (0, half), mode="reflect") if half else grad_norms
    return scipy.ndimage.median_filter(padded, size=width, mode="nearest")[:n]


def refined_schedule_values(
    grad_norms: Sequence[float] | np.ndarray,
    optimizer_kind: OptimizerKind = "sgd",
    tau: float = 0.1,
) -> np.ndarray:
    """The normalised refined schedule ρ_1..ρ_T (max 1) as a float64 NumPy array.

    See :func:`refined_schedule` for the definition and the arguments.
    """
    _common.check_choice("optimizer_kind", optimizer_kind, ("sgd", "adam"))
    _common.check_interval("tau", tau, 0.0, 1.0, low_closed=False, high_closed=True)
    g = np.asarray(grad_norms, dtype=np.float64)
    if g.ndim != 1:
        raise ValueError(
            f"`grad_norms` must be a 1-D sequence of per-step norms, got shape {g.shape}."
        )
    if g.size == 0:
        raise ValueError("`grad_norms` must not be empty.")
    bad = np.flatnonzero(~np.isfinite(g) | (g <= 0))
    if bad.size:
        raise ValueError(
            f"`grad_norms` must be finite and > 0; step index {int(bad[0])} has "
            f"{g[bad[0]]!r} ({bad.size} bad value(s))."
        )
    smoothed = median_filter(g, tau)
    w = smoothed ** (-2.0) if optimizer_kind == "sgd" else 1.0 / smoothed
    # Σ_{p>t} w_p: reversed cumulative sum, shifted by one.
    tail = np.concatenate([np.cumsum(w[::-1])[::-1][1:], [0.0]])
    rho = w * tail
    peak = rho.max()
    if peak <= 0:  # T = 1: the single step has no future weight
        return np.ones_like(rho)
    return rho / peak


def refined_schedule(
    grad_norms: Sequence[float] | np.ndarray,
    base_lr: float,
    optimizer_kind: OptimizerKind = "sgd",
    tau: float = 0.1,
    *,
    warmup_steps: int = 0,
) -> optax.Schedule:
    r"""Schedule refined from the gradient norms G_1..G_T of a previous run.

    1. G̃ = median filter of G with the odd width 2·⌊⌊τT⌋/2⌋ + 1, the start padded with
       the nearest value G_1 and the end by reflection about G_T (… G_{T−1} G_T |
       G_{T−1} …), as in the paper's Algorithm 1 and the authors' recipe;
    2. w_t = G̃_t⁻² (``optimizer_kind="sgd"``, G the ℓ2 norms) or w_t = 1/G̃_t
       (``"adam"``, G the **ℓ1** norms ‖g_t‖₁ of the gradients);
    3. ρ_t = w_t·Σ_{p=t+1}^{T} w_p, normalised so that max_t ρ_t = 1;
    4. η_t = ``base_lr``·ρ_t (the optax count c uses t = c + 1; ρ_T = 0 and the
       schedule stays at 0 after T).

    Constant norms give exactly linear decay, ρ = [1, .8, .6, .4, .2, 0] for T = 6. With
    ``warmup_steps`` = W > 0, η is further multiplied by min(1, c/W) (a linear warm-up
    from 0 on top; the paper refines the post-warm-up shape and keeps the base run's
    warm-up — our choice is documented in ``docs/schedules.md``).

    Args:
      grad_norms: per-step gradient norms of the previous run, finite and > 0 (for
        Adam-type optimizers the ℓ1 norms; :mod:`examples.lm.trainer` logs ``grad_norm``
        and ``grad_norm_l1`` every ``log_interval`` steps).
      base_lr: the peak learning rate > 0.
      optimizer_kind: ``"sgd"`` (w = G⁻²) or ``"adam"`` (w = 1/‖g‖₁).
      tau: median-filter width as a fraction of T, in (0, 1] (the paper's 0.1).
      warmup_steps: optional linear warm-up W ≥ 0 applied on top.

    Returns:
      An ``optax.Schedule`` of T steps (a lookup table; jit-able).

    Raises:
      ValueError: ``grad_norms`` empty, not 1-D, non-finite or ≤ 0; ``base_lr`` ≤ 0;
        unknown ``optimizer_kind``; ``tau`` outside (0, 1]; negative ``warmup_steps``.

    Example:
      >>> import gradkit
      >>> lr = gradkit.refined_schedule([1.0] * 6, base_lr=1.0)
      >>> [round(float(lr(c)), 2) for c in range(6)]
      [1.0, 0.8, 0.6, 0.4, 0.2, 0.0]

    References:
      Defazio, Cutkosky, Mehta, Mishchenko, `When, Why and How Much? Adaptive Learning
      Rate Scheduling by Refinement <https://arxiv.org/abs/2310.07831>`_, 2023
      (Algorithm 1, refinement for SGD; §3 weights 1/‖g_t‖₁ for Adam-type methods).
    """
    _common.check_positive("base_lr", base_lr)
    _common.check_nonnegative_int("warmup_steps", warmup_steps)
    rho = refined_schedule_values(grad_norms, optimizer_kind, tau)
    table = (float(base_lr) * rho).astype(np.float32)
    last = table.size - 1

    def schedule(count):
        c = jnp.asarray(count)
        # Past T the last entry repeats: ρ_T = 0 (T > 1), so the rate stays at 0.
        value = jnp.asarray(table)[jnp.clip(c, 0, last).astype(jnp.int32)]
        if warmup_steps > 0:
            value = value * jnp.clip(c.astype(jnp.float32) / warmup_steps, 0.0, 1.0)
        return value

    return schedule
