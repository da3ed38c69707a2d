# SPDX-License-Identifier: Apache-2.0
"""The scaling law with learning-rate annealing: a whole loss curve from the schedule.

Tissue, Wang, Wang, *Scaling Law with Learning Rate Annealing*, 2024, arXiv 2408.11029:

    L(s) = L₀ + A·S₁(s)^(−α) − C·S₂(s),

with the forward area S₁(s) = Σ_{i≤s} η_i and the annealing area S₂(s) = Σ_{i≤s} m_i,
m_i = λ·m_{i−1} + (η_{i−1} − η_i) (m_1 = 0), λ the decay factor (0.999). Fit by
minimising Σ Huber_δ(log L − log L̂) (δ = 1e-3) with L-BFGS-B from a grid of starting
points, every parameter ≥ 0 — the procedure of the public fitting script that goes with
the paper (``decay_factor = 0.999``, ``huber_delta = 1e-3``, the 2×3×3×3 grid below);
checked against it, not copied (see ``docs/schedules.md``). NumPy/SciPy only: the fit is
host-side analysis, not part of a training step.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradkit import _common

# A schedule as an optax callable of the update count, or the learning rates
# η_1..η_N themselves (entry i − 1 is the rate of step i, i.e. optax count i − 1).
ScheduleLike = Callable[[Any], Any] | Sequence[float] | np.ndarray

DECAY_FACTOR = 0.999
HUBER_DELTA = 1e-3
# Starting points of the multi-start fit (the reference script's grid).
DEFAULT_INITIAL_GRID: dict[str, tuple[float, ...]] = {
    "L0": (0.1, 2.1),
    "A": (1.0, 11.5, 22.0),
    "alpha": (0.0, 0.4, 0.8),
    "C": (1.0, 11.5, 22.0),
}


class AnnealingAreas(NamedTuple):
    """S₁ and S₂ after each step s = 1..N (entry s − 1), and the rates η_1..η_N used."""

    forward: np.ndarray  # S₁(s), float64[N]
    annealing: np.ndarray  # S₂(s), float64[N]
    learning_rates: np.ndarray  # η_s (after the warm-up replacement), float64[N]


class AnnealingLawParams(NamedTuple):
    """L(s) = L0 + A·S₁^(−alpha) − C·S₂."""

    L0: float
    A: float
    alpha: float
    C: float


class AnnealingLawFit(NamedTuple):
    """The best fit: its parameters, Huber objective and number of fitted points."""

    params: AnnealingLawParams
    objective: float
    num_points: int


def _check_decay_factor(decay_factor: float) -> None:
    _common.check_interval("decay_factor", decay_factor, 0.0, 1.0)


def _learning_rates(schedule: ScheduleLike, num_steps: int, name: str = "schedule"):
    if callable(schedule):
        values = jax.vmap(schedule)(jnp.arange(num_steps))
        lrs = np.asarray(values, dtype=np.float64).reshape(-1)
        if lrs.shape != (num_steps,):
            raise ValueError(f"`{name}` must map a step count to a scalar learning rate.")
    else:
        lrs = np.asarray(schedule, dtype=np.float64)
        if lrs.ndim != 1:
            raise ValueError(f"`{name}` as an array must be 1-D, got shape {lrs.shape}.")
        if lrs.size < num_steps:
            raise ValueError(
                f"`{name}` has {lrs.size} learning rates but {num_steps} steps are needed."
            )
        lrs = lrs[:num_steps]
    if not np.all(np.isfinite(lrs)):
        raise ValueError(f"`{name}` gives non-finite learning rates.")
    return lrs


def annealing_law_areas(
    schedule: ScheduleLike,
    num_steps: int,
    *,
    decay_factor: float = DECAY_FACTOR,
    warmup_steps: int = 0,
) -> AnnealingAreas:
    r"""Forward area S₁ and annealing area S₂ of a schedule after each of ``num_steps`` steps.

    With η_i the rate of step i (``schedule(i − 1)``: optax counts from 0),

    .. math::
      S_1(s) = \sum_{i=1}^{s} η_i,\qquad m_i = λ\,m_{i-1} + (η_{i-1} - η_i),\ m_1 = 0,
      \qquad S_2(s) = \sum_{i=1}^{s} m_i .

    S₂ is the "momentum" of the LR decrease: a drop of Δη adds Δη·(1 − λ^k)/(1 − λ) to
    S₂ over the next k steps, so the loss keeps falling after the LR stops falling. The
    paper computes both areas with the warm-up steps' rate set to the peak (its §3.4:
    a warm-up would otherwise make S₂ negative); ``warmup_steps = W`` does that, using
    η_{W+1} for the first W steps.

    Args:
      schedule: an optax schedule, or the per-step rates η_1..η_N (length ≥ ``num_steps``).
      num_steps: N ≥ 1.
      decay_factor: λ ∈ [0, 1) (default 0.999, the paper's).
      warmup_steps: W ≥ 0 steps whose rate is replaced by η_{W+1} (W < N).

    Returns:
      :class:`AnnealingAreas` of float64 arrays of length N, entry s − 1 for step s.

    Example:
      >>> import gradkit
      >>> a = gradkit.annealing_law_areas([1.0, 1.0, 0.5, 0.0], 4, decay_factor=0.5)
      >>> a.forward.tolist(), a.annealing.tolist()
      ([1.0, 2.0, 2.5, 2.5], [0.0, 0.0, 0.5, 1.25])

    References:
      Tissue, Wang, Wang, `Scaling Law with Learning Rate Annealing
      <https://arxiv.org/abs/2408.11029>`_, 2024 (Eq. 1 and the momentum form of S₂).
    """
    _common.check_positive_int("num_steps", num_steps)
    _check_decay_factor(decay_factor)
    _common.check_int("warmup_steps", warmup_steps, 0, num_steps, high_name="num_steps")
    lrs = _learning_rates(schedule, num_steps).copy()
    if warmup_steps:
        lrs[:warmup_steps] = lrs[warmup_steps]
    drops = np.concatenate([[0.0], lrs[:-1] - lrs[1:]])
    import scipy.signal  # imported here: 0.5 s, most of `import gradkit` otherwise

    momentum = scipy.signal.lfilter([1.0], [1.0, -float(decay_factor)], drops)
    return AnnealingAreas(np.cumsum(lrs), np.cumsum(momentum), lrs)


def _law(theta: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    l0, a, alpha, c = theta
    with np.errstate(divide="ignore", over="ignore"):
        return l0 + a * s1 ** (-alpha) - c * s2


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    ar = np.abs(r)
    return np.where(ar < delta, 0.5 * r * r, delta * ar - 0.5 * delta * delta)


def fit_objective(theta, s1, s2, log_losses, delta):
    """Σ Huber_δ(log L − log L̂) and its gradient in (L0, A, alpha, C)."""
    l0, a, alpha, c = theta
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        power = s1 ** (-alpha)
        pred = l0 + a * power - c * s2
        tiny = 1e-10
        safe = np.maximum(pred, tiny)
        r = log_losses - np.log(safe)
        value = float(_huber(r, delta).sum())
        # d/dθ Huber(r) = clip(r, −δ, δ)·dr/dθ, dr/dθ = −(dL̂/dθ)/L̂ (0 where clamped).
        weight = -np.clip(r, -delta, delta) / safe * (pred > tiny)
        grad = np.array([
            np.sum(weight),
            np.sum(weight * power),
            np.sum(weight * (-a * power * np.log(s1))),
            np.sum(weight * (-s2)),
        ])
    return value, grad


def _check_curve(k: int, curve) -> tuple[ScheduleLike, np.ndarray, np.ndarray]:
    try:
        schedule, steps, losses = curve
    except (TypeError, ValueError):
        raise ValueError(
            f"`curves[{k}]` must be a (schedule, steps, losses) triple, got {curve!r}."
        ) from None
    steps = np.asarray(steps)
    losses = np.asarray(losses, dtype=np.float64)
    if steps.ndim != 1 or losses.shape != steps.shape or steps.size == 0:
        raise ValueError(
            f"`curves[{k}]`: steps and losses must be non-empty 1-D arrays of the same "
            f"length, got shapes {steps.shape} and {losses.shape}."
        )
    if not np.issubdtype(steps.dtype, np.integer) and not np.all(steps == np.round(steps)):
        raise ValueError(f"`curves[{k}]`: steps must be whole step counts.")
    steps = steps.astype(np.int64)
    if steps.min() < 1:
        raise ValueError(f"`curves[{k}]`: steps must be >= 1 (the loss after step s).")
    if not np.all(np.isfinite(losses)) or np.any(losses <= 0):
        raise ValueError(f"`curves[{k}]`: losses must be finite and > 0 (the fit is on log L).")
    return schedule, steps, losses


def fit_annealing_law(
    curves: Sequence[tuple[ScheduleLike, Sequence[int], Sequence[float]]],
    *,
    decay_factor: float = DECAY_FACTOR,
    warmup_steps: int = 0,
    huber_delta: float = HUBER_DELTA,
    initial_grid: dict[str, Sequence[float]] | None = None,
) -> AnnealingLawFit:
    r"""Fits L₀, A, α, C of the annealing law to one or more loss curves.

    Minimises :math:`\sum_{curves}\sum_{s} \mathrm{Huber}_δ(\log L(s) - \log \hat L(s))`
    over L₀, A, α, C ≥ 0 with L-BFGS-B (analytic gradient) from every point of
    ``initial_grid`` (default: L₀ ∈ {0.1, 2.1}, A ∈ {1, 11.5, 22}, α ∈ {0, 0.4, 0.8},
    C ∈ {1, 11.5, 22}, 54 starts) and keeps the best.

    Args:
      curves: ``(schedule, steps, losses)`` triples: the schedule of a run (optax
        callable or per-step rates), the steps s ≥ 1 at which the loss was measured
        (the loss after s updates) and those losses (> 0).
      decay_factor: λ of S₂ (0.999).
      warmup_steps: warm-up steps counted at the post-warm-up rate (see
        :func:`annealing_law_areas`); use the runs' warm-up length to follow the paper.
      huber_delta: δ of the Huber loss on log L (1e-3).
      initial_grid: dict with keys ``L0``, ``A``, ``alpha``, ``C`` of starting values.

    Returns:
      :class:`AnnealingLawFit` (``params``, ``objective``, ``num_points``).

    Raises:
      ValueError: ``curves`` empty or malformed, losses ≤ 0 or non-finite, steps < 1,
        S₁ = 0 at a fitted step (a warm-up from 0: pass ``warmup_steps``), bad grid.

    Example:
      >>> import gradkit, optax
      >>> const = optax.constant_schedule(1e-3)
      >>> steps = list(range(10, 1001, 10))
      >>> truth = gradkit.AnnealingLawParams(2.0, 0.5, 0.5, 0.0)
      >>> losses = gradkit.predict_annealing_law(truth, const, steps)
      >>> fit = gradkit.fit_annealing_law([(const, steps, losses)])

    References:
      Tissue, Wang, Wang, `Scaling Law with Learning Rate Annealing
      <https://arxiv.org/abs/2408.11029>`_, 2024 (§3, fitting by Huber loss on log L).
    """
    curves = list(curves)
    if not curves:
        raise ValueError("`curves` must hold at least one (schedule, steps, losses) triple.")
    _common.check_positive("huber_delta", huber_delta)
    grid = dict(DEFAULT_INITIAL_GRID if initial_grid is None else initial_grid)
    if set(grid) != set(DEFAULT_INITIAL_GRID) or any(len(list(v)) == 0 for v in grid.values()):
        raise ValueError(
            f"`initial_grid` must map each of {tuple(DEFAULT_INITIAL_GRID)} to a non-empty "
            f"list of starting values, got {initial_grid!r}."
        )
    s1_all, s2_all, log_all = [], [], []
    for k, curve in enumerate(curves):
        schedule, steps, losses = _check_curve(k, curve)
        areas = annealing_law_areas(
            schedule, int(steps.max()), decay_factor=decay_factor, warmup_steps=warmup_steps
        )
        s1 = areas.forward[steps - 1]
        if np.any(s1 <= 0):
            raise ValueError(
                f"`curves[{k}]`: the forward area S1 is 0 at step {int(steps[s1 <= 0][0])} "
                f"(a warm-up from 0?); pass `warmup_steps` or fit later steps only."
            )
        s1_all.append(s1)
        s2_all.append(areas.annealing[steps - 1])
        log_all.append(np.log(losses))
    s1, s2, log_losses = map(np.concatenate, (s1_all, s2_all, log_all))

    import scipy.optimize  # imported here: 0.3 s, most of `import gradkit` otherwise

    best = None
    bounds = [(0.0, None)] * 4
    for start in itertools.product(*(grid[k] for k in ("L0", "A", "alpha", "C"))):
        result = scipy.optimize.minimize(
            fit_objective, np.asarray(start, np.float64), args=(s1, s2, log_losses, huber_delta),
            jac=True, method="L-BFGS-B", bounds=bounds,
            options={"maxiter": 20000, "ftol": 1e-15, "gtol": 1e-12},
        )
        value = float(result.fun)
        if math.isfinite(value) and (best is None or value < best[0]):
            best = (value, result.x)
    if best is None:
        raise ValueError("the fit failed from every starting point of `initial_grid`.")
    params = AnnealingLawParams(*(float(v) for v in best[1]))
    return AnnealingLawFit(params, best[0], int(s1.size))


def predict_annealing_law(
    params: AnnealingLawParams | AnnealingLawFit | Sequence[float],
    schedule: ScheduleLike,
    steps: Sequence[int] | int,
    *,
    decay_factor: float = DECAY_FACTOR,
    warmup_steps: int = 0,
) -> np.ndarray:
    """The law's loss L̂(s) = L₀ + A·S₁(s)^(−α) − C·S₂(s) under ``schedule`` at ``steps``.

    Args:
      params: fitted :class:`AnnealingLawParams` (or the :class:`AnnealingLawFit`), or
        ``(L0, A, alpha, C)``.
      schedule: an optax schedule or per-step rates (as in :func:`annealing_law_areas`).
      steps: the steps s ≥ 1 to predict, or an int N for s = 1..N.
      decay_factor: λ, the same as in the fit.
      warmup_steps: the same as in the fit.

    Returns:
      float64 array of predicted losses, one per step (``inf`` where S₁ = 0 and α > 0).

    References:
      Tissue, Wang, Wang, `Scaling Law with Learning Rate Annealing
      <https://arxiv.org/abs/2408.11029>`_, 2024 (Eq. 1).
    """
    if isinstance(params, AnnealingLawFit):
        params = params.params
    theta = np.asarray(tuple(params), dtype=np.float64)
    if theta.shape != (4,):
        raise ValueError(f"`params` must be (L0, A, alpha, C), got {params!r}.")
    if isinstance(steps, int) and not isinstance(steps, bool):
        _common.check_positive_int("steps", steps)
        steps = np.arange(1, steps + 1)
    steps = np.asarray(steps)
    if steps.ndim != 1 or steps.size == 0 or steps.min() < 1:
        raise ValueError("`steps` must be a non-empty 1-D sequence of steps >= 1.")
    steps = steps.astype(np.int64)
    areas = annealing_law_areas(
        schedule, int(steps.max()), decay_factor=decay_factor, warmup_steps=warmup_steps
    )
    return _law(theta, areas.forward[steps - 1], areas.annealing[steps - 1])
