# SPDX-License-Identifier: Apache-2.0
"""Diagonal-Hessian estimators: Hutchinson and Gauss-Newton-Bartlett.

Both are optax transforms whose "updates" output is the estimate ĥ of the Hessian
diagonal at the current params (Liu et al. 2023, Sophia, §2.3, arXiv 2305.14342), so
Sophia takes either, or any user transform with the same contract. Checked against
``optax.contrib.hutchinson_estimator_diag_hessian`` (equal bit for bit) and the official
``Liuhong99/Sophia`` code (``train_sophiag.py``, the GNB estimate).
"""

from __future__ import annotations

from typing import Literal
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _common
from gradkit.hessian import _hvp


def _missing(name: str, who: str) -> ValueError:
    return ValueError(
        f"{who} needs the keyword extra arg `{name}`: call "
        f"`opt.update(grads, state, params, {name}=...)` (see "
        f"gradkit.sophia_extra_args to build it from a Flax apply_fn)."
    )


class HutchinsonDiagHessianState(NamedTuple):
    """State for :func:`hutchinson_diag_hessian`."""

    key: chex.Array  # uint32[2] raw PRNG key data, split at every estimate.


def hutchinson_diag_hessian(
    key: int | jax.Array = 0,
    *,
    distribution: Literal["rademacher", "gaussian"] = "rademacher",
    axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Hutchinson's estimator of the Hessian diagonal: ĥ = u ⊙ (∇²f(θ) u).

    .. math::

        \hat h = u \odot (\nabla^2 f(\theta)\, u),\qquad
        \mathbb{E}[\hat h] = \operatorname{diag}\nabla^2 f(\theta)

    for u with i.i.d. zero-mean unit-variance entries (Sophia paper, §2.3, Eq. (7)).
    The Hessian-vector product is forward-over-reverse,
    ``jax.jvp(jax.grad(obj_fn), (params,), (u,))``: one extra backward-like pass.
    The incoming updates are ignored; the output "updates" are ĥ (params' dtypes).

    With the same key and ``distribution="rademacher"`` this equals
    ``optax.contrib.hutchinson_estimator_diag_hessian`` exactly. The paper states
    u ~ N(0, I) (``"gaussian"``); Rademacher (optax's choice) has lower variance:
    Var ĥ_i = Σ_{j≠i} H_ij² instead of
    2H_ii² + Σ_{j≠i} H_ij².

    Multi-device: with ``axis_name`` set, ĥ is ``lax.pmean``-ed over that axis. All
    replicas draw the same u (the key is replicated), so the result is exactly
    u ⊙ (H̄ u) for H̄ the mean of the per-device Hessians, i.e. the estimate on the
    global batch when ``obj_fn`` is a per-device mean loss over equal-size batches.
    Works under ``pmap`` and ``shard_map`` (there, replicated params are first marked
    device-varying so shard_map's implicit sum of gradients of replicated inputs does
    not add to the explicit mean; tested against pmap).

    Args:
      key: an int or a ``jax.random`` key for the probe vectors u.
      distribution: ``"rademacher"`` (±1) or ``"gaussian"`` (standard normal).
      axis_name: a pmap/shard_map axis to average the estimate over, or None.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose update takes the
      keyword-only extra arg ``obj_fn(params) -> scalar loss`` (required) and
      ignores unknown extra args.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> est = gradkit.hutchinson_diag_hessian(key=0)
      >>> params = jnp.ones(3)
      >>> h, _ = est.update(params, est.init(params), params,
      ...                   obj_fn=lambda p: jnp.sum(p ** 4))  # diag = 12 p² = 12

    References:
      Hutchinson, `A stochastic estimator of the trace of the influence matrix for
      Laplacian smoothing splines`, 1989.

      Liu et al., `Sophia: A Scalable Stochastic Second-order Optimizer for Language
      Model Pre-training <https://arxiv.org/abs/2305.14342>`_, 2023 (§2.3).
    """
    _common.check_choice("distribution", distribution, ("rademacher", "gaussian"))
    sampler = jax.random.rademacher if distribution == "rademacher" else jax.random.normal

    def init_fn(params):
        del params
        return HutchinsonDiagHessianState(key=_common.key_data(key))

    def update_fn(updates, state, params=None, *, obj_fn=None, **extra_args):
        del updates, extra_args
        if obj_fn is None:
            raise _missing("obj_fn", "hutchinson_diag_hessian")
        if params is None:
            raise ValueError("hutchinson_diag_hessian needs `params`.")
        next_key, probe_key = jax.random.split(state.key)
        # Drawn in float32 and cast, as optax does (the same probes for any params dtype).
        probes = optax.tree.random_like(probe_key, params, sampler, dtype=jnp.float32)
        probes = jax.tree.map(lambda u, p: u.astype(p.dtype), probes, params)
        hu = _hvp.local_hvp(obj_fn, params, probes, axis_name)
        diag = jax.tree.map(lambda hu, u, p: (hu * u).astype(p.dtype), hu, probes, params)
        diag = _hvp.axis_mean(diag, axis_name)
        return diag, HutchinsonDiagHessianState(key=next_key)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class GNBDiagHessianState(NamedTuple):
    """State for :func:`gnb_diag_hessian`."""

    key: chex.Array  # uint32[2] raw PRNG key data, split at every estimate.


def gnb_diag_hessian(
    key: int | jax.Array = 0,
    *,
    axis_name: str | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Gauss-Newton-Bartlett estimator of the (Gauss-Newton) Hessian diagonal.

    .. math::

        \hat y_b \sim \operatorname{softmax}(f(\theta, x_b)),\quad
        \hat g = \nabla_\theta \frac1B \sum_{b=1}^B
            \ell_{\mathrm{CE}}(f(\theta, x_b), \hat y_b),\quad
        \hat h = B\, \hat g \odot \hat g

    (Sophia paper, Algorithm 2). With v_b = ∇_θ ℓ_CE(f(θ, x_b), ŷ_b) = J_bᵀ(p_b − e_ŷ_b),
    Bartlett's identities give E[v_b] = 0 and E[v_b v_bᵀ] = J_bᵀ(diag p_b − p_b p_bᵀ)J_b;
    samples are independent, so the cross terms of ĝ ⊙ ĝ vanish and
    E[ĥ] = (1/B) Σ_b diag(J_bᵀ(diag p_b − p_b p_bᵀ)J_b): exactly the diagonal of the
    Gauss-Newton matrix of the mean cross-entropy (tested).

    ``logits_fn(params)`` returns logits whose last axis is the classes; every other
    axis indexes a position (batch, tokens). An optional ``mask`` (bool or 0/1,
    shape = the logits' leading axes) drops padded positions; B counts only the kept
    positions. One forward pass and one vector-Jacobian product are used; gradients
    do not flow through the sampling. The official code feeds B through
    ``optimizer.step(bs=...)`` (tokens per step) and multiplies it into the
    denominator; storing B·ĝ² in the EMA instead is the same update.

    Multi-device: with ``axis_name`` set, ĝ is the mean over *all* devices' kept
    positions (``psum`` of the per-device sums, divided by the global B), and ĥ uses
    the global B, exactly what the official code gets under DDP (which all-reduces
    the sampled-label gradient before squaring). Each device samples its labels with
    the key folded with its axis index, so samples are independent across devices.
    Every replica then holds the same ĥ, under ``pmap`` and ``shard_map`` alike.

    Args:
      key: an int or a ``jax.random`` key for the sampled labels.
      axis_name: a pmap/shard_map axis to average over, or None.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose update takes the keyword
      extra args ``logits_fn(params) -> logits`` (required) and ``mask`` (optional),
      and ignores unknown ones.

    Example:
      >>> import gradkit, jax, jax.numpy as jnp
      >>> x = jax.random.normal(jax.random.key(0), (32, 5))
      >>> est = gradkit.gnb_diag_hessian(key=0)
      >>> w = jnp.zeros((5, 3))
      >>> h, _ = est.update(w, est.init(w), w, logits_fn=lambda w: x @ w)

    References:
      Liu et al., `Sophia: A Scalable Stochastic Second-order Optimizer for Language
      Model Pre-training <https://arxiv.org/abs/2305.14342>`_, 2023 (§2.3,
      Algorithm 2).
    """
    def init_fn(params):
        del params
        return GNBDiagHessianState(key=_common.key_data(key))

    def update_fn(updates, state, params=None, *, logits_fn=None, mask=None, **extra_args):
        del updates, extra_args
        if logits_fn is None:
            raise _missing("logits_fn", "gnb_diag_hessian")
        if params is None:
            raise ValueError("gnb_diag_hessian needs `params`.")
        next_key, label_key = jax.random.split(state.key)
        if axis_name is not None:
            label_key = jax.random.fold_in(label_key, jax.lax.axis_index(axis_name))
        logits, vjp_fn = jax.vjp(logits_fn, _hvp.as_varying(params, axis_name))
        labels = jax.random.categorical(
            label_key, jax.lax.stop_gradient(logits).astype(jnp.float32), axis=-1)
        if mask is None:
            weights = jnp.ones(logits.shape[:-1], jnp.float32)
        else:
            weights = jnp.broadcast_to(jnp.asarray(mask).astype(jnp.float32),
                                       logits.shape[:-1])

        def summed_ce(z):  # Σ_b w_b ℓ_CE(z_b, ŷ_b): the kept positions' loss on ŷ
            ce = optax.softmax_cross_entropy_with_integer_labels(z.astype(jnp.float32), labels)
            return jnp.sum(weights * ce)

        # B·ĝ through the logits' VJP (one forward pass, shared with the sampling).
        (grad_sum,) = vjp_fn(jax.grad(summed_ce)(logits))
        grad_sum = jax.tree.map(lambda g: g.astype(jnp.float32), grad_sum)
        count = jnp.sum(weights)
        if axis_name is not None:
            grad_sum = jax.lax.psum(grad_sum, axis_name)
            count = jax.lax.psum(count, axis_name)
        count = jnp.maximum(count, 1.0)  # B (no kept position: ĥ = 0)
        g_hat = jax.tree.map(lambda g: g / count, grad_sum)
        diag = jax.tree.map(lambda g, p: (count * jnp.square(g)).astype(p.dtype), g_hat, params)
        return diag, GNBDiagHessianState(key=next_key)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
