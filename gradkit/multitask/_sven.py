# SPDX-License-Identifier: Apache-2.0
"""Sven (Singular Value dEsceNt): pseudo-inverse steps from the per-sample Jacobian.

Bright-Thonney, Harvey, Lukas, Thaler, 2026, arXiv 2604.01279. Reference code
``sambt/sven`` (no licence: read for facts only, nothing copied): ``sven/opt/sven.py``,
``sven/opt/pinv.py`` (truncated SVD, ``rtol`` cut, ``tol`` = 1e-10 on 1/σ) and
``sven/nn/sven_wrapper.py`` (residuals ℓ^(κ/2) and their Jacobian via ``jacrev``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gradkit import _common

# Singular values at or below this get 1/σ := 0 (the reference ``pinv``'s ``tol``).
SVEN_ABS_TOL = 1e-10


class ScaleBySvenState(NamedTuple):
    """State for :func:`scale_by_sven`."""

    count: chex.Array  # int32 scalar, number of updates so far.
    rank: chex.Array  # int32 scalar, singular values used at the last step (diagnostic).


def sven_direction(
    residuals: jax.Array, jacobian: jax.Array, k: int, rtol: float = 1e-3
) -> tuple[jax.Array, jax.Array]:
    r"""δ = V_k Σ_k⁺ U_kᵀ R: the truncated-SVD pseudo-inverse of M applied to R.

    Keeps the ``k`` largest singular values of ``jacobian`` (B×P), drops those
    ≤ ``rtol``·σ_max, and inverts the rest (σ ≤ 1e-10 → 0). Computed in float32 (or
    float64 if the inputs are). Returns ``(delta (P,), rank used (int32))``.
    """
    dt = jnp.promote_types(jnp.result_type(jacobian), jnp.float32)
    m = jacobian.astype(dt)
    if m.shape[0] < m.shape[1]:
        # Same thin SVD through the tall transpose: XLA's CPU SVD is much faster on tall
        # matrices (~12x at 128×593), and the pseudo-inverse does not depend on signs.
        u_t, s, vh_t = jnp.linalg.svd(m.T, full_matrices=False)
        u, vh = vh_t.T, u_t.T
    else:
        u, s, vh = jnp.linalg.svd(m, full_matrices=False)
    k = min(k, s.shape[0])
    u, s, vh = u[:, :k], s[:k], vh[:k]
    keep = (s > rtol * s[0]) & (s > SVEN_ABS_TOL)
    s_inv = jnp.where(keep, 1.0 / jnp.where(keep, s, 1.0), 0.0)
    coeff = s_inv * (u.T @ residuals.astype(dt))
    return vh.T @ coeff, jnp.sum(keep, dtype=jnp.int32)


def _flatten_rows(tree: Any) -> jax.Array:
    leaves = jax.tree.leaves(tree)
    b = leaves[0].shape[0]
    return jnp.concatenate([x.reshape(b, -1).astype(
        jnp.promote_types(x.dtype, jnp.float32)) for x in leaves], axis=1)


def _unflatten(vec: jax.Array, like: Any) -> Any:
    out, i = [], 0
    for x in jax.tree.leaves(like):
        n = x.size
        out.append(vec[i:i + n].reshape(x.shape).astype(x.dtype))
        i += n
    return jax.tree.unflatten(jax.tree.structure(like), out)


def _check_k(k: Any) -> None:
    if k is None:
        return
    if not _common.is_int(k):
        raise TypeError(
            f"`k` must be a static Python int (it fixes the SVD truncation's shape), got "
            f"{k!r}; with optax.inject_hyperparams pass static_args=('k',).")
    _common.check_positive_int("k", k)


def scale_by_sven(
    k: int | None = None,
    rtol: float = 1e-3,
    kappa: float = 2.0,
    *,
    axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Replaces the gradient by Sven's minimum-norm step δ = M_k⁺ R (no learning rate).

    With per-sample losses ℓ_α (α = 1..B), residuals R_α = ℓ_α^{κ/2} and their Jacobian
    M_αi = ∂R_α/∂θ_i (B×P), Sven solves the linearised system R + M δθ = 0 in the
    least-squares, minimum-norm sense with a rank-k truncated SVD M ≈ U_k Σ_k V_kᵀ:

    .. math::

        \delta = V_k \Sigma_k^{+} U_k^\top R ,\qquad
        (\Sigma_k^{+})_{ii} = \begin{cases} 1/\sigma_i & \sigma_i > \mathrm{rtol}\cdot
        \sigma_{\max} \text{ and } \sigma_i > 10^{-10} \\ 0 & \text{otherwise,}\end{cases}

    and :func:`sven` steps θ ← θ − η δ. This is the paper's boxed update rule (the
    reference README's "How it works") with the reference ``pinv``'s truncation: the k
    largest singular values, then those below ``rtol``·σ_max dropped, 1/σ := 0 for
    σ ≤ 1e-10. The reference's default SVD mode ("torch") is a full SVD then truncation,
    which we do too (its randomized/LOBPCG modes, RMSProp, ``variable_k``,
    ``param_fraction`` and ``microbatch_size`` options are not implemented).

    The incoming ``updates`` (the gradient) are not used: only their structure and dtypes
    (the output has them). The update needs, as keyword extra args, either

    * ``per_sample_loss_fn``: ``params -> (B,)`` per-sample losses ℓ; R = ℓ^{κ/2} and M
      (by ``jax.jacrev``) are computed here; or
    * ``residuals`` (B,) and ``jacobian``: a tree like ``params`` with a leading B axis
      on every leaf (``jax.jacrev(residual_fn)(params)``), or a (B, P) matrix whose
      columns follow ``jax.tree.leaves(params)`` order, flattened row-major.
      κ is not applied to given residuals.

    Args:
      k: number of singular values kept (static int ≥ 1, ≤ B); ``None`` uses B // 2
        (the reference's advice, k = 64 for batch 128).
      rtol: relative cut-off in [0, 1) (reference default 1e-3).
      kappa: exponent κ > 0 of the residuals ℓ^{κ/2} when ``per_sample_loss_fn`` is
        given (κ = 2, the default, uses the losses themselves, as the reference).
      axis_name: mapped axis the batch is sharded over: residuals and Jacobian rows are
        gathered (``all_gather``) so every device solves the global B×P problem and
        takes the same step (equal to one device; tested on 8 devices).

    Returns:
      An ``optax.GradientTransformationExtraArgs``. The state records ``rank``, the
      number of singular values used. Errors: ``k`` > B or a Jacobian whose rows or
      columns do not match the residuals / params raise ``ValueError`` at the first
      call; missing extra args raise ``ValueError``. NaN/Inf in R or M make the step NaN
      (``optax.apply_if_finite`` skips it).

    Example:
      >>> import gradkit, jax.numpy as jnp, optax
      >>> x, y = jnp.linspace(-1, 1, 8), jnp.linspace(-1, 1, 8) ** 2
      >>> losses = lambda p: (p["a"] * x**2 + p["b"] - y) ** 2
      >>> opt = gradkit.sven(learning_rate=0.5, k=2)
      >>> params = {"a": jnp.zeros(()), "b": jnp.zeros(())}
      >>> state = opt.init(params)
      >>> updates, state = opt.update(params, state, params, per_sample_loss_fn=losses)

    References:
      Bright-Thonney, Harvey, Lukas, Thaler, Sven: Singular Value dEsceNt,
      `arXiv:2604.01279 <https://arxiv.org/abs/2604.01279>`_, 2026 (boxed update rule).
    """
    _check_k(k)
    _common.check_interval("rtol", rtol, 0.0, 1.0)
    _common.check_positive("kappa", kappa)

    def init_fn(params):
        del params
        return ScaleBySvenState(count=jnp.zeros([], jnp.int32), rank=jnp.zeros([], jnp.int32))

    def update_fn(updates, state, params=None, *, residuals=None, jacobian=None,
                  per_sample_loss_fn: Callable[[Any], jax.Array] | None = None, **extra_args):
        del extra_args
        if per_sample_loss_fn is not None:
            if params is None:
                raise ValueError("scale_by_sven with `per_sample_loss_fn` needs `params`.")
            residual_fn = lambda p: per_sample_loss_fn(p) ** (kappa / 2.0)  # noqa: E731
            residuals = residual_fn(params)
            jacobian = jax.jacrev(residual_fn)(params)
        elif residuals is None or jacobian is None:
            raise ValueError(
                "scale_by_sven needs the keyword extra args `residuals` and `jacobian`, "
                "or `per_sample_loss_fn`.")
        residuals = jnp.asarray(residuals)
        if residuals.ndim != 1:
            raise ValueError(f"`residuals` must have shape (B,), got {residuals.shape}.")
        b = residuals.shape[0]
        if isinstance(jacobian, jax.Array | np.ndarray) and jnp.ndim(jacobian) == 2:
            m = jacobian
        else:
            jacobian = _common.as_stacked(jacobian, None, what="sample")
            if jax.tree.structure(jacobian) != jax.tree.structure(updates):
                raise ValueError(
                    "`jacobian` must be structured like the updates/params with a leading "
                    f"sample axis.\n  jacobian: {jax.tree.structure(jacobian)}\n"
                    f"  updates: {jax.tree.structure(updates)}")
            for j, u in zip(jax.tree.leaves(jacobian), jax.tree.leaves(updates), strict=True):
                if j.shape[1:] != u.shape:
                    raise ValueError(f"a `jacobian` leaf has shape {j.shape}; expected "
                                     f"(B, *{u.shape}).")
            m = _flatten_rows(jacobian)
        num_params = sum(x.size for x in jax.tree.leaves(updates))
        if m.shape != (b, num_params):
            raise ValueError(
                f"`jacobian` has shape {m.shape}; expected (B, P) = ({b}, {num_params}) "
                "(one row per residual, one column per parameter).")
        if axis_name is not None:
            residuals = jax.lax.all_gather(residuals, axis_name, tiled=True)
            m = jax.lax.all_gather(m, axis_name, tiled=True)
        total_b = residuals.shape[0]
        k_eff = total_b // 2 if k is None else k
        if k_eff > total_b:
            raise ValueError(f"`k` ({k_eff}) is larger than the batch (B = {total_b} "
                             "residuals): at most B singular values exist.")
        k_eff = max(k_eff, 1)
        delta, rank = _direction_jit(residuals, m, k_eff, rtol)
        return _unflatten(delta, updates), ScaleBySvenState(
            count=optax.safe_increment(state.count), rank=rank)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@functools.partial(jax.jit, static_argnums=(2,))
