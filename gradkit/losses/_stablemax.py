# SPDX-License-Identifier: Apache-2.0
"""StableMax, its cross-entropy, and Softmax Collapse metrics.

Prieto, Barsbey, Mediano, Birdal, "Grokking at the Edge of Numerical Stability"
(2025, arXiv 2501.04697), §5 Eq. (7)-(8). StableMax replaces ``exp`` in softmax by

    s(x) = x + 1        (x ≥ 0)
    s(x) = 1 / (1 − x)  (x < 0),

which grows linearly instead of exponentially, so the probability of the true class
does not round to exactly 1 (Softmax Collapse, SC) long before the logits overflow.

Checked against the official code (``LucasPrietoAl/grokking-at-the-edge-of-numerical-
stability``, ``utils.py``): there ``log_stablemax`` is ``log(s(x) / Σ s(x))`` evaluated
in float64 (with ``1/(1 − x + 1e-30)`` for x < 0). We compute the same function in log
space, ``log s(x) = sign(x)·log1p(|x|)`` and ``log Σ s = log s_top + log1p(Σ_{j≠top}
s_j/s_top)``, so no quotient is ever formed, nothing under- or overflows in float32 (or
bfloat16) for |x| up to the dtype's maximum, and the top class's loss and gradient keep
their relative precision when they are far below round-off (where float64 is what
saves the official code). Deliberate differences: no 1e-30 in the denominator
(it is below float64 round-off for every x < 0 it could matter for, and our form is
already finite at every x); the loss is returned per example, like optax's losses
(the official one returns the mean).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


def log_s(x: ArrayLike) -> jax.Array:
    """log s(x) = sign(x)·log1p(|x|): the log of StableMax's ``s`` (Eq. (7)).

    The derivative is 1/(1 + |x|): equal to 1 at 0 from both sides, finite everywhere.
    """
    x = jnp.asarray(x)
    # Each branch only ever sees arguments from its own side of 0, so neither its
    # value nor its gradient can be non-finite even where it is not selected.
    # |x| through `where` (not jnp.abs, whose derivative at 0 is 0), so the derivative
    # is 1/(1 + |x|) on both sides and 1 at 0. NaN takes the x ≥ 0 branch: propagates.
    neg_side = x < 0
    a = jnp.log1p(jnp.where(neg_side, -x, x))
    return jnp.where(neg_side, -a, a)


def log_stablemax(x: ArrayLike, axis: int = -1, where: ArrayLike | None = None) -> jax.Array:
    r"""log StableMax(x) along ``axis``, computed in log space.

    .. math::

        \log \mathrm{StableMax}(x)_i = \log s(x_i) - \log \sum_j s(x_j),\qquad
        \log \sum_j s(x_j) = \log s(x_k) + \operatorname{log1p}\Big(\sum_{j \ne k}
        \frac{s(x_j)}{s(x_k)}\Big),\quad k = \arg\max_j x_j.

    The log1p keeps the top class's log-probability −log1p(tail) (the loss of a
    correctly classified sample) and its gradient exact when the tail is far below
    the dtype's round-off, where ``logsumexp`` would round them to exactly 0. The
    official loss gets that precision by computing in float64; this form gives it in
    float32, so a float32 StableMax loss does not collapse where the official one
    does not.

    Args:
      x: logits.
      axis: the class axis.
      where: optional boolean mask broadcastable to ``x``; masked-out entries are
        excluded from the normaliser (their output is meaningless, as in
        ``jax.nn.log_softmax``).

    Returns:
      An array like ``x``. Finite, with finite gradients, for every finite ``x``.

    References:
      Prieto et al., `Grokking at the Edge of Numerical Stability
      <https://arxiv.org/abs/2501.04697>`_, 2025 (Eq. (7)-(8)).
    """
    ls = log_s(x)
    keep = jnp.ones(ls.shape, bool) if where is None else jnp.broadcast_to(where, ls.shape)
    # log Σ s = m + log1p(tail), m the largest log s(x_j), tail = Σ_{j≠top} s_j / s_top.
    # log1p, not logsumexp's log(1 + tail): when tail is below the dtype's round-off,
    # log StableMax of the top class, −log1p(tail), and its gradient stay exact instead
    # of rounding to 0 — the precision the official float64 loss has.
    top = jax.nn.one_hot(jnp.argmax(jnp.where(keep, ls, -jnp.inf), axis=axis),
                         ls.shape[axis], axis=axis, dtype=bool)
    m = jnp.sum(jnp.where(top, ls, 0), axis=axis, keepdims=True)
    rest = jnp.where(keep & ~top, ls - m, -jnp.inf)  # masked before exp: no inf·0 gradients
    tail = jnp.sum(jnp.exp(rest), axis=axis, keepdims=True)
    log_norm = jnp.log1p(tail)
    # The top entry is written without ls_top − m: its exact-zero value would add
    # cotangents −1 + 1 that swallow the tiny true gradient in float32.
    return jnp.where(top, -log_norm, ls - m - log_norm)


def stablemax(x: ArrayLike, axis: int = -1, where: ArrayLike | None = None) -> jax.Array:
    r"""StableMax(x)_i = s(x_i) / Σ_j s(x_j) along ``axis`` (Eq. (8)).

    Computed as ``exp(log_stablemax(x))``: sums to 1 along ``axis``, is monotone in
    each logit, and never overflows (Σ s(x) is never formed).

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> p = gradkit.stablemax(jnp.array([0.0, 1.0, -1.0]))  # [1, 2, 0.5] / 3.5

    References:
      Prieto et al., `Grokking at the Edge of Numerical Stability
      <https://arxiv.org/abs/2501.04697>`_, 2025 (Eq. (8)).
    """
    return jnp.exp(log_stablemax(x, axis=axis, where=where))


def stablemax_cross_entropy(
    logits: ArrayLike,
    labels: ArrayLike,
    where: ArrayLike | None = None,
) -> jax.Array:
    r"""Per-example StableMax cross-entropy with integer labels.

    .. math:: \ell(x, y) = -\log \mathrm{StableMax}(x)_y.

    Same signature and conventions as
    ``optax.softmax_cross_entropy_with_integer_labels`` (per-example losses; take
    the mean yourself). The class axis is the last one.

    Args:
      logits: ``[..., num_classes]`` logits (any float dtype; computed in that dtype).
      labels: ``[...]`` integer labels in ``[0, num_classes)``.
      where: optional boolean mask of shape ``[..., num_classes]`` (or broadcastable)
        selecting the classes that take part in the normaliser, as optax's ``where``.

    Returns:
      ``[...]`` losses, ≥ 0.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> logits, labels = jnp.zeros((4, 10)), jnp.arange(4)
      >>> loss = gradkit.stablemax_cross_entropy(logits, labels).mean()  # log(10)

    References:
      Prieto et al., `Grokking at the Edge of Numerical Stability
      <https://arxiv.org/abs/2501.04697>`_, 2025 (§5, Eq. (8)).
    """
    logits = jnp.asarray(logits)
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"`labels` must be integers, got dtype {labels.dtype}.")
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"`labels` must have shape logits.shape[:-1] = {logits.shape[:-1]}, "
            f"got {labels.shape}."
        )
    logp = log_stablemax(logits, axis=-1, where=where)
    return -jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]


def _sum_exp_shifted(logits: jax.Array, dtype) -> jax.Array:
    z = logits.astype(dtype)
    return jnp.sum(jnp.exp(z - jnp.max(z, axis=-1, keepdims=True)), axis=-1)


def softmax_collapse_fraction(
    logits: ArrayLike,
    labels: ArrayLike | None = None,
    *,
    dtype=jnp.float32,
) -> jax.Array:
    r"""Fraction of samples in Softmax Collapse (SC) at precision ``dtype``.

    A sample is collapsed when ``Σ_j exp(z_j − max z) == 1`` exactly in ``dtype``
    (every other class rounds away; in float32 this needs a top-logit gap above
    ≈ 16.6). Then the softmax probability of the top class is exactly 1, so its
    cross-entropy loss and the gradient with respect to its logit are exactly 0:
    a correctly classified collapsed sample no longer pushes its true class up.

    With ``labels=None`` this is the official metric (``logger.py``,
    ``compute_softmax_collapse``), which does not look at labels. With ``labels``,
    a sample counts only if its top class is also the true class, i.e. the softmax
    in ``dtype`` gives the true class probability exactly 1 and the sample's
    cross-entropy gradient at the true class is exactly 0. The two agree once
    training accuracy is 100% (the regime the paper studies).

    Args:
      logits: ``[batch, num_classes]`` (or ``[..., num_classes]``) logits.
      labels: optional ``[batch]`` integer labels.
      dtype: the precision of the softmax, float32 by default (as the paper).

    Returns:
      A scalar in [0, 1].

    References:
      Prieto et al., `Grokking at the Edge of Numerical Stability
      <https://arxiv.org/abs/2501.04697>`_, 2025 (§3, Softmax Collapse).
    """
    logits = jnp.asarray(logits)
    collapsed = _sum_exp_shifted(logits, dtype) == 1
    if labels is not None:
        labels = jnp.asarray(labels)
        collapsed = collapsed & (jnp.argmax(logits, axis=-1) == labels)
    return jnp.mean(collapsed.astype(jnp.float32))


def stablemax_collapse_fraction(
    logits: ArrayLike,
    labels: ArrayLike | None = None,
    *,
    dtype=jnp.float32,
) -> jax.Array:
    r"""Fraction of samples whose StableMax collapses at precision ``dtype``.

    The StableMax analogue of :func:`softmax_collapse_fraction`: a sample is
    collapsed when ``Σ_j s(z_j)/s(max z) == 1`` exactly in ``dtype``, so that
    StableMax gives its top class probability exactly 1 and the StableMax
    cross-entropy gradient at that class is exactly 0. Because s grows linearly,
    this needs a top/rest ratio of ~2²⁴·(classes) in float32 instead of softmax's
    logit gap of ~16.6: the logits of a StableMax-trained model are typically far
    into softmax collapse while StableMax itself is not collapsed (the paper's point).
    ``labels`` as in :func:`softmax_collapse_fraction`.
    """
    z = jnp.asarray(logits).astype(dtype)
    s_vals = jnp.where(z < 0, 1 / (1 - jnp.minimum(z, 0)), z + 1)
    ratio_sum = jnp.sum(s_vals / jnp.max(s_vals, axis=-1, keepdims=True), axis=-1)
    collapsed = ratio_sum == 1
    if labels is not None:
        collapsed = collapsed & (jnp.argmax(z, axis=-1) == jnp.asarray(labels))
    return jnp.mean(collapsed.astype(jnp.float32))


def zero_loss_fraction(logits: ArrayLike, labels: ArrayLike, *, dtype=jnp.float32) -> jax.Array:
    """Fraction of samples whose softmax cross-entropy is exactly 0 in ``dtype``.

    The official code logs this as ``zero_terms`` next to the SC fraction.
    """
    logits = jnp.asarray(logits).astype(dtype)
    losses = -jnp.take_along_axis(
        jax.nn.log_softmax(logits, axis=-1), jnp.asarray(labels)[..., None], axis=-1)
    return jnp.mean((losses == 0).astype(jnp.float32))
