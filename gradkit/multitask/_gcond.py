# SPDX-License-Identifier: Apache-2.0
"""GCond (Gradient Conductor): arbitrated, angle-remapped projection of task gradients.

Limarenko et al., 2025, arXiv 2509.07252. Reference code ``AlevLab-dev/GCond``
(``grad_conductor.py``, no licence: read for facts only, nothing copied). We implement
its default "smooth" logic (``use_smooth_logic=True``) and the accumulation modes;
the legacy four-zone logic, the Lion/LARS output, AMP and DDP handling are not
implemented (see ``docs/multitask.md``).

As in :func:`gradkit.pcgrad`, every projection is a linear combination of the K task
gradients, so the conflict loop runs on K×K coefficients A (current g_i = Σ_m A_im g_m)
and the Gram matrices G = [⟨g_i, g_j⟩] and H = [⟨g_i, g_j^prev⟩]; the gradients are read
three times per step (two Gram matrices and the final combination).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _common
from gradkit.multitask import _tasks


class GCondState(NamedTuple):
    """State for :func:`gcond`."""

    count: chex.Array  # int32 scalar, number of updates so far (momentum bias correction).
    mu: optax.Updates  # momentum of the resolved gradient, like params (float32 or wider).
    prev: optax.Updates  # last step's resolved per-task gradients, (K, *param shape).
    norm_ema: chex.Array  # float32[K], EMA of each task's raw gradient norm (starts at 1).
    history: chex.Array  # int32[W], winners of the last W conflicts (-1 = none yet).
    num_projections: chex.Array  # int32 scalar, conflicts resolved at the last step.
    min_cosine: chex.Array  # float32 scalar, the first (most severe) conflict's cosine (1 if none).


def gcond_effective_angle(c: jax.Array, thresholds: Sequence[float] = (-0.8, -0.5, 0.0),
                    remap_power: float = 2.0, eps: float = 1e-8) -> jax.Array:
    r"""GCond's conflict angle α(c) from a cosine similarity c.

    With (t_crit, t_main, t_weak) = ``thresholds``:

    .. math::

        \alpha = \begin{cases}
        \tfrac{\pi}{2}\,(1 - u), & u = \mathrm{clip}\big(\tfrac{c - t_{main}}
            {t_{weak} - t_{main} + \epsilon}, 0, 1\big), \quad c \ge t_{main} \\
        \tfrac{\pi}{2}\,(1 + u'^{\,p}), & u' = \tfrac{c - t_{main}}{t_{crit} - t_{main}
            + \epsilon}, \quad t_{crit} < c < t_{main} \\
        \pi, & c \le t_{crit}. \end{cases}
    """
    t_crit, t_main, t_weak = thresholds
    c = jnp.clip(c, -1.0, 1.0)
    u = jnp.clip((c - t_main) / (t_weak - t_main + eps), 0.0, 1.0)
    mid = (c - t_main) / (t_crit - t_main + eps)
    half = jnp.pi / 2
    return jnp.where(c >= t_main, half * (1.0 - u),
                     jnp.where(c > t_crit, half + half * jnp.power(jnp.abs(mid), remap_power),
                               jnp.pi))


def _resolve(g0, h, prev_sq, ema, history, *, thresholds, weights, remap_power, eps,
             max_iters):
    """Runs the conflict loop on coefficients. Returns (A, history, n_proj, first_cos)."""
    k = g0.shape[0]
    _, _, t_weak = thresholds
    w_stab, w_strength = weights
    window = history.shape[0]
    iu, ju = jnp.triu_indices(k, 1)

    def arbitrate(a, i, j, sq, history):
        norm = jnp.sqrt(sq)
        stability = jnp.einsum("km,mk->k", a, h) / (norm * jnp.sqrt(prev_sq) + eps)
        scaled = norm / (ema + eps)
        strength_i = scaled[i] / (scaled[i] + scaled[j] + eps)
        strength_j = scaled[j] / (scaled[i] + scaled[j] + eps)
        score_i = w_stab * jnp.maximum(stability[i], 0.0) + w_strength * strength_i
        score_j = w_stab * jnp.maximum(stability[j], 0.0) + w_strength * strength_j
        by_score = jnp.where(score_j > score_i, j, i)
        if window == 0:
            return by_score
        full = jnp.all(history >= 0)
        i_dom = full & jnp.all(history == i)
        j_dom = full & jnp.all(history == j)
        # A task that won the whole window loses this conflict (reference code).
        return jnp.where(i_dom & ~j_dom, j, jnp.where(j_dom & ~i_dom, i, by_score))

    def body(it, carry):
        a, history, n_proj, first_cos = carry
        c = a @ g0 @ a.T
        sq = jnp.diagonal(c)
        cos = c / (jnp.sqrt(jnp.outer(sq, sq)) + eps)
        valid = (sq[iu] >= eps) & (sq[ju] >= eps)
        cand = jnp.where(valid, cos[iu, ju], jnp.inf)
        p = jnp.argmin(cand)
        cmin = cand[p]
        active = cmin < t_weak
        i, j = iu[p], ju[p]
        winner = arbitrate(a, i, j, sq, history)
        loser = i + j - winner
        alpha = gcond_effective_angle(cmin, thresholds, remap_power, eps)
        s_w = jnp.sin(alpha)
        s_l = jnp.sin(jnp.minimum(alpha, jnp.pi / 2))
        dot = c[i, j]
        a_w, a_l = a[winner], a[loser]
        new_w = a_w - s_w * dot / (sq[loser] + eps) * a_l
        new_l = a_l - s_l * dot / (sq[winner] + eps) * a_w
        a_new = a.at[winner].set(new_w).at[loser].set(new_l)
        a = jnp.where(active, a_new, a)
        if window:
            shifted = jnp.concatenate([history[1:], winner[None].astype(history.dtype)])
            history = jnp.where(active, shifted, history)
        first_cos = jnp.where(active & (it == 0), cmin, first_cos)
        return a, history, n_proj + active.astype(jnp.int32), first_cos

    init = (jnp.eye(k, dtype=g0.dtype), history, jnp.zeros([], jnp.int32),
            jnp.ones([], g0.dtype))
    return jax.lax.fori_loop(0, max_iters, body, init)


def gcond(
    num_tasks: int,
    *,
    thresholds: Sequence[float] = (-0.8, -0.5, 0.0),
    momentum: float = 0.85,
    norm_ema_decay: float = 0.95,
    tie_breaking_weights: Sequence[float] = (0.8, 0.2),
    dominance_window: int = 3,
    remap_power: float = 2.0,
    max_iters: int | None = None,
    norm_cap: float | None = None,
    eps: float = 1e-8,
    axis_name: str | None = None,
) -> optax.GradientTransformation:
    r"""GCond's conflict resolution and momentum over K task gradients (one update out).

    Input: the accumulated task gradients G_1..G_K (a leading task axis on every leaf;
    see :func:`gcond_accumulate` for the classical and stochastic accumulation). Per
    step (reference ``GradientConductor._project`` / ``_momentum_update``, smooth logic):

    1. Norm EMAs: e_k ← max(0.95·e_k + 0.05·‖G_k‖, ε) (e_k starts at 1).
    2. Up to ``max_iters`` (default 2K) times: among pairs with non-zero gradients take
       the lowest cosine c; stop if c ≥ t_weak. The **arbitrator** names a winner w:
       a task that won each of the last ``dominance_window`` conflicts loses (the
       reference code; its README says the opposite); otherwise the higher score
       0.8·max(cos(G_k, G_k^prev), 0) + 0.2·(‖G_k‖/e_k)/(‖G_i‖/e_i + ‖G_j‖/e_j) wins
       (ties: the lower index). With α = :func:`gcond_effective_angle` (c), simultaneously

       .. math::

           G_w \leftarrow G_w - \sin\alpha\,\frac{\langle G_w,G_l\rangle}{\|G_l\|^2+\epsilon}G_l,
           \qquad
           G_l \leftarrow G_l - \sin(\min(\alpha,\tfrac{\pi}{2}))\,
           \frac{\langle G_w,G_l\rangle}{\|G_w\|^2+\epsilon}G_w .

    3. g = Σ_k G_k; m ← β m + (1−β) g; output m / (1 − β^t) (β = ``momentum``; β = 0
       returns g itself, the reference's ``return_raw_grad``). The resolved G_k are kept
       as next step's G_k^prev (the reference swaps its projected buffers).

    Feed the output to an optimizer without its own first moment, as the reference
    advises, e.g. ``optax.chain(gcond(2), optax.adam(lr, b1=0.0))`` or ``optax.sgd``.
    Deviations: float32 accumulation (the reference keeps bf16 buffers); only the
    smooth logic; no Lion/LARS output (``use_lion``).

    Args:
      num_tasks: K ≥ 1 (fixes the state's shapes).
      thresholds: (t_crit, t_main, t_weak), non-decreasing in [−1, 1].
      momentum: β in [0, 1).
      norm_ema_decay: decay of the gradient-norm EMAs, in [0, 1).
      tie_breaking_weights: (stability, strength) weights, ≥ 0 with positive sum.
      dominance_window: W ≥ 0 conflicts in a row that make a winner lose (0 disables).
      remap_power: p > 0 of the angle remapping.
      max_iters: conflict-loop iterations (default 2K).
      norm_cap: optional cap on each task gradient's norm (applied after the EMA).
      eps: ε of every denominator.
      axis_name: task gradients are ``pmean``-ed over this axis first (data parallel);
        every device then resolves the same global conflict (equal to one device).

    Returns:
      An ``optax.GradientTransformation``; ``update`` takes a tree with a leading task
      axis of size K (or, with ``params``, a tuple of K trees like ``params``) and
      returns one tree. A wrong number of tasks or mismatched shapes raise
      ``ValueError``. NaN/Inf in a task gradient make the update NaN/Inf.

    Example:
      >>> import gradkit, jax.numpy as jnp, optax
      >>> opt = optax.chain(gradkit.gcond(num_tasks=2), optax.sgd(0.1))
      >>> params = {"w": jnp.zeros(2)}
      >>> state = opt.init(params)
      >>> updates, state = opt.update({"w": jnp.array([[1.0, 0.0], [-1.0, 0.2]])},
      ...                             state, params)

    References:
      Limarenko et al., `Gradient Conductor (GCond)
      <https://arxiv.org/abs/2509.07252>`_, 2025 (conflict resolution, arbitrator,
      stochastic accumulation); reference ``AlevLab-dev/GCond`` ``grad_conductor.py``.
    """
    _common.check_positive_int("num_tasks", num_tasks)
    thresholds = tuple(float(t) for t in thresholds)
    if len(thresholds) != 3:
        raise ValueError(f"`thresholds` must be (t_crit, t_main, t_weak), got {thresholds}.")
    if not all(-1.0 <= t <= 1.0 for t in thresholds) or not (
            thresholds[0] <= thresholds[1] <= thresholds[2]):
        raise ValueError("`thresholds` must be non-decreasing cosines in [-1, 1] "
                         f"(t_crit <= t_main <= t_weak), got {thresholds}.")
    _common.check_interval("momentum", momentum, 0.0, 1.0)
    _common.check_interval("norm_ema_decay", norm_ema_decay, 0.0, 1.0)
    weights = tuple(float(w) for w in tie_breaking_weights)
    if len(weights) != 2 or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError("`tie_breaking_weights` must be 2 non-negative numbers with a "
                         f"positive sum, got {tie_breaking_weights}.")
    if dominance_window != 0:
        _common.check_positive_int("dominance_window", dominance_window)
    _common.check_positive("remap_power", remap_power)
    iters = 2 * num_tasks if max_iters is None else max_iters
    if max_iters is not None and max_iters != 0:
        _common.check_positive_int("max_iters", max_iters)
    if norm_cap is not None:
        _common.check_positive("norm_cap", norm_cap)
    _common.check_positive("eps", eps)
    beta = momentum

    def init_fn(params):
        def wide(x):
            return jnp.zeros(jnp.shape(x), jnp.promote_types(jnp.result_type(x), jnp.float32))

        return GCondState(
            count=jnp.zeros([], jnp.int32),
            mu=jax.tree.map(wide, params),
            prev=jax.tree.map(lambda x: jnp.zeros((num_tasks, *jnp.shape(x)),
                                                  jnp.result_type(x)), params),
            norm_ema=jnp.ones([num_tasks], jnp.float32),
            history=jnp.full([dominance_window], -1, jnp.int32),
            num_projections=jnp.zeros([], jnp.int32),
            min_cosine=jnp.ones([], jnp.float32),
        )

    def update_fn(updates, state, params=None):
        updates = _common.as_stacked(updates, params, what="task")
        k = _common.num_stacked(updates)
        if k != num_tasks:
            raise ValueError(f"gcond was built for num_tasks={num_tasks} but `updates` has "
                             f"{k} tasks on its leading axis.")
        if jax.tree.structure(updates) != jax.tree.structure(state.mu):
            raise ValueError("`updates` must be structured like the params the state was "
                             f"initialised with.\n  updates: {jax.tree.structure(updates)}\n"
                             f"  expected: {jax.tree.structure(state.mu)}")
        if axis_name is not None:
            updates = jax.lax.pmean(updates, axis_name)
        return _gcond_step(updates, state, thresholds=thresholds, beta=beta,
                           norm_ema_decay=norm_ema_decay, weights=weights,
                           remap_power=remap_power, eps=eps, max_iters=iters,
                           norm_cap=norm_cap)

    return optax.GradientTransformation(init_fn, update_fn)


@functools.partial(jax.jit, static_argnames=(
    "thresholds", "beta", "norm_ema_decay", "weights", "remap_power", "eps", "max_iters",
    "norm_cap"))
def _gcond_step(updates, state, *, thresholds, beta, norm_ema_decay, weights, remap_power,
                eps, max_iters, norm_cap):
    k = _common.num_stacked(updates)
    g0 = _tasks.gram(updates)
    raw_norm = jnp.sqrt(jnp.diagonal(g0))
    if k > 1:
        ema = jnp.maximum(norm_ema_decay * state.norm_ema + (1 - norm_ema_decay) * raw_norm,
                          eps).astype(jnp.float32)
    else:  # the reference returns the single gradient before touching the EMA
        ema = state.norm_ema
    scale = jnp.ones([k], g0.dtype)
    if norm_cap is not None:
        scale = jnp.where(raw_norm > norm_cap, norm_cap / (raw_norm + eps), 1.0)
    g_capped = g0 * jnp.outer(scale, scale)
    h = _tasks.gram(updates, state.prev) * scale[:, None]
    prev_sq = sum(jnp.sum(jnp.square(x.reshape(k, -1).astype(jnp.float32)), axis=1)
                  for x in jax.tree.leaves(state.prev))
    if k > 1 and max_iters > 0:
        a, history, n_proj, first_cos = _resolve(
            g_capped, h, prev_sq, ema, state.history, thresholds=thresholds,
            weights=weights, remap_power=remap_power, eps=eps, max_iters=max_iters)
    else:
        a, history = jnp.eye(k, dtype=g0.dtype), state.history
        n_proj, first_cos = jnp.zeros([], jnp.int32), jnp.ones([], g0.dtype)
    a = a * scale[None, :]  # coefficients on the raw (uncapped) gradients
    finite = jnp.all(jnp.isfinite(g0))
    a = jnp.where(finite, a, jnp.nan)
    resolved = _tasks.combine(a, updates)
    total = _tasks.combine(jnp.sum(a, axis=0), updates)
    count = optax.safe_increment(state.count)
    mu = jax.tree.map(lambda m, g: beta * m + (1 - beta) * g.astype(m.dtype), state.mu, total)
    correction = 1 - beta ** count.astype(jnp.float32)
    out = jax.tree.map(lambda m, g: (m / correction).astype(g.dtype), mu, total)
    return out, GCondState(count=count, mu=mu, prev=resolved, norm_ema=ema, history=history,
                           num_projections=n_proj, min_cosine=first_cos.astype(jnp.float32))


def gcond_accumulate(
    task_loss_fn: Callable[[Any, Any, int], jax.Array],
    params: Any,
    micro_batches: Any,
    num_tasks: int,
    *,
    stochastic: bool = True,
    task_weights: Sequence[float] | None = None,
) -> tuple[Any, int]:
    r"""GCond's gradient accumulation: the stacked G_k for :func:`gcond`.

    Over n micro-batches b_1..b_n (a leading axis of size n on ``micro_batches``):

    * classical (``stochastic=False``): G_k = (1/n) Σ_m λ_k ∇L_k(b_m), K·n gradient
      evaluations;
    * stochastic (default, the reference's ``stochastic_accumulation=True``): task k
      only sees its own consecutive n/K micro-batches, G_k = (K/n) Σ_{m∈M_k} λ_k ∇L_k(b_m),
      n evaluations (n must be divisible by K, as in the reference).

    Args:
      task_loss_fn: ``task_loss_fn(params, micro_batch, task) -> scalar``; ``task`` is a
        Python int (branch on it freely).
      params: parameters.
      micro_batches: tree with a leading micro-batch axis n.
      num_tasks: K.
      stochastic: the accumulation mode.
      task_weights: λ_k (default all 1).

    Returns:
      ``(stacked_grads, num_gradient_evaluations)``: a tree with a leading task axis K
      and the number of per-micro-batch gradient evaluations (a Python int).

    Training-step pattern::

        opt = optax.chain(gradkit.gcond(num_tasks=2), optax.sgd(1e-2))

        @jax.jit
        def train_step(params, opt_state, micro_batches):
            grads, _ = gradkit.gcond_accumulate(task_loss, params, micro_batches, 2)
            updates, opt_state = opt.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state
    """
    _common.check_positive_int("num_tasks", num_tasks)
    n = _common.num_stacked(_common.as_stacked(micro_batches, None, what="micro-batch"))
    lam = [1.0] * num_tasks if task_weights is None else [float(w) for w in task_weights]
    if len(lam) != num_tasks:
        raise ValueError(f"`task_weights` has {len(lam)} entries for {num_tasks} tasks.")
    if stochastic and n % num_tasks:
        raise ValueError(f"stochastic accumulation needs the number of micro-batches ({n}) "
                         f"to be divisible by num_tasks ({num_tasks}).")

    def accumulate(task, batches):
        grad_fn = jax.grad(lambda p, b: task_loss_fn(p, b, task))

        def body(total, b):
            g = grad_fn(params, b)
            return jax.tree.map(lambda t, x: t + x.astype(t.dtype), total, g), None

        zeros = jax.tree.map(lambda p: jnp.zeros(jnp.shape(p), jnp.promote_types(
            jnp.result_type(p), jnp.float32)), params)
        total, _ = jax.lax.scan(body, zeros, batches)
        count = jax.tree.leaves(batches)[0].shape[0]
        return jax.tree.map(lambda t, p: (lam[task] * t / count).astype(jnp.result_type(p)),
                            total, params)

    per_task = []
    for task in range(num_tasks):
        if stochastic:
            size = n // num_tasks
            batches = jax.tree.map(lambda x, task=task, size=size: x[task * size:(task + 1)
                                                                       * size], micro_batches)
        else:
            batches = micro_batches
        per_task.append(accumulate(task, batches))
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *per_task)
    return stacked, (n if stochastic else n * num_tasks)