def _direction_jit(residuals, m, k, rtol):
    return sven_direction(residuals, m, k, rtol)


def sven(
    learning_rate: optax.ScalarOrSchedule,
    *,
    k: int | None = None,
    rtol: float = 1e-3,
    kappa: float = 2.0,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    mask: Any | Callable[[optax.Params], Any] | None = None,
    axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Sven: θ ← θ − η (M_k⁺ R + λθ), the truncated pseudo-inverse step.

    ``optax.chain(scale_by_sven(k, rtol, kappa), add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate))``; the update takes the keyword extra args of
    :func:`scale_by_sven` (``per_sample_loss_fn``, or ``residuals`` and ``jacobian``).
    The reference notebook's 1-D regression uses η = 0.1, k = 64 at batch 128.

    Args:
      learning_rate: η ≥ 0 or a schedule.
      k, rtol, kappa, axis_name: see :func:`scale_by_sven`.
      weight_decay: decoupled weight decay λ ≥ 0 (multiplied by η; the reference has
        none).
      mask: pytree or callable selecting the leaves that get weight decay.

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    References:
      Bright-Thonney, Harvey, Lukas, Thaler, Sven: Singular Value dEsceNt,
      `arXiv:2604.01279 <https://arxiv.org/abs/2604.01279>`_, 2026.
    """
    _common.check_learning_rate(learning_rate)
    _common.check_nonnegative("weight_decay", weight_decay)
    return optax.chain(
        scale_by_sven(k, rtol, kappa, axis_name=axis_name),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )
