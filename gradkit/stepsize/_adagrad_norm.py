# SPDX-License-Identifier: Apache-2.0
"""AdaGrad-Norm: one adaptive step size for all parameters.

Ward, Wu, Bottou, *AdaGrad stepsizes: Sharp convergence over nonconvex landscapes*, 2019,
arXiv 1806.01811; in the form of Lau, Liu, Kolar, *AdAdaGrad: Adaptive Batch Size Schemes
for Adaptive Gradient Methods*, 2024, arXiv 2402.11215 (§2), whose reference code
``timlautk/AdAdaGrad`` (MIT) runs it through ``torch.optim.Adagrad``'s ε placement.
Checked in closed form in ``tests/test_stepsize_adagrad_norm.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _common


def _f32(x):
    return jnp.asarray(x, jnp.promote_types(jnp.asarray(x).dtype, jnp.float32))


class ScaleByAdaGradNormState(NamedTuple):
    """State for :func:`scale_by_adagrad_norm`."""

    count: chex.Array  # int32 scalar, number of updates so far.
    sum_of_squares: chex.Array  # float32 scalar, b_k² = b_0² + Σ_t ‖g_t‖².


def scale_by_adagrad_norm(
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    *,
    axis_name: str | None = None,
) -> optax.GradientTransformation:
    r"""AdaGrad-Norm: one adaptive step size for all parameters, g_k / b_k.

    .. math::

        b_k^2 = b_{k-1}^2 + \|g_k\|^2,\qquad u_k = g_k / (b_k + \epsilon),

    with ‖g_k‖ the norm over the whole update tree. The AdAdaGrad paper's AdaGrad-Norm
    (§2, after Ward, Wu, Bottou 2019), with ``b_0² = initial_accumulator_value`` and
    ``eps`` added to b_k as in ``torch.optim.Adagrad`` (which the reference code runs for
    "adagrad"). The reference repository's ``adagradnorm.py`` is a different, row-wise
    variant (one accumulator per output row); we follow the paper's scalar form.

    Args:
      initial_accumulator_value: b_0² ≥ 0.
      eps: added to b_k, ≥ 0.
      axis_name: if the gradients are still per-device (not yet averaged), ‖g_k‖² is
        summed over this axis of the *averaged* gradient: the updates are ``pmean``-ed
        first, so every device takes the one-device step.

    Returns:
      An ``optax.GradientTransformation``; zero gradients give zero updates; NaN/Inf
      make b_k and every later update NaN (use ``optax.apply_if_finite``).

    References:
      Lau, Liu, Kolar, `AdAdaGrad: Adaptive Batch Size Schemes for Adaptive Gradient
      Methods <https://arxiv.org/abs/2402.11215>`_, 2024 (AdaGrad-Norm, §2);
      Ward, Wu, Bottou, `AdaGrad stepsizes <https://arxiv.org/abs/1806.01811>`_, 2019.
    """
    _common.check_nonnegative("initial_accumulator_value", initial_accumulator_value)
    _common.check_nonnegative("eps", eps)

    def init_fn(params):
        del params
        return ScaleByAdaGradNormState(
            count=jnp.zeros([], jnp.int32),
            # A copy: an injected b_0² must not share its buffer with the state.
            sum_of_squares=jnp.array(initial_accumulator_value, jnp.float32, copy=True))

    def update_fn(updates, state, params=None):
        del params
        if axis_name is not None:
            updates = jax.lax.pmean(updates, axis_name)
        sq = sum((jnp.sum(jnp.square(_f32(u))) for u in jax.tree.leaves(updates)),
                 jnp.zeros([], jnp.float32))
        total = state.sum_of_squares + sq.astype(jnp.float32)
        denom = jnp.sqrt(total) + eps
        safe = jnp.where(denom > 0, denom, 1.0)
        new = jax.tree.map(lambda u: jnp.where(denom > 0, _f32(u) / safe, 0.0).astype(u.dtype),
                           updates)
        return new, ScaleByAdaGradNormState(count=optax.safe_increment(state.count),
                                            sum_of_squares=total)

    return optax.GradientTransformation(init_fn, update_fn)


def adagrad_norm(
    learning_rate: optax.ScalarOrSchedule,
    *,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    mask: Any | Callable[[optax.Params], Any] | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""AdaGrad-Norm: x_{k+1} = x_k − α (g_k / b_k + λ x_k), b_k² = b_{k−1}² + ‖g_k‖².

    ``optax.chain(scale_by_adagrad_norm(...), add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate))``; see :func:`scale_by_adagrad_norm`.

    Args:
      learning_rate: α, a scalar ≥ 0 or a schedule.
      initial_accumulator_value: b_0² ≥ 0.
      eps: added to b_k.
      weight_decay: decoupled weight decay λ ≥ 0 (multiplied by α).
      mask: pytree or callable selecting the leaves that get weight decay.

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> opt = gradkit.adagrad_norm(learning_rate=0.1)
      >>> state = opt.init({"w": jnp.ones(3)})

    References:
      Lau, Liu, Kolar, `AdAdaGrad: Adaptive Batch Size Schemes for Adaptive Gradient
      Methods <https://arxiv.org/abs/2402.11215>`_, 2024 (AdaGrad-Norm, §2).
    """
    _common.check_learning_rate(learning_rate)
    _common.check_nonnegative("weight_decay", weight_decay)
    return optax.chain(
        scale_by_adagrad_norm(initial_accumulator_value, eps),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )
