# SPDX-License-Identifier: Apache-2.0
"""PCGrad: projecting conflicting gradients (gradient surgery for multi-task learning).

Yu, Kumar, Gupta, Levine, Hausman, Finn, *Gradient Surgery for Multi-Task Learning*,
2020, arXiv 2001.06782, Algorithm 1. Checked against the official TensorFlow code
(``tianheyu927/PCGrad``, ``PCGrad_tf.py``, MIT) and a float64 NumPy transcription of
Algorithm 1 (``tests/test_pcgrad.py``).

The projections are computed in the K×K space of task coefficients: with G the Gram
matrix of the task gradients, every projected gradient is a linear combination
g_i^PC = Σ_m a_im g_m, and ⟨g_i^PC, g_j⟩ = (A G)_ij. The sequential loop of Algorithm 1
therefore runs on K×K numbers; the gradients are touched twice (the Gram matrix and the
final combination), so the cost is O(K²P) whatever the task order.
"""

from __future__ import annotations

import functools
from typing import Any
from typing import Literal
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _common
from gradkit.multitask import _tasks


class PCGradState(NamedTuple):
    """State for :func:`pcgrad`."""

    count: chex.Array  # int32 scalar, number of updates so far.
    key: chex.Array  # uint32 raw key data (threefry: uint32[2]) of the task-order PRNG.


def pcgrad_coefficients(g: jax.Array, orders: jax.Array) -> jax.Array:
    """Coefficients A (K×K) with g_i^PC = Σ_m A[i, m] g_m, from the Gram matrix `g`.

    Runs Algorithm 1's inner loop for every task i over the other tasks in the order
    ``orders[i]`` (a permutation of range(K); the entry i itself is skipped): if
    ⟨g_i^PC, g_j⟩ < 0 then g_i^PC ← g_i^PC − ⟨g_i^PC, g_j⟩/‖g_j‖² · g_j, always against
    the original g_j. Tasks with a zero gradient are never projected on.
    """
    k = g.shape[0]
    sq = jnp.diagonal(g)

    def one_task(i, order):
        def body(pos, a):
            j = order[pos]
            dot = a @ g[:, j]
            conflict = (j != i) & (dot < 0) & (sq[j] > 0)
            step = jnp.where(conflict, dot / jnp.where(sq[j] > 0, sq[j], 1.0), 0.0)
            return a.at[j].add(-step)

        return jax.lax.fori_loop(0, k, body, jax.nn.one_hot(i, k, dtype=g.dtype))

    return jax.vmap(one_task)(jnp.arange(k), orders)


@functools.partial(jax.jit, static_argnames=("shuffle", "reduction"))
def _pcgrad_step(updates, key_data, shuffle, reduction):
    """One PCGrad step on stacked task gradients; returns (output tree, next key data)."""
    k = _common.num_stacked(updates)
    next_raw, step_raw = jax.random.split(jax.random.wrap_key_data(key_data))
    if shuffle:
        orders = jax.vmap(lambda kk: jax.random.permutation(kk, k))(
            jax.random.split(step_raw, k))
    else:
        orders = jnp.tile(jnp.arange(k), (k, 1))
    g = _tasks.gram(updates)
    coeffs = pcgrad_coefficients(g, orders)
    # A non-finite gradient poisons the whole update (not just its own coordinates).
    weights = jnp.where(jnp.all(jnp.isfinite(g)), jnp.sum(coeffs, axis=0), jnp.nan)
    if reduction == "mean":
        weights = weights / k
    return _tasks.combine(weights, updates), jax.random.key_data(next_raw)


