# SPDX-License-Identifier: Apache-2.0
"""SPAM: spike-aware Adam with momentum reset, post-reset warm-up and sparse momentum.

Huang et al., 2025, arXiv 2501.06842, Algorithm 1; checked line by line against the
official ``TianjinYellow/SPAM-Optimizer`` ``galore_torch/SPAM.py`` (``AdamW`` class)
and pytorch-optimizer's ``SPAM``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import Literal
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _common
from gradkit.spikes import _count
from gradkit.spikes import _reset

EpsConvention = Literal["official", "optax"]


class ScaleBySpamState(NamedTuple):
    """State for :func:`scale_by_spam`."""

    count: chex.Array  # int32 scalar, updates so far (global; never reset by default).
    mu: optax.Updates  # First moment: params' shape, or (k,) for sparse leaves; mu_dtype.
    nu: optax.Updates  # Second moment: same shapes as mu; nu_dtype (float32 for bf16).
    index: optax.Updates  # int32 (k,) sorted flat indices kept by a sparse leaf; [-1] if dense.
    key: chex.Array  # uint32 raw PRNG key data, drawing the sparse masks at each reset.
    # int32 scalar, entries clipped at the last counted step; None unless counted.
    num_clipped: chex.Array | None = None


def _sparse_flags(tree, density: float, density_mask) -> Any:
    """Per-leaf bools: True for the leaves that keep moments on a random subset."""
    if density >= 1.0:
        return jax.tree.map(lambda _: False, tree)
    if density_mask is None:
        return jax.tree.map(lambda x: jnp.ndim(x) == 2, tree)
    flags = density_mask(tree) if callable(density_mask) else density_mask
    return jax.tree.map(lambda x, f: bool(f) and jnp.size(x) > 0, tree, flags)


def _draw_index(key, size: int, k: int) -> jax.Array:
    """k distinct flat indices in [0, size), uniformly at random, sorted."""
    idx = jax.random.choice(key, size, (k,), replace=False)
    return jnp.sort(idx).astype(jnp.int32)


def _redraw(key, i: int, idx, size: int, m=None, v=None):
    """A new mask of the same size; moments (if given) kept on the overlap, else 0."""
    k = idx.shape[0]
    fresh = _draw_index(jax.random.fold_in(key, i), size, k)
    if m is None:
        return fresh
    # Position of each old index in the moment vectors (−1: not kept before).
    pos = jnp.full((size,), -1, jnp.int32).at[idx].set(jnp.arange(k, dtype=jnp.int32))
    where_old = pos[fresh]
    keep = where_old >= 0
    safe = jnp.maximum(where_old, 0)
    return (fresh, jnp.where(keep, m[safe], jnp.zeros_like(m)),
            jnp.where(keep, v[safe], jnp.zeros_like(v)))


def _concrete_density(density) -> float:
    try:
        return float(density)
    except (TypeError, jax.errors.ConcretizationTypeError) as e:
        raise ValueError(
            "`density` fixes the state's shapes and must be a concrete number; with "
            "optax.inject_hyperparams pass static_args=('density',)."
        ) from e


def _check_key(key: Any) -> None:
    if not (_common.is_int(key) or isinstance(key, jax.Array)):
        raise TypeError(f"`key` must be an integer or a JAX PRNG key, got {key!r}.")


def scale_by_spam(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    *,
    eps: jax.typing.ArrayLike = 1e-6,
    threshold: jax.typing.ArrayLike = 5000.0,
    reset_interval: int | None = 500,
    clip_delay: int = 20,
    density: float = 1.0,
    density_mask: Any | Callable[[optax.Params], Any] | None = None,
    key: int | jax.Array = 0,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
    count_interval: int | None = None,
    eps_convention: EpsConvention = "official",
    reset_count: bool = False,
    reset_moments: bool = True,
) -> optax.GradientTransformation:
    r"""SPAM's direction: Adam with spike-aware clipping, momentum reset, sparse moments.

    Per leaf, with t the 1-based global update index and ΔT = ``reset_interval``:

    .. math::

        &\text{if } t \bmod \Delta T = 0:\ m, v \leftarrow 0
          \quad\text{(momentum reset, before the update)}\\
        &\text{if } t \ge N_c \text{ and } t \bmod \Delta T \ge N_c:\
          g \leftarrow \operatorname{sign}(g)\sqrt{\theta v}\ \text{ where } g^2 > \theta v\\
        &m \leftarrow \beta_1 m + (1-\beta_1) g,\qquad v \leftarrow \beta_2 v + (1-\beta_2) g^2\\
        &u = \frac{\sqrt{1-\beta_2^{t}}}{1-\beta_1^{t}}\cdot\frac{m}{\sqrt{v} + \epsilon}

    (the post-reset warm-up, weight decay and learning rate are added by :func:`spam`).
    This is Algorithm 1 of the paper as the official code implements it:

    * the spike test uses v from *before* this step with no bias correction (paper
      Eq. (2) with the EMA of the previous step; official ``exp_avg_sq``);
    * clipping is skipped during the first N_c = ``clip_delay`` = 20 steps of training
      and after each reset (official ``grad_accu_steps`` and ``t % ΔT >= 20``);
    * the bias-correction count t is the global step and is **not** reset with the
      moments (official ``state["step"]`` is never reset). Right after a reset the
      update is therefore un-debiased: (1−β₁)/√(1−β₂)·sign(g) ≈ 3.2·sign(g) instead
      of Adam's sign(g) at its first step. The post-reset warm-up of :func:`spam`
      (factor 0.01 at the reset step) tames it. ``reset_count=True`` restarts the bias
      correction at each reset instead (our option, not the official behaviour);
    * ε is added to √v *before* the bias correction is applied, as the official code
      (HF-transformers ``AdamW`` style): ``u = √(1−β₂ᵗ)/(1−β₁ᵗ) · m/(√v + ε)``, i.e.
      ``m̂/(√v̂ + ε/√(1−β₂ᵗ))``. ``eps_convention="optax"`` uses ``m̂/(√v̂ + ε)`` as
      ``optax.scale_by_adam`` (with ``threshold=inf``, ``reset_interval=None`` and
      density 1 this transform then equals ``optax.scale_by_adam(b1, b2, eps)``;
      with the official convention it equals it only for ε = 0).

    Sparse momentum (``density`` d < 1): each selected leaf (by default every 2-D
    leaf, as pytorch-optimizer; the official training script selects the attention
    and MLP ``Linear`` weights) keeps m and v only on k = max(1, ⌊d·size⌋) random entries,
    stored as flat vectors of length k plus their int32 indices; the other entries get
    a zero update. State bytes per parameter of such a leaf: 12d with float32 moments
    (3.0 at d = 0.25, vs 8.0 for Adam; the official code stores a dense boolean mask,
    1 + 8d). Masks are re-drawn at every reset (with a key kept in the state); moments
    on the overlap of the old and new masks are carried over and the rest start at
    zero, as the official ``update_mask_random``. Because the official reset then
    zeroes all moments at the same boundary, the carried values only survive with
    ``reset_moments=False`` (masks re-drawn, moments not reset). Difference: the
    official re-draw samples each entry with probability d (a random count); here
    every mask has exactly k entries, so the state shape is static.

    NaN/Inf: an ``inf`` gradient entry is clipped to ±√(θv) once clipping is active
    and reaches Adam finite; before that, and for NaN, it propagates into m, v and the
    update (as in the official code). ``optax.apply_if_finite(gradkit.spam(...))``
    skips such steps entirely (the state, including ``count``, is left untouched, so
    resets and warm-ups shift by the number of skipped steps).

    Args:
      b1: decay of the first moment, in [0, 1).
      b2: decay of the second moment, in [0, 1).
      eps: ε ≥ 0 (official default 1e-6; see ``eps_convention``).
      threshold: θ ≥ 0 of the spike test g² > θ·v (default 5000). 0 or ``inf``
        disables clipping.
      reset_interval: ΔT, a positive integer; ``None`` (or 0) disables resets (clipping
        then starts at t = ``clip_delay`` and never pauses).
      clip_delay: N_c ≥ 0, steps without clipping after the start and each reset.
      density: d in (0, 1], fraction of each selected leaf's entries with moments.
        Fixes state shapes, so it must be concrete (``static_args`` under
        ``optax.inject_hyperparams``).
      density_mask: pytree of bools (or a callable of params returning one) selecting
        the leaves made sparse when d < 1; default: all 2-D leaves.
      key: an integer or a ``jax.random.key``, drawing the sparse masks.
      mu_dtype: dtype of m; ``None`` keeps the params' dtype.
      nu_dtype: dtype of v; ``None``: float32 for bfloat16/float16 params (a bf16 EMA
        with β₂ = 0.999 stalls at a quarter of its value, which would make the spike
        threshold 4× too low), else the params' dtype.
      count_interval: None (default): no spike count, the state's ``num_clipped`` is
        None; k ≥ 1: ``num_clipped`` (int32) holds the entries clipped at the last
        update t with t % k == 0 (1: every update, exact). Static.
      eps_convention: ``"official"`` (ε added to √v) or ``"optax"`` (ε added to √v̂).
      reset_count: restart the bias correction at each reset (official: False).
      reset_moments: zero m and v at each reset (official: True).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import gradkit, optax
      >>> opt = optax.chain(gradkit.scale_by_spam(density=0.25), optax.scale(-1e-3))

    References:
      Huang et al., `SPAM: Spike-Aware Adam with Momentum Reset for Stable LLM
      Training <https://arxiv.org/abs/2501.06842>`_, 2025 (Algorithm 1, Eq. (2), §4.4).
    """
    _common.check_interval("b1", b1, 0.0, 1.0)
    _common.check_interval("b2", b2, 0.0, 1.0)
    _common.check_nonnegative("eps", eps)
    _common.check_nonnegative("threshold", threshold)
    _reset.check_reset_interval(reset_interval)
    _common.check_nonnegative_int("clip_delay", clip_delay)
    _common.check_interval("density", density, 0.0, 1.0, low_closed=False, high_closed=True)
    _check_key(key)
    _common.check_float_dtype("mu_dtype", mu_dtype)
    _common.check_float_dtype("nu_dtype", nu_dtype)
    _common.check_choice("eps_convention", eps_convention, ("official", "optax"))
    count_interval = _count.check_count_interval(count_interval)
    mu_dtype = _common.canonicalize_dtype(mu_dtype)
    nu_dtype = _common.canonicalize_dtype(nu_dtype)

    def init_fn(params):
        d = _concrete_density(density)
        flags = _sparse_flags(params, d, density_mask)
        next_key, sub = jax.random.split(_common.typed_key(key))
        leaves, treedef = jax.tree.flatten(params)
        index, mu, nu = [], [], []
        for i, (p, sparse) in enumerate(zip(leaves, treedef.flatten_up_to(flags),
                                            strict=True)):
            if sparse:
                k = max(1, int(d * p.size))
                index.append(_draw_index(jax.random.fold_in(sub, i), p.size, k))
                shape = (k,)
            else:
                index.append(jnp.full((1,), -1, jnp.int32))  # orbax cannot save size 0
                shape = p.shape
            mu.append(jnp.zeros(shape, mu_dtype or p.dtype))
            nu.append(jnp.zeros(shape, _common.nu_dtype_for(p.dtype, nu_dtype)))
        return ScaleBySpamState(
            count=jnp.zeros([], jnp.int32),
            mu=treedef.unflatten(mu),
            nu=treedef.unflatten(nu),
            index=treedef.unflatten(index),
            key=jax.random.key_data(next_key),
            num_clipped=_count.initial_count(count_interval),
        )

    def update_fn(updates, state, params=None):
        del params
        _common.check_same_structure(updates, state.mu)
        # Same float32 arithmetic whether hyperparameters are Python numbers or
        # arrays injected by optax.inject_hyperparams.
        b1_, b2_, eps_, theta = (jnp.asarray(x, jnp.float32) for x in (b1, b2, eps, threshold))
        leaves, treedef = jax.tree.flatten(updates)
        mu = treedef.flatten_up_to(state.mu)
        nu = treedef.flatten_up_to(state.nu)
        index = treedef.flatten_up_to(state.index)
        sparse = [m.shape != g.shape for g, m in zip(leaves, mu, strict=True)]

        count = optax.safe_increment(state.count)  # t, 1-based
        reset, phase, has_reset = _reset.reset_phase(count, reset_interval)
        clip_active = ((count >= clip_delay) & (~has_reset | (phase >= clip_delay))
                       & (theta > 0))
        if reset_count:  # restart at each reset: t ↦ (t mod ΔT) + 1 once t ≥ ΔT
            bc_count = jnp.where(has_reset & (count > phase), phase + 1, count)
        else:
            bc_count = count

        key_data = state.key
        if any(sparse):  # masks are re-drawn at resets
            next_key, sub = jax.random.split(jax.random.wrap_key_data(state.key))
            key_data = jnp.where(reset, jax.random.key_data(next_key), state.key)
            for i, g in enumerate(leaves):
                if not sparse[i]:
                    continue
                if reset_moments:  # moments are zeroed below: only the mask is re-drawn
                    index[i] = jax.lax.cond(
                        reset, lambda idx, i=i, n=g.size: _redraw(sub, i, idx, n),
                        lambda idx: idx, index[i])
                else:
                    index[i], mu[i], nu[i] = jax.lax.cond(
                        reset, lambda a, i=i, n=g.size: _redraw(sub, i, a[0], n, *a[1:]),
                        lambda a: a, (index[i], mu[i], nu[i]))
        if reset_moments:
            mu = [jnp.where(reset, jnp.zeros_like(m), m) for m in mu]
            nu = [jnp.where(reset, jnp.zeros_like(v), v) for v in nu]

        def gather(g, idx, is_sparse):
            g = g.reshape(-1)[idx] if is_sparse else g
            return g.astype(jnp.float32)

        def spike_mask(g, v):
            return clip_active & (g * g > theta * v.astype(jnp.float32))

        grads = [gather(g, idx, s) for g, idx, s in zip(leaves, index, sparse, strict=True)]
        num_clipped = _count.num_clipped(
            count_interval, count, state.num_clipped,
            lambda: [spike_mask(g, v) for g, v in zip(grads, nu, strict=True)])

        t = bc_count.astype(jnp.float32)
        bc1 = 1.0 - b1_**t
        bc2 = 1.0 - b2_**t
        new_updates, new_mu, new_nu = [], [], []
        for g_in, g, m, v, idx, is_sparse in zip(leaves, grads, mu, nu, index, sparse,
                                                 strict=True):
            v32 = v.astype(jnp.float32)
            g = jnp.where(spike_mask(g, v), jnp.sign(g) * jnp.sqrt(theta * v32), g)
            m = (b1_ * m.astype(jnp.float32) + (1.0 - b1_) * g).astype(m.dtype)
            v = (b2_ * v32 + (1.0 - b2_) * g * g).astype(v.dtype)
            m32, v32 = m.astype(jnp.float32), v.astype(jnp.float32)
            if eps_convention == "official":
                u = (jnp.sqrt(bc2) / bc1) * (m32 / (jnp.sqrt(v32) + eps_))
            else:
                u = (m32 / bc1) / (jnp.sqrt(v32 / bc2) + eps_)
            u = u.astype(g_in.dtype)
            if is_sparse:  # unmasked entries get no update
                u = jnp.zeros(g_in.size, u.dtype).at[idx].set(u).reshape(g_in.shape)
            new_updates.append(u)
            new_mu.append(m)
            new_nu.append(v)
        return treedef.unflatten(new_updates), ScaleBySpamState(
            count=count,
            mu=treedef.unflatten(new_mu),
            nu=treedef.unflatten(new_nu),
            index=treedef.unflatten(index),
            key=key_data,
            num_clipped=num_clipped,
        )

    return optax.GradientTransformation(init_fn, update_fn)


def spam(
    learning_rate: optax.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    *,
    eps: jax.typing.ArrayLike = 1e-6,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    mask: Any | Callable[[optax.Params], Any] | None = None,
    threshold: jax.typing.ArrayLike = 5000.0,
    reset_interval: int | None = 500,
    warmup_steps: int = 150,
    clip_delay: int = 20,
    density: float = 1.0,
    density_mask: Any | Callable[[optax.Params], Any] | None = None,
    key: int | jax.Array = 0,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
    count_interval: int | None = None,
    eps_convention: EpsConvention = "official",
    reset_count: bool = False,
    reset_moments: bool = True,
) -> optax.GradientTransformationExtraArgs:
    r"""SPAM: spike-aware Adam with momentum reset, post-reset warm-up, weight decay.

    .. math::

        x_t = x_{t-1} - \eta_t\,\bigl(s(t)\,u_t + \lambda\,x_{t-1}\bigr)

    with u_t from :func:`scale_by_spam` and s(t) the cosine warm-up of
    :func:`post_reset_warmup` (0.01 at each reset step, back to 1 after
    ``warmup_steps`` = 150 steps; none at the start of training):
    ``optax.chain(scale_by_spam(...), optax.scale_by_schedule(post_reset_warmup(ΔT,
    warmup_steps)), optax.add_decayed_weights(weight_decay, mask),
    optax.scale_by_learning_rate(learning_rate))``. Defaults are the paper's/official:
    lr 1e-3, β = (0.9, 0.999), ε = 1e-6, θ = 5000, ΔT = 500, N = 150, weight decay 0.

    Weight decay, as the official code, is decoupled, multiplied by η_t and *not* by
    the warm-up s(t). Differences: the official code decays the parameters after the
    Adam step (``p ← p − η·λ·p`` on the updated p), optax on the pre-step p (an
    O(η²λ) difference); with ``density`` < 1 the official decay line is a no-op
    (it writes into a copy made by boolean indexing) and pytorch-optimizer decays only
    the masked entries, while here every entry of a ``mask``-selected leaf is decayed.

    Args:
      learning_rate: scalar or schedule η_t (the paper uses 1e-3).
      b1, b2: see :func:`scale_by_spam`.
      eps, threshold, reset_interval, clip_delay, density, density_mask, key, mu_dtype,
        nu_dtype, count_interval, eps_convention, reset_count, reset_moments: see
        :func:`scale_by_spam`.
      weight_decay: decoupled weight decay λ ≥ 0, multiplied by η_t.
      mask: pytree or callable selecting the leaves that get weight decay.
      warmup_steps: N ≥ 0, steps of cosine warm-up of the direction after each reset
        (0 disables).

    Returns:
      An ``optax.GradientTransformationExtraArgs``. With ``count_interval`` set, the
      number of entries clipped at the last counted step is
      ``optax.tree_utils.tree_get(state, "num_clipped")``.

    Example:
      >>> import gradkit, optax, jax.numpy as jnp
      >>> opt = optax.apply_if_finite(gradkit.spam(1e-3), max_consecutive_errors=5)
      >>> state = opt.init({"w": jnp.ones((4, 3))})

    References:
      Huang et al., `SPAM: Spike-Aware Adam with Momentum Reset for Stable LLM
      Training <https://arxiv.org/abs/2501.06842>`_, 2025 (Algorithm 1).
    """
    _common.check_learning_rate(learning_rate)
    _common.check_nonnegative("weight_decay", weight_decay)
    no_reset = reset_interval is None or (
        not isinstance(reset_interval, jax.Array) and reset_interval == 0)
    return optax.chain(
        scale_by_spam(
            b1, b2, eps=eps, threshold=threshold, reset_interval=reset_interval,
            clip_delay=clip_delay, density=density, density_mask=density_mask, key=key,
            mu_dtype=mu_dtype, nu_dtype=nu_dtype, count_interval=count_interval,
            eps_convention=eps_convention, reset_count=reset_count,
            reset_moments=reset_moments),
        optax.scale_by_schedule(
            _reset.post_reset_warmup(None if no_reset else reset_interval, warmup_steps)),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )
