"""Fira: low-rank Adam plus a norm-scaled full-rank residual.

Chen, Feng, Li, Chu, Zhou, *Fira: Can We Achieve Full-rank Training of LLMs Under
Low-rank Constraint?*, 2024, arXiv 2410.01623. Checked against the official code
``xichen-fy/Fira`` (Apache-2.0; ``optimizer_torch/fira_adamw.py`` and
``gradient_projection.py``, read for facts, nothing copied). See ``docs/memory.md``.

``optax.contrib.scale_by_galore`` (0.2.8) returns only the back-projected update, not the
projected gradient R nor the Adam output ψ that Fira's scaling factor needs, and it
projects the opposite side when m ≥ n; so the projector here is our own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _control
from gradkit import _validation
from gradkit.memory._frugal import _check_matrices
from gradkit.memory._frugal import _concrete
from gradkit.memory._frugal import _weak
from gradkit.memory._frugal import adamw_weak_hparams
from gradkit.memory._frugal import matrix_labels
from gradkit.memory._frugal import top_singular_vectors
from gradkit.memory._limiter import limit_growth


class ScaleByFiraState(NamedTuple):
    """State for :func:`scale_by_fira`."""

    count: chex.Array  # int32 scalar, number of updates so far.
    projector: optax.Updates  # per matrix, float32 (n, r) if m ≥ n else (m, r).
    mu: optax.Updates  # Adam m of R: (m, r) if m ≥ n else (r, n); moment dtype.
    nu: optax.Updates  # Adam v of R, same shapes.
    residual_norm: optax.Updates  # per matrix float32 scalar ‖S‖ of the last step.


def scale_by_fira(
    rank: int = 128,
    update_interval: int = 200,
    scale: jax.typing.ArrayLike = 0.25,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-6,
    gamma: jax.typing.ArrayLike = 1.01,
    *,
    moment_dtype: Any | None = None,
) -> optax.GradientTransformation:
    r"""Fira's update for 2-D leaves: GaLore-projected Adam plus a scaled residual.

    For a matrix gradient G (m×n) at count c (0-based), t = c + 1, α = ``scale``:

    1. if c mod T = 0, an SVD of G (float32) gives the projector: if m ≥ n, Q = top-r
       right singular vectors (n×r), R = G Q (m×r), B(X) = X Qᵀ; else Q = top-r left
       singular vectors (m×r), R = QᵀG (r×n), B(X) = Q X (official ``proj_type='std'``:
       the smaller dimension is reduced, the same for a Flax (in, out) kernel and its
       PyTorch (out, in) transpose; ``optax.contrib.galore`` reduces the other side);
    2. Adam on R: m ← β₁m + (1−β₁)R, v ← β₂v + (1−β₂)R², ψ = m/(√v + ε) (moments are
       **not** reset when Q changes; the count is never reset);
    3. φ = ‖ψ‖/(‖R‖ + 10⁻⁸) along the rank axis: one factor per row of G (m×r case) or
       per column (r×n case), i.e. per entry of the dimension that is *not* projected,
       so each row/column of the residual gets the Adam gain its low-rank part got
       (paper Eq. 6–7: φ_t(R_t)_i = ‖ψ(R_{t,:,i})‖/‖R_{t,:,i}‖; code: ``norm_dim`` of
       the low-rank shape);
    4. S = φ ⊙ (G − α·B(R)) (with α ≠ 1 this is not the orthogonal complement: the
       official code, followed here);
    5. norm-growth limiter for c > 0: ℓ = max(‖S‖/(s + 10⁻⁸), γ)/γ, S ← S/ℓ,
       s ← ‖S‖ (see :func:`limit_norm_growth`); at c = 0 only s ← ‖S‖;
    6. u = √(1−β₂ᵗ)/(1−β₁ᵗ) · (α·B(ψ) + S).

    The alias :func:`fira` takes W ← W − η(u + λW).

    Args:
      rank: r, 1 ≤ r ≤ min(m, n) of every leaf (paper: 128 for LLaMA-60M (d = 512),
        256 for 130M, 512 for 1B; i.e. about d/4).
      update_interval: T ≥ 1, steps between SVDs (paper 200).
      scale: α, the GaLore scale of the projected update (paper 0.25; 0.0625 at 1B).
      b1, b2: Adam's β in [0, 1) (paper 0.9, 0.999).
      eps: ε > 0, added to √v before bias correction (official 1e-6, Hugging Face
        AdamW form: the effective ε is ε/√(1−β₂ᵗ)).
      gamma: limiter bound γ ≥ 1 (paper 1.01).
      moment_dtype: dtype of m, v; ``None`` uses each leaf's dtype.

    Returns:
      An ``optax.GradientTransformation`` for a pytree of 2-D leaves (other ranks raise
      ``ValueError``; :func:`fira` routes them to AdamW, as the official code keeps them
      in a plain AdamW group). NaN/Inf in G make that matrix's update and state NaN
      (SVD and norms mix all entries); wrap with ``optax.apply_if_finite``.

    Example:
      >>> import gradkit, optax, jax.numpy as jnp
      >>> opt = optax.chain(gradkit.scale_by_fira(rank=2), optax.scale(-0.01))
      >>> state = opt.init({"w": jnp.ones((8, 4))})

    References:
      Chen et al., `Fira: Can We Achieve Full-rank Training of LLMs Under Low-rank
      Constraint? <https://arxiv.org/abs/2410.01623>`_, 2024 (Algorithm 1; Eq. 6–8;
      official ``fira_adamw.py``, ``gradient_projection.py``).
    """
    if _validation.concrete_number(rank) is not None:
        _validation.check_positive_int("rank", rank)
    if _validation.concrete_number(update_interval) is not None:
        _validation.check_positive_int("update_interval", update_interval)
    _validation.check_positive("scale", scale)
    _validation.check_interval("b1", b1, 0.0, 1.0)
    _validation.check_interval("b2", b2, 0.0, 1.0)
    _validation.check_positive("eps", eps)
    _validation.check_interval("gamma", gamma, 1.0, float("inf"), high_closed=True)
    moment_dtype = (jax.dtypes.canonicalize_dtype(moment_dtype)
                    if moment_dtype is not None else None)

    def init_fn(params):
        _check_matrices(params, "scale_by_fira")
        r = int(_concrete("rank", rank))
        for path, x in jax.tree_util.tree_leaves_with_path(params):
            if r > min(x.shape):
                raise ValueError(
                    f"`rank` must be ≤ min(m, n) of every matrix; {r} > min{x.shape} at "
                    f"{jax.tree_util.keystr(path)}.")

        def shapes(x):
            m, n = x.shape
            return (n if m >= n else m, r), ((m, r) if m >= n else (r, n))

        projector = jax.tree.map(lambda x: jnp.zeros(shapes(x)[0], jnp.float32), params)
        mom = jax.tree.map(lambda x: jnp.zeros(shapes(x)[1], moment_dtype or x.dtype), params)
        norms = jax.tree.map(lambda _: jnp.zeros([], jnp.float32), params)
        return ScaleByFiraState(jnp.zeros([], jnp.int32), projector, mom, mom, norms)

    def update_fn(updates, state, params=None):
        del params
        _validation.check_same_structure(updates, state.mu)
        b1_, b2_, eps_, alpha, g_ = (_weak(x) for x in (b1, b2, eps, scale, gamma))
        interval = jnp.asarray(update_interval).astype(jnp.int32)
        refresh = state.count % interval == 0
        first = state.count == 0
        t = (state.count + 1).astype(jnp.float32)
        correction = jnp.sqrt(1.0 - b2_**t) / (1.0 - b1_**t)

        def leaf(g, q, m, v, s):
            gf = g.astype(jnp.promote_types(g.dtype, jnp.float32))
            right = g.shape[0] >= g.shape[1]
            r = q.shape[1]
            q = _control.cond(refresh, lambda: top_singular_vectors(gf, r, right), lambda: q)
            qf = q.astype(gf.dtype)
            low = gf @ qf if right else qf.T @ gf
            m1 = b1_ * m.astype(gf.dtype) + (1.0 - b1_) * low
            v1 = b2_ * v.astype(gf.dtype) + (1.0 - b2_) * low * low
            psi = m1 / (jnp.sqrt(v1) + eps_)
            axis = 1 if right else 0  # norms over the rank axis
            phi = (jnp.linalg.norm(psi, axis=axis, keepdims=True)
                   / (jnp.linalg.norm(low, axis=axis, keepdims=True) + 1e-8))

            def back(x):
                return alpha * (x @ qf.T if right else qf @ x)

            residual = phi * (gf - back(low))
            residual, s1 = limit_growth(residual, s, first, g_)
            u = correction * (back(psi) + residual)
            return (u.astype(g.dtype), q, m1.astype(m.dtype), v1.astype(v.dtype), s1)

        leaves, treedef = jax.tree.flatten(updates)
        res = [leaf(*a) for a in zip(leaves, *(treedef.flatten_up_to(x) for x in (
            state.projector, state.mu, state.nu, state.residual_norm)), strict=True)]
        out, q, mu, nu, s = (jax.tree.unflatten(treedef, [x[i] for x in res]) for i in range(5))
        return out, ScaleByFiraState(optax.safe_increment(state.count), q, mu, nu, s)

    return optax.GradientTransformation(init_fn, update_fn)


def fira(
    learning_rate: optax.ScalarOrSchedule,
    rank: int = 128,
    update_interval: int = 200,
    scale: jax.typing.ArrayLike = 0.25,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    eps: jax.typing.ArrayLike = 1e-6,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    mask: Any | Callable[[optax.Params], Any] | None = None,
    *,
    gamma: jax.typing.ArrayLike = 1.01,
    moment_dtype: Any | None = None,
    fira_mask: Any | Callable[[optax.Params], Any] | None = None,
) -> optax.GradientTransformation:
    r"""Fira on the selected matrices, AdamW on every other leaf.

    Selected 2-D leaves (``fira_mask``; default all matrices): ``chain(scale_by_fira(...),
    add_decayed_weights(weight_decay, mask), scale_by_learning_rate(learning_rate))``,
    i.e. W ← W − η(u + λW). Others: ``optax.adamw(learning_rate, b1, b2, eps,
    weight_decay, mask)``, routed with ``optax.partition`` (see :func:`gradkit.frugal`
    for writing the routing by hand). Official defaults: lr 0.01, T = 200, α = 0.25,
    β = (0.9, 0.999), ε = 1e-6, weight decay 0, γ = 1.01.

    Deviations from the official code (``docs/memory.md``): the official AdamW decays
    the already-updated weight (W ← W' − ηλW'), optax's chain the current one (an
    O(η²λ) difference; λ = 0 by default); the official non-projected parameters use the
    Hugging Face Adam form (ε before bias correction) while here they take
    ``optax.adamw`` (ε after): both differ only while √(1−β₂ᵗ) is far from 1.

    Args:
      learning_rate: scalar or schedule η (paper 0.01).
      rank, update_interval, scale, b1, b2, eps, gamma, moment_dtype: see
        :func:`scale_by_fira`.
      weight_decay: decoupled weight decay λ ≥ 0 (× η).
      mask: pytree or callable selecting the leaves that get weight decay.
      fira_mask: pytree of bools or callable ``params -> pytree``: which 2-D leaves take
        Fira (``None``: all 2-D leaves; others always AdamW).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> opt = gradkit.fira(0.01, rank=2)
      >>> state = opt.init({"kernel": jnp.ones((8, 4)), "bias": jnp.zeros(4)})

    References:
      Chen et al., `Fira: Can We Achieve Full-rank Training of LLMs Under Low-rank
      Constraint? <https://arxiv.org/abs/2410.01623>`_, 2024 (Algorithm 1, §5 setup).
    """
    _validation.check_learning_rate(learning_rate)
    _validation.check_nonnegative("weight_decay", weight_decay)
    body = optax.chain(
        scale_by_fira(rank, update_interval, scale, b1, b2, eps, gamma,
                      moment_dtype=moment_dtype),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )
    other = adamw_weak_hparams(learning_rate, b1, b2, eps, weight_decay, mask)
    return optax.partition({"fira": body, "adam": other}, matrix_labels(fira_mask, "fira"))
