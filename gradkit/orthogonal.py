# SPDX-License-Identifier: Apache-2.0
"""⊥Grad: gradients projected orthogonal to the weights, and the ⊥ optimizers.

Prieto, Barsbey, Mediano, Birdal, "Grokking at the Edge of Numerical Stability"
(2025, arXiv 2501.04697), §6, Eq. (9). Once a model fits its training set, the
cross-entropy gradient aligns with the weights themselves ("naive loss minimisation":
scaling the logits up lowers the loss without changing predictions) until softmax
collapses in floating point. ⊥Grad removes that radial component per parameter
tensor, so every step changes the function instead of its scale.

Checked against the official code (``LucasPrietoAl/grokking-at-the-edge-of-
numerical-stability``, ``orthograd.py``) and pytorch-optimizer's ``OrthoGrad``: per
tensor, flattened, ``g⊥ = g − (⟨w,g⟩/(⟨w,w⟩ + 1e-30))·w`` then
``g⊥·‖g‖/(‖g⊥‖ + 1e-30)``; that rescaling is our default (``renormalize=True``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from gradkit import _common

MaskOrFn = Any | Callable[[optax.Params], Any] | None


def _compute_dtype(dtype) -> Any:
    # Inner products of bf16/fp16 tensors in float32: 1e-30 and ⟨w,w⟩ of small
    # tensors underflow in half precision (0/0 would give NaN).
    return jnp.promote_types(dtype, jnp.float32)


def _project(g: jax.Array, w: jax.Array, renormalize: bool, eps: jax.typing.ArrayLike):
    dtype = _compute_dtype(g.dtype)
    gf = g.astype(dtype).reshape(-1)
    wf = w.astype(dtype).reshape(-1)
    proj = jnp.vdot(wf, gf) / (jnp.vdot(wf, wf) + eps)
    g_orth = gf - proj * wf
    if renormalize:
        g_norm = jnp.linalg.norm(gf)
        g_orth = g_orth * (g_norm / (jnp.linalg.norm(g_orth) + eps))
    return g_orth.reshape(g.shape).astype(g.dtype)


def project_orthogonal(
    *,
    renormalize: bool = True,
    eps: jax.typing.ArrayLike = 1e-30,
    projection_mask: MaskOrFn = None,
) -> optax.GradientTransformation:
    r"""Projects each gradient tensor orthogonal to its parameter tensor (⊥Grad).

    Per tensor, flattened (Eq. (9)):

    .. math::

        g_\perp = g - \frac{\langle w, g\rangle}{\langle w, w\rangle + \epsilon}\,w,
        \qquad
        \text{update} = \begin{cases}
          g_\perp \,\|g\| / (\|g_\perp\| + \epsilon) & \text{renormalize (default)}\\
          g_\perp & \text{otherwise.}\end{cases}

    The default follows the official code and pytorch-optimizer's ``OrthoGrad``
    (rescale to the original gradient norm); the paper's Eq. (9) is the bare
    projection (``renormalize=False``).

    Behaviour at the edges (tested):

    - zero-norm tensors (e.g. zero-initialised biases): ⟨w,w⟩ = 0, so the projection
      coefficient is 0 and the gradient passes through unchanged; a zero gradient
      stays zero. Never NaN.
    - g ⊥ w: identity (up to the ε's relative effect, < 1e-30/‖g‖).
    - g ∥ w: g⊥ is only round-off. With ``renormalize=True`` that round-off is
      rescaled to ‖g‖, exactly as the official code does. In particular a tensor
      with one element has no orthogonal direction at all; mask such tensors out.
    - NaN/Inf in g or w make that tensor's update NaN (its inner products are NaN);
      other tensors are unaffected. Wrap the optimizer in ``optax.apply_if_finite``.
    - Half-precision tensors are projected in float32 and cast back.

    Args:
      renormalize: rescale g⊥ to the norm of g (official code; default).
      eps: ε added to ⟨w,w⟩ and to ‖g⊥‖, > 0 (official: 1e-30).
      projection_mask: optional pytree of bools (or a callable returning one; optax
        calls it with the params at init and the updates at each step) with the
        params' structure; tensors marked ``False`` pass through unprojected. Applied
        with ``optax.masked``.

    Returns:
      An ``optax.GradientTransformation`` whose ``update`` needs ``params``
      (raises ``ValueError`` without them). Stateless: ``optax.EmptyState``, or
      ``optax.MaskedState(EmptyState())`` with a ``projection_mask``.

    Example:
      >>> import gradkit, optax
      >>> opt = optax.chain(gradkit.project_orthogonal(), optax.adam(1e-3))

    References:
      Prieto et al., `Grokking at the Edge of Numerical Stability
      <https://arxiv.org/abs/2501.04697>`_, 2025 (§6, Eq. (9)).
    """
    _common.check_positive("eps", eps)
    if not isinstance(renormalize, bool):
        raise TypeError(f"`renormalize` must be a bool, got {renormalize!r}.")

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        if params is None:
            raise ValueError(
                "project_orthogonal (⊥Grad) needs the current parameters: call "
                "`update(grads, state, params)`.")
        new = jax.tree.map(lambda g, w: _project(g, w, renormalize, eps), updates, params)
        return new, state

    projection = optax.GradientTransformation(init_fn, update_fn)
    if projection_mask is None:
        return projection
    return optax.masked(projection, projection_mask)


def perp_adamw(
    learning_rate: optax.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.99,
    *,
    eps: jax.typing.ArrayLike = 1e-25,
    eps_root: jax.typing.ArrayLike = 0.0,
    mu_dtype: Any | None = None,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    mask: MaskOrFn = None,
    renormalize: bool = True,
    projection_eps: jax.typing.ArrayLike = 1e-30,
    projection_mask: MaskOrFn = None,
) -> optax.GradientTransformationExtraArgs:
    r"""⊥AdamW: ⊥Grad on the gradient, then AdamW.

    ``optax.chain(project_orthogonal(...), optax.scale_by_adam(...),
    optax.add_decayed_weights(weight_decay, mask),
    optax.scale_by_learning_rate(learning_rate))``. Only the gradient is projected;
    the decoupled weight decay is not (as in the official code, where ⊥Grad rewrites
    ``p.grad`` before ``torch.optim.AdamW.step``).

    Defaults are the paper's AdamW setting: betas (0.9, 0.99), eps 1e-25, no weight
    decay (the paper's point is that ⊥Grad groks without it). Note: the official
    ⊥AdamW runs dropped these arguments when wrapping the optimizer and so ran torch's
    defaults, betas (0.9, 0.999) and eps 1e-8; pass ``b2=0.999, eps=1e-8`` to
    reproduce those runs exactly.

    Args:
      learning_rate: scalar or schedule (paper: 0.01 for Figure 1, 0.005 Figure 6).
      b1, b2, eps, eps_root, mu_dtype: as ``optax.adamw``.
      weight_decay: decoupled weight decay (≥ 0), multiplied by the learning rate.
      mask: pytree/callable selecting the leaves that get weight decay.
      renormalize, projection_eps, projection_mask: ``renormalize``, ``eps`` and
        ``projection_mask`` of :func:`project_orthogonal`.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; ``update`` needs ``params``.

    Example:
      >>> import gradkit
      >>> opt = gradkit.perp_adamw(learning_rate=5e-3)

    References:
      Prieto et al., `Grokking at the Edge of Numerical Stability
      <https://arxiv.org/abs/2501.04697>`_, 2025 (§6, ⊥AdamW).
    """
    _common.check_learning_rate(learning_rate)
    _common.check_interval("b1", b1, 0.0, 1.0)
    _common.check_interval("b2", b2, 0.0, 1.0)
    _common.check_nonnegative("eps", eps)
    _common.check_nonnegative("eps_root", eps_root)
    _common.check_nonnegative("weight_decay", weight_decay)
    return optax.chain(
        project_orthogonal(renormalize=renormalize, eps=projection_eps,
                           projection_mask=projection_mask),
        optax.scale_by_adam(b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )


def perp_sgd(
    learning_rate: optax.ScalarOrSchedule,
    momentum: float | None = 0.8,
    *,
    nesterov: bool = False,
    l2_coupled: optax.ScalarOrSchedule = 0.0,
    l2_mask: MaskOrFn = None,
    renormalize: bool = True,
    projection_eps: jax.typing.ArrayLike = 1e-30,
    projection_mask: MaskOrFn = None,
) -> optax.GradientTransformationExtraArgs:
    r"""⊥SGD: ⊥Grad on the gradient, then SGD with (heavy-ball) momentum.

    ``optax.chain(project_orthogonal(...), optax.add_decayed_weights(l2_coupled,
    l2_mask), optax.trace(momentum, nesterov), optax.scale_by_learning_rate(lr))``,
    i.e. torch's ``SGD(lr, momentum, weight_decay=λ)`` applied to the projected
    gradient, as in the official code: the L2 term λw is added after the projection
    and before the momentum buffer (``buf ← μ·buf + g⊥ + λw``, ``w ← w − lr·buf``),
    so it is *coupled* (it enters the momentum), unlike AdamW-style decoupled decay.
    The paper's ⊥SGD uses momentum 0.8 (our default) and no weight decay (lr 10 with
    float64 and StableMax in Figure 6).

    Args:
      learning_rate: scalar or schedule.
      momentum: heavy-ball momentum in [0, 1), or ``None`` for plain SGD.
      nesterov: Nesterov momentum.
      l2_coupled: coupled L2 coefficient λ ≥ 0 (torch ``SGD``'s ``weight_decay``).
      l2_mask: pytree/callable selecting the leaves that get the L2 term.
      renormalize, projection_eps, projection_mask: ``renormalize``, ``eps`` and
        ``projection_mask`` of :func:`project_orthogonal`.

    Returns:
      An ``optax.GradientTransformationExtraArgs``; ``update`` needs ``params``.

    Example:
      >>> import gradkit
      >>> opt = gradkit.perp_sgd(learning_rate=1e-2)

    References:
      Prieto et al., `Grokking at the Edge of Numerical Stability
      <https://arxiv.org/abs/2501.04697>`_, 2025 (§6, ⊥SGD).
    """
    _common.check_learning_rate(learning_rate)
    if momentum is not None:
        _common.check_interval("momentum", momentum, 0.0, 1.0)
    _common.check_nonnegative("l2_coupled", l2_coupled)
    return optax.chain(
        project_orthogonal(renormalize=renormalize, eps=projection_eps,
                           projection_mask=projection_mask),
        optax.add_decayed_weights(l2_coupled, l2_mask),
        (optax.trace(decay=momentum, nesterov=nesterov) if momentum is not None
         else optax.identity()),
        optax.scale_by_learning_rate(learning_rate),
    )
