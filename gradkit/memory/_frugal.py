# SPDX-License-Identifier: Apache-2.0
"""FRUGAL: a state-full subspace updated by Adam, signSGD on the rest.

Zmushko, Beznosikov, Takáč, Horváth, *FRUGAL: Memory-Efficient Optimization by Reducing
State Overhead for Scalable Training*, ICML 2025, arXiv 2411.07837. Checked against the
authors' PyTorch code (``frugal/proj_optimizer_templates.py``, ``galore_projector.py``,
``coordinate_projector.py``, ``adamw.py`` and ``scripts/benchmark_c4``; no licence, so
read for facts only, nothing copied). See ``docs/memory.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any
from typing import Literal
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _common
from gradkit.memory import _subspace

PROJECTIONS = ("blocks", "svd", "columns", "rows")
BLOCK_ORDERS = ("descending", "ascending", "random")


class ScaleByFrugalState(NamedTuple):
    """State for :func:`scale_by_frugal`."""

    count: chex.Array  # int32 scalar, number of updates so far.
    key: chex.Array  # uint32[2], PRNG key data for random selections (split at refreshes).
    # "svd": per leaf the float32 orthonormal basis (side, r) of the state-full subspace;
    # "columns"/"rows": per leaf the int32 (r,) selected column/row indices;
    # "blocks": int32 (k+1,) indices (jax.tree.leaves order) of the k active tensors, then −1.
    projector: Any
    # Adam moments of the state-full part: per leaf in the projected shape (m×r or r×n),
    # or for "blocks" one flat (B+1,) buffer holding the active tensors back to back;
    # mu in `mu_dtype`, nu in `nu_dtype` (see scale_by_frugal).
    mu: Any
    nu: Any


def _rank_svd(shape, rho) -> int:
    """Rank of the official 'std' side: round(ρ·n) if m ≥ n (right), else round(ρ·m)."""
    m, n = shape
    return round((n if m >= n else m) * rho)


def _block_windows(num: int, k: int, order: str) -> list[list[int]]:
    """Every active set a deterministic block order visits (one cycle of periods)."""
    if num == 0 or k == 0:
        return [[]]
    cycle = num // math.gcd(num, k)
    if order == "descending":
        return [[(num - 1 - j * k - i) % num for i in range(k)] for j in range(cycle)]
    return [[(j * k + i) % num for i in range(k)] for j in range(cycle)]


def _block_buffer_size(sizes: list[int], k: int, order: str) -> int:
    """Moment-buffer length for k active tensors: the largest total size of an active set
    the order can choose (for "random": the k largest tensors)."""
    if order == "random":
        return int(sum(sorted(sizes, reverse=True)[:k]))
    return int(max(sum(sizes[i] for i in w) for w in _block_windows(len(sizes), k, order)))


def _adam_direction(g, m, v, b1, b2, eps, t):
    """Adam with ε after bias correction (torch/optax form): returns (m̂/(√v̂+ε), m, v)."""
    m = b1 * m + (1.0 - b1) * g
    v = b2 * v + (1.0 - b2) * g * g
    tf = t.astype(jnp.float32)
    m_hat = m / (1.0 - b1**tf)
    v_hat = v / (1.0 - b2**tf)
    return m_hat / (jnp.sqrt(v_hat) + eps), m, v


def scale_by_frugal(
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    *,
    rho: float = 0.25,
    update_interval: int = 200,
    projection: Literal["blocks", "svd", "columns", "rows"] = "blocks",
    block_order: Literal["descending", "ascending", "random"] = "descending",
    eps: jax.typing.ArrayLike = 1e-8,
    inactive_scale: jax.typing.ArrayLike = 1.0,
    key: int | jax.Array = 0,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
) -> optax.GradientTransformation:
    r"""Splits each update into a state-full subspace (Adam) and a state-free rest (signSGD).

    Every T = ``update_interval`` steps (at counts 0, T, 2T, …) the state-full subspace
    is re-chosen and Adam's moments **and its step count** are reset (FRUGAL Alg. 1,
    official ``reset_statistics=True``). With P the current projection, t = (count mod
    T) + 1 and s = ``inactive_scale``:

    .. math::

        R = P^\top G,\quad m \leftarrow \beta_1 m + (1-\beta_1) R,\quad
        v \leftarrow \beta_2 v + (1-\beta_2) R^2,\\
        u = P\,\frac{m/(1-\beta_1^t)}{\sqrt{v/(1-\beta_2^t)} + \epsilon}
            \;+\; s\,\operatorname{sign}\!\big(G - P P^\top G\big).

    The alias then takes W ← W − η(u + λW), the official order (decay of the current
    W, then the step). Projections (``projection``):

    * ``"blocks"`` (default; the paper's main pre-training runs, official
      ``--optimizer frugal``): k = round(ρ·N) of the N leaves (any shape) are active
      and get full Adam, the others sign(G). ``block_order="descending"`` (the
      official scripts) walks the leaves from the last (``jax.tree.leaves`` order)
      down, k per period, wrapping; ``"ascending"`` the other way; ``"random"`` a
      uniform draw of k leaves per period. The moments live in one flat buffer as long
      as the largest active set the order can choose (for ``"random"``: the k largest
      leaves), so the state is ≈ 2ρ floats per parameter when the leaves are similar.
    * ``"svd"``: per matrix G (m×n) the official ``proj_side='std'`` rule: if m ≥ n,
      P = top-r right singular vectors (n×r), R = G P (m×r), r = round(ρn); else
      P = top-r left singular vectors (m×r), R = PᵀG (r×n), r = round(ρm). The
      smaller dimension is reduced, so the rule is the same for a Flax (in, out)
      kernel and its PyTorch (out, in) transpose. The singular vectors of the current
      gradient in float32, as the leading eigenvectors of its small Gram matrix (GᵀG
      or GGᵀ): the SVD's subspace to float32 rounding; the moments restart at each
      refresh, so the vectors' signs do not matter.
    * ``"columns"`` / ``"rows"``: int(ρ·n) random columns (axis 1) / int(ρ·m) random
      rows (axis 0) of the matrix **as stored** get Adam, the others sign(G) (official
      ``CoordOptimizer``, ``int()`` rounding as there). Note: the official
      ``columns`` on a PyTorch (out, in) weight are input features, i.e. ``"rows"`` of
      a Flax (in, out) kernel.

    ``"svd"``, ``"columns"`` and ``"rows"`` take 2-D leaves only (others raise
    ``ValueError``): the official code projects only the ``nn.Linear`` weights of
    attention and MLP; embeddings, norms, biases and the head are ordinary AdamW
    parameters. :func:`frugal` does that routing with ``optax.partition``.

    Non-finite gradients: sign(NaN) = NaN, so NaN propagates to the update and (through
    Adam) to the moments until the next refresh; wrap with ``optax.apply_if_finite`` to
    skip such steps.

    Args:
      b1, b2: Adam's β₁, β₂ ∈ [0, 1) (paper 0.9, 0.999).
      rho: ρ ∈ [0, 1], fraction of the state-full space (paper 0.25). ρ = 0 is pure
        signSGD on these leaves, ρ = 1 pure Adam. Fixes state shapes: must be concrete
        when ``init`` runs.
      update_interval: T ≥ 1, steps between subspace changes (paper 200).
      projection: ``"blocks"``, ``"svd"``, ``"columns"`` or ``"rows"`` (see above).
      block_order: for ``"blocks"``: ``"descending"`` (official scripts),
        ``"ascending"`` or ``"random"`` (official class default).
      eps: Adam's ε > 0 (paper 1e-8).
      inactive_scale: s ≥ 0, learning-rate ratio of the state-free part (official
        ``inactive_lr_scale``: 1.0 for pre-training, 0.1 for fine-tuning).
      key: an int or a ``jax.random.key`` for the random selections (``"columns"``,
        ``"rows"``, ``"random"``); stored in the state as key data.
      mu_dtype: dtype of m; ``None`` uses the leaf's dtype.
      nu_dtype: dtype of v; ``None`` uses the leaf's dtype, float32 for narrower floats.

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import gradkit, optax, jax.numpy as jnp
      >>> opt = optax.chain(gradkit.scale_by_frugal(rho=0.25, projection="svd"),
      ...                   optax.scale_by_learning_rate(1e-3))
      >>> state = opt.init({"w": jnp.ones((8, 4))})

    References:
      Zmushko, Beznosikov, Takáč, Horváth, `FRUGAL: Memory-Efficient Optimization by
      Reducing State Overhead for Scalable Training <https://arxiv.org/abs/2411.07837>`_,
      2025 (Algorithm 1; §4 projections; official ``ProjOptimizer`` /
      ``BlockOptimizer`` / ``GaloreOptimizer`` / ``CoordOptimizer``).
    """
    _common.check_interval("rho", rho, 0.0, 1.0, high_closed=True)
    if _common.concrete_number(update_interval) is not None:
        _common.check_positive_int("update_interval", update_interval)
    _common.check_choice("projection", projection, PROJECTIONS)
    _common.check_choice("block_order", block_order, BLOCK_ORDERS)
    _common.check_interval("b1", b1, 0.0, 1.0)
    _common.check_interval("b2", b2, 0.0, 1.0)
    _common.check_positive("eps", eps)
    _common.check_nonnegative("inactive_scale", inactive_scale)
    if not (_common.is_int(key) or isinstance(key, jax.Array)):
        raise TypeError(f"`key` must be an integer or a JAX PRNG key, got {key!r}.")
    _common.check_float_dtype("mu_dtype", mu_dtype)
    _common.check_float_dtype("nu_dtype", nu_dtype)
    mu_dtype = _common.canonicalize_dtype(mu_dtype)
    nu_dtype = _common.canonicalize_dtype(nu_dtype)

    def init_fn(params):
        r = _common.static_float("rho", rho)
        state_key = _common.key_data(key)
        leaves, treedef = jax.tree.flatten(params)
        if projection == "blocks":
            k = round(len(leaves) * r)
            size = _block_buffer_size([x.size for x in leaves], k, block_order)
            dtype = jnp.result_type(*leaves) if leaves else jnp.float32
            # One spare slot each (a sentinel index −1 and a zero), so that k = 0 still
            # gives non-empty arrays (orbax cannot save empty ones).
            mu = jnp.zeros([size + 1], mu_dtype or dtype)
            nu = jnp.zeros([size + 1], _common.nu_dtype_for(dtype, nu_dtype))
            return ScaleByFrugalState(jnp.zeros([], jnp.int32), state_key,
                                      jnp.full([k + 1], -1, jnp.int32), mu, nu)
        _subspace.check_matrices(params, f"scale_by_frugal(projection={projection!r})")
        projs, mus, nus = [], [], []
        for x in leaves:
            m, n = x.shape
            if projection == "svd":
                rank = _rank_svd(x.shape, r)
                proj = jnp.zeros([n if m >= n else m, rank], jnp.float32)
                low = (m, rank) if m >= n else (rank, n)
            elif projection == "columns":
                rank = int(n * r)
                proj, low = jnp.zeros([rank], jnp.int32), (m, rank)
            else:
                rank = int(m * r)
                proj, low = jnp.zeros([rank], jnp.int32), (rank, n)
            projs.append(proj)
            mus.append(jnp.zeros(low, mu_dtype or x.dtype))
            nus.append(jnp.zeros(low, _common.nu_dtype_for(x.dtype, nu_dtype)))
        return ScaleByFrugalState(jnp.zeros([], jnp.int32), state_key,
                                  *(jax.tree.unflatten(treedef, x) for x in (projs, mus, nus)))

    def update_fn(updates, state, params=None):
        del params
        b1_, b2_, eps_, s_ = (_common.weak(x) for x in (b1, b2, eps, inactive_scale))
        interval = jnp.asarray(update_interval).astype(jnp.int32)
        refresh = state.count % interval == 0
        t = state.count % interval + 1
        new_key, sub = jax.random.split(jax.random.wrap_key_data(state.key))
        next_key = jnp.where(refresh, jax.random.key_data(new_key), state.key)
        if projection == "blocks":
            out, proj, mu, nu = _blocks_update(updates, state, refresh, t, sub,
                                               (b1_, b2_, eps_, s_))
        else:
            _common.check_same_structure(updates, state.mu)
            keys = jax.random.split(sub, max(1, len(jax.tree.leaves(updates))))
            leaves, treedef = jax.tree.flatten(updates)
            res = [_matrix_update(g, p, m, v, refresh, t, kk, (b1_, b2_, eps_, s_))
                   for g, p, m, v, kk in zip(leaves, treedef.flatten_up_to(state.projector),
                                             treedef.flatten_up_to(state.mu),
                                             treedef.flatten_up_to(state.nu), keys,
                                             strict=False)]
            out, proj, mu, nu = (jax.tree.unflatten(treedef, [x[i] for x in res])
                                 for i in range(4))
        return out, ScaleByFrugalState(optax.safe_increment(state.count), next_key, proj, mu,
                                       nu)

    def _matrix_update(g, proj, m, v, refresh, t, key, hp):
        b1_, b2_, eps_, s_ = hp
        gf = g.astype(jnp.promote_types(g.dtype, jnp.float32))
        rows, cols = g.shape
        right = rows >= cols
        if projection == "svd":
            rank = proj.shape[1]
            proj = jax.lax.cond(refresh,
                                lambda: _subspace.top_singular_vectors(gf, rank, right),
                                lambda: proj)
            p = proj.astype(gf.dtype)
            down = (lambda x: x @ p) if right else (lambda x: p.T @ x)
            up = (lambda x: x @ p.T) if right else (lambda x: p @ x)
        else:
            axis = 1 if projection == "columns" else 0
            size, rank = g.shape[axis], proj.shape[0]
            # A fresh random selection at refreshes only (the permutation is a sort).
            proj = jax.lax.cond(
                refresh,
                lambda: jax.random.permutation(key, size)[:rank].astype(jnp.int32),
                lambda: proj)
            down = (lambda x: x[:, proj]) if axis == 1 else (lambda x: x[proj])
            zeros = jnp.zeros_like(gf)
            up = ((lambda x: zeros.at[:, proj].set(x)) if axis == 1
                  else (lambda x: zeros.at[proj].set(x)))
        m0 = jnp.where(refresh, 0.0, m.astype(gf.dtype))
        v0 = jnp.where(refresh, 0.0, v.astype(gf.dtype))
        low = down(gf)
        direction, m1, v1 = _adam_direction(low, m0, v0, b1_, b2_, eps_, t)
        u = up(direction) + s_ * jnp.sign(gf - up(low))
        return u.astype(g.dtype), proj, m1.astype(m.dtype), v1.astype(v.dtype)

    def _blocks_update(updates, state, refresh, t, key, hp):
        b1_, b2_, eps_, s_ = hp
        leaves, treedef = jax.tree.flatten(updates)
        num, k = len(leaves), state.projector.shape[0] - 1
        sizes = [x.size for x in leaves]
        if state.mu.shape[0] != _block_buffer_size(sizes, k, block_order) + 1 or k > num:
            raise ValueError(
                "`updates` must have the same pytree structure and shapes as the params "
                "the optimizer state was initialised with.")
        period = state.count // jnp.asarray(update_interval).astype(jnp.int32)
        offsets = jnp.arange(k, dtype=jnp.int32)
        if block_order == "descending":
            chosen = jnp.mod(num - 1 - period * k - offsets, num)
        elif block_order == "ascending":
            chosen = jnp.mod(period * k + offsets, num)
        else:
            chosen = jax.random.permutation(key, num)[:k]
        active_idx = jnp.where(refresh, chosen.astype(jnp.int32), state.projector[:k])
        projector = jnp.concatenate([active_idx, jnp.full([1], -1, jnp.int32)])
        if num == 0:
            return updates, projector, state.mu, state.nu
        is_active = jnp.zeros([num], bool).at[active_idx].set(True)
        # A refresh restarts Adam: both buffers zeroed.
        mu = jnp.where(refresh, jnp.zeros_like(state.mu), state.mu)
        nu = jnp.where(refresh, jnp.zeros_like(state.nu), state.nu)
        active_sizes = jnp.asarray(sizes, jnp.int32) * is_active
        start = jnp.cumsum(active_sizes) - active_sizes  # offsets of the active leaves
        # Leaves that never fit the buffer (k = 0 or too large) are never active.
        fits = [0 < x.size < mu.shape[0] for x in leaves]

        def adam(i, mu, nu):  # Adam on leaf i's slice of the buffers
            gf = leaves[i].astype(jnp.promote_types(leaves[i].dtype, jnp.float32)).reshape(-1)
            m = jax.lax.dynamic_slice(mu, (start[i],), gf.shape)
            v = jax.lax.dynamic_slice(nu, (start[i],), gf.shape)
            direction, m1, v1 = _adam_direction(gf, m.astype(gf.dtype), v.astype(gf.dtype),
                                                b1_, b2_, eps_, t)
            return m, v, direction, m1, v1

        # The update of every leaf from the moments as they stand, then the moments
        # written back slice by slice (each write reads only its own slice, so the
        # buffers are updated in place).
        outs = []
        for i, g in enumerate(leaves):
            gf = g.astype(jnp.promote_types(g.dtype, jnp.float32)).reshape(-1)
            u = s_ * jnp.sign(gf)
            if fits[i]:
                u = jnp.where(is_active[i], adam(i, mu, nu)[2], u)
            outs.append(u.reshape(g.shape).astype(g.dtype))
        for i in range(num):
            if fits[i]:
                m, v, _, m1, v1 = adam(i, mu, nu)
                on = is_active[i]
                mu = jax.lax.dynamic_update_slice(mu, jnp.where(on, m1.astype(mu.dtype), m),
                                                  (start[i],))
                nu = jax.lax.dynamic_update_slice(nu, jnp.where(on, v1.astype(nu.dtype), v),
                                                  (start[i],))
        return jax.tree.unflatten(treedef, outs), projector, mu, nu

    return optax.GradientTransformation(init_fn, update_fn)


def frugal(
    learning_rate: optax.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    *,
    rho: float = 0.25,
    update_interval: int = 200,
    eps: jax.typing.ArrayLike = 1e-8,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    mask: Any | Callable[[optax.Params], Any] | None = None,
    projection: Literal["blocks", "svd", "columns", "rows"] = "blocks",
    block_order: Literal["descending", "ascending", "random"] = "descending",
    inactive_scale: jax.typing.ArrayLike = 1.0,
    key: int | jax.Array = 0,
    mu_dtype: Any | None = None,
    nu_dtype: Any | None = None,
    frugal_mask: Any | Callable[[optax.Params], Any] | None = None,
) -> optax.GradientTransformation:
    r"""FRUGAL on the selected matrices, full AdamW on every other leaf.

    Selected 2-D leaves (``frugal_mask``, default all matrices): ``chain(scale_by_frugal
    (...), add_decayed_weights(weight_decay, mask), scale_by_learning_rate
    (learning_rate))``. All other leaves (embeddings, norms, biases, the head when
    excluded by ``frugal_mask``): ``optax.adamw(learning_rate, b1, b2, eps,
    weight_decay, mask)``. The two are routed with ``optax.partition``, as the official
    ``prepare_proj_params`` splits ``nn.Linear`` weights of attention/MLP from the rest.
    Write the routing yourself for other splits, e.g. (Flax LM, blocks' kernels only)::

        is_body = lambda path, x: path[0].key.startswith("block_") and x.ndim == 2
        labels = lambda p: jax.tree_util.tree_map_with_path(
            lambda path, x: "frugal" if is_body(path, x) else "adam", p)
        opt = optax.partition({
            "frugal": optax.chain(gradkit.scale_by_frugal(rho=0.25),
                                  optax.scale_by_learning_rate(1e-3)),
            "adam": optax.adamw(1e-3)}, labels)

    which is what ``frugal(1e-3, frugal_mask=...)`` builds. Paper/official defaults:
    lr 1e-3 (LLaMA-60M…1B on C4, cosine with warm-up), ρ = 0.25, T = 200, β = (0.9,
    0.999), ε = 1e-8, weight decay 0 in the pre-training scripts, inactive scale 1.0,
    blockwise projection in descending order.

    Args:
      learning_rate: scalar or schedule η (shared by Adam, signSGD and the AdamW leaves,
        as the official code with ``proj_params_lr_scale=1``).
      b1, b2, rho, update_interval, eps, projection, block_order, inactive_scale, key,
        nu_dtype: see :func:`scale_by_frugal`.
      mu_dtype: dtype of m, for the FRUGAL and the AdamW leaves (``None``: the leaf's).
      weight_decay: decoupled weight decay λ ≥ 0 (× η), on all leaves.
      mask: pytree or callable selecting the leaves that get weight decay.
      frugal_mask: pytree of bools or callable ``params -> pytree``: which 2-D leaves
        take FRUGAL (``None``: all 2-D leaves; non-2-D leaves always take AdamW).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> opt = gradkit.frugal(1e-3, rho=0.25)
      >>> state = opt.init({"kernel": jnp.ones((8, 4)), "bias": jnp.zeros(4)})

    References:
      Zmushko, Beznosikov, Takáč, Horváth, `FRUGAL: Memory-Efficient Optimization by
      Reducing State Overhead for Scalable Training <https://arxiv.org/abs/2411.07837>`_,
      2025 (Algorithm 1, §5 setup).
    """
    _common.check_learning_rate(learning_rate)
    _common.check_nonnegative("weight_decay", weight_decay)
    body = optax.chain(
        scale_by_frugal(b1, b2, rho=rho, update_interval=update_interval,
                        projection=projection, block_order=block_order, eps=eps,
                        inactive_scale=inactive_scale, key=key, mu_dtype=mu_dtype,
                        nu_dtype=nu_dtype),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )
    other = _subspace.adamw_weak_hparams(learning_rate, b1, b2, eps, weight_decay, mask,
                                         mu_dtype=mu_dtype)
    return optax.partition({"frugal": body, "adam": other},
                           _subspace.matrix_labels(frugal_mask, "frugal"))