def pcgrad(
    key: Any = 0,
    reduction: Literal["sum", "mean"] = "sum",
    *,
    shuffle: bool = True,
    axis_name: str | None = None,
) -> optax.GradientTransformation:
    r"""Projects conflicting task gradients onto each other's normal plane (PCGrad).

    For K task gradients g_1..g_K (a leading task axis on every leaf of ``updates``),
    each task i starts from g_i^PC = g_i and, for every other task j in a random order,

    .. math::

        \text{if } g_i^{PC}\cdot g_j < 0:\quad
        g_i^{PC} \leftarrow g_i^{PC} - \frac{g_i^{PC}\cdot g_j}{\|g_j\|^2}\, g_j ,

    always projecting on the *original* g_j; the output is
    :math:`\sum_i g_i^{PC}` (``reduction="sum"``, the paper) or its mean
    (``"mean"``, the default of pytorch-optimizer's ``PCGrad``). With two tasks the
    result s satisfies s·g_1 ≥ 0 and s·g_2 ≥ 0 (tested). Chain it before any optimizer:
    ``optax.chain(gradkit.pcgrad(key), optax.adam(1e-3))``.

    Each step draws a fresh order per task from the key in the state (Algorithm 1
    "for g_j ∈ G in random order"). The official TensorFlow code shuffles a copy of the
    losses and discards the result, so its order is the fixed task order; pass
    ``shuffle=False`` for that order (tested against a NumPy transcription). The official
    code also projects g_i^PC on g_i itself, a no-op while ⟨g_i^PC, g_i⟩ ≥ 0; we skip j = i
    as the paper does.

    Args:
      key: an int or a ``jax.random.key`` for the task orders; stored in the state as
        raw key data.
      reduction: ``"sum"`` (paper) or ``"mean"`` over tasks.
      shuffle: draw a random order per task and step (paper); ``False`` uses 0..K-1.
      axis_name: if set, the task gradients are first averaged over this mapped axis
        (``jax.lax.pmean``), so the projections use the global per-task gradients and
        every device computes the same update (data parallelism under ``pmap`` /
        ``shard_map``). With one device per replica and equal shards this equals the
        one-device result (tested on 8 devices).

    Returns:
      An ``optax.GradientTransformation``. ``update(updates, state, params=None)`` takes
      per-task gradients as one tree whose leaves have a leading task axis (e.g.
      ``jax.vmap(jax.grad(task_loss), in_axes=(None, 0))(params, tasks)`` or
      ``jax.jacrev`` of the vector of task losses), or, when ``params`` is passed, a
      tuple/list of K trees each structured like ``params``; it returns one tree
      without the task axis. Leaves with different leading sizes, a tuple whose trees do
      not match ``params``, or leaves whose trailing shape differs from ``params`` raise
      ``ValueError``. A NaN/Inf in any task gradient makes the whole update NaN/Inf
      (wrap the chain in ``optax.apply_if_finite`` to skip such steps); a task whose
      gradient is exactly zero is kept but never projected on.

    Example:
      >>> import gradkit, jax, jax.numpy as jnp, optax
      >>> opt = optax.chain(gradkit.pcgrad(jax.random.key(0)), optax.sgd(0.1))
      >>> params = {"w": jnp.zeros(2)}
      >>> state = opt.init(params)
      >>> task_grads = {"w": jnp.array([[1.0, 0.0], [-1.0, 1.0]])}  # 2 tasks
      >>> updates, state = opt.update(task_grads, state, params)

    References:
      Yu et al., `Gradient Surgery for Multi-Task Learning
      <https://arxiv.org/abs/2001.06782>`_, 2020 (Algorithm 1).
    """
    _common.check_choice("reduction", reduction, ("sum", "mean"))
    if not isinstance(shuffle, bool):
        raise TypeError(f"`shuffle` must be a bool, got {shuffle!r}.")

    def init_fn(params):
        del params
        return PCGradState(count=jnp.zeros([], jnp.int32), key=_common.key_data(key))

    def update_fn(updates, state, params=None):
        updates = _common.as_stacked(updates, params, what="task")
        if axis_name is not None:
            updates = jax.lax.pmean(updates, axis_name)
        out, next_key = _pcgrad_step(updates, state.key, shuffle, reduction)
        return out, PCGradState(count=optax.safe_increment(state.count),
                                key=next_key)

    return optax.GradientTransformation(init_fn, update_fn)
