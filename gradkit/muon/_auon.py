# SPDX-License-Identifier: Apache-2.0
"""AuON and Hybrid-AuON: momentum normalised by its Frobenius norm and a cosh-RMS brake.

Maity, *AuON: A Linear-time Alternative to Semi-Orthogonal Momentum Updates*, 2025,
arXiv 2509.24320 (v1). Reference code: ``ryyzn9/AuON`` (Apache-2.0; read for facts,
nothing copied). We follow the paper (v1) and the repository's first code version
(``Auon_Adam_train.py``, Oct 2025); the repository's later package (``auon/optimizer.py``,
Jan 2026) differs, see :func:`scale_by_auon` and ``docs/muon.md``.
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
from gradkit.muon import _base


class ScaleByAuonState(NamedTuple):
    """State for :func:`scale_by_auon`."""

    count: chex.Array  # int32 scalar, number of updates so far.
    mu: optax.Updates  # Momentum buffer, params' shapes, dtype `mu_dtype` (else params').


def cosh_rms(x: jax.Array, gamma: jax.typing.ArrayLike = 1.0) -> jax.Array:
    r"""r(X) = √(mean(cosh²(γX))), AuON's brake (≥ 1; computed in float32 or wider).

    For ‖X‖_F = 1 with N entries and γ = 1, 1 ≤ r ≤ √(1 + sinh²(1)/N), so
    r − 1 ≤ sinh²(1)/(2N): the brake is ≈ 1 for any real weight matrix (derivation in
    ``docs/muon.md``; with γ it is sinh²(γ)/(2N)).
    """
    x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    return jnp.sqrt(jnp.mean(jnp.square(jnp.cosh(gamma * x))))


def _auon_direction(g, gamma, ns_steps, rms_scaling):
    """U for one matrix G (the update before the aspect factor and learning rate)."""
    x = g.astype(jnp.promote_types(g.dtype, jnp.float32))
    x = x / (jnp.sqrt(jnp.sum(jnp.square(x))) + 1e-7)
    for _ in range(ns_steps):
        x = _base.newton_schulz_step(x)
    if rms_scaling:
        x = x / (cosh_rms(x, gamma) + 1e-8)
    return x


def scale_by_auon(
    beta: jax.typing.ArrayLike = 0.95,
    *,
    nesterov: bool = True,
    hybrid: bool = False,
    ns_steps: int | None = None,
    gamma: jax.typing.ArrayLike = 1.0,
    rms_scaling: bool = True,
    aspect_factor: bool = True,
    mu_dtype: Any | None = None,
) -> optax.GradientTransformation:
    r"""Rescales matrix updates with AuON (``hybrid=True``: Hybrid-AuON).

    For each 2-D leaf (Flax kernel layout (fan_in, fan_out)), with buf₀ = 0:

    .. math::

        \mathrm{buf}_t = \beta\,\mathrm{buf}_{t-1} + (1-\beta) g_t,\qquad
        G_t = (1-\beta) g_t + \beta\,\mathrm{buf}_t \ \ (\text{Nesterov; else } G_t =
        \mathrm{buf}_t),\\
        X_t = \mathrm{NS}^{k}\!\big(G_t / (\|G_t\|_F + 10^{-7})\big),\qquad
        r_t = \sqrt{\operatorname{mean}(\cosh^2(\gamma X_t))},\\
        u_t = \sqrt{\max(1, \text{fan\_out}/\text{fan\_in})}\; X_t / (r_t + 10^{-8}),

    where NS is one quintic Newton–Schulz step (:func:`newton_schulz_step`) applied k
    times: k = 0 is AuON (paper §3.1), k = 1 Hybrid-AuON (paper §3.2: one NS step on
    the Frobenius-normalised momentum, then the cosh-RMS division of its output).
    The alias :func:`auon` then takes W ← W − η u_t. There is no bias correction (as
    in the paper's and the reference code's PyTorch-style momentum).

    The aspect factor is the first code's ``max(1, rows/cols)**0.5`` on PyTorch's
    (out, in) weights, i.e. √max(1, fan_out/fan_in), the same as ``optax.contrib.muon``.

    Deliberate settings (see ``docs/muon.md``): we follow paper v1 / the first code.
    The repository's later ``AuON`` (Jan 2026) uses γ = 1.5 inside cosh, divides the
    *unnormalised* G_t (u = G/r(γG/‖G‖), so the step scales with ‖G‖), has no aspect
    factor, decoupled weight decay and lr 0.24; the unnormalised division is not
    offered. Its ``HybridAuON`` (5 NS steps) is closest to ``gamma=1.5, hybrid=True,
    ns_steps=5, aspect_factor=False`` but is not equal to it: it renormalises the NS
    output before the brake, r = √mean(cosh²(γ X_t/‖X_t‖_F)), where we (and paper §3.2)
    take r = √mean(cosh²(γ X_t)). Five NS steps leave ‖X_t‖_F ≈ √min(m, n), so our r is
    the larger and our step the shorter, by the factor r_later/r_ours: 8 % on a 10×10
    matrix, 5 % on 16×16, 1.4 % on 64×64, 0.6 % on 128×32 (Gaussian momentum; the
    direction is the same; tested against a NumPy transcription of ``HybridAuON``). The
    first code computed in bfloat16; we compute in float32 (or wider) and cast the
    update back to the gradient's dtype.

    ``rms_scaling=False`` drops the cosh brake: u = √(aspect)·G/‖G‖_F, Frobenius-
    normalised Nesterov SGD, the baseline that AuON is ≈ equal to at real sizes
    (r − 1 ≤ sinh²(γ)/(2N), see :func:`cosh_rms`).

    Args:
      beta: momentum β, in [0, 1). Paper: 0.95.
      nesterov: use the Nesterov combination G_t (paper, code default) or buf_t.
      hybrid: Hybrid-AuON: Newton–Schulz step(s) before the cosh brake.
      ns_steps: number k of those steps, a static integer ≥ 0 (``None``: 1 if
        ``hybrid`` else 0). Under ``optax.inject_hyperparams`` list it in
        ``static_args``.
      gamma: scale inside cosh, > 0 (paper 1; later code 1.5).
      rms_scaling: apply the cosh-RMS brake (False: Frobenius-normalised momentum).
      aspect_factor: multiply by √max(1, fan_out/fan_in).
      mu_dtype: dtype of the momentum; ``None`` keeps the params' dtype.

    Returns:
      An ``optax.GradientTransformation`` for a pytree of 2-D leaves (``auon`` routes
      the others to AdamW; a leaf of another rank raises ``ValueError`` here). A zero
      momentum gives a zero update. NaN/Inf in any entry of a matrix's gradient make
      that whole matrix's update NaN (the norm mixes all entries); wrap the optimizer in
      ``optax.apply_if_finite`` to skip such steps.

    Example:
      >>> import gradkit, optax
      >>> opt = optax.chain(gradkit.scale_by_auon(hybrid=True), optax.scale(-0.05))

    References:
      Maity, `AuON: A Linear-time Alternative to Semi-Orthogonal Momentum Updates
      <https://arxiv.org/abs/2509.24320>`_, 2025 (v1; §3.1 cosh-RMS scaling, §3.2
      hybrid; code ``ryyzn9/AuON``).
    """
    _common.check_interval("beta", beta, 0.0, 1.0)
    _common.check_positive("gamma", gamma)
    if ns_steps is None:
        ns_steps = 1 if hybrid else 0
    _common.check_nonnegative_int("ns_steps", ns_steps)
    mu_dtype = _common.canonicalize_dtype(mu_dtype)

    def init_fn(params):
        for path, leaf in jax.tree_util.tree_leaves_with_path(params):
            if jnp.ndim(leaf) != 2:
                raise ValueError(
                    f"`scale_by_auon` takes 2-D (matrix) leaves only; "
                    f"{jax.tree_util.keystr(path)} has shape {jnp.shape(leaf)}. Use "
                    f"`gradkit.auon`, which routes the other leaves to AdamW."
                )
        mu = optax.tree.zeros_like(params, dtype=mu_dtype)
        return ScaleByAuonState(count=jnp.zeros([], jnp.int32), mu=mu)

    def update_fn(updates, state, params=None):
        del params
        _common.check_same_structure(updates, state.mu)
        buf = optax.tree.update_moment(updates, state.mu, beta, 1)
        if nesterov:
            g_hat = jax.tree.map(lambda g, b: (1.0 - beta) * g + beta * b, updates, buf)
        else:
            g_hat = buf

        def leaf(g, direction_input):
            u = _auon_direction(direction_input, gamma, ns_steps, rms_scaling)
            if aspect_factor:
                u = _base.aspect_factor(g.shape) * u
            return u.astype(g.dtype)

        new_updates = jax.tree.map(leaf, updates, g_hat)
        buf = optax.tree.cast(buf, mu_dtype)
        buf = jax.tree.map(lambda b, old: b.astype(old.dtype), buf, state.mu)
        return new_updates, ScaleByAuonState(count=optax.safe_increment(state.count), mu=buf)

    return optax.GradientTransformation(init_fn, update_fn)


def _labels_fn(auon_mask):
    def labels(params):
        if auon_mask is None:
            chosen = jax.tree.map(lambda _: True, params)
        else:
            chosen = auon_mask(params) if callable(auon_mask) else auon_mask
        return jax.tree.map(lambda x, c: "auon" if (jnp.ndim(x) == 2 and c) else "adam",
                            params, chosen)

    return labels


def _adamw_traced_hparams(learning_rate, b1, b2, eps, weight_decay, mu_dtype):
    """``optax.adamw`` whose Python-float b1, b2, eps become weakly typed float32 arrays at
    update time, so that e.g. 1 − b2 rounds exactly as under ``optax.inject_hyperparams``
    (which makes the same arrays) while bfloat16 moments stay bfloat16."""

    def make(cast):
        return optax.adamw(learning_rate, b1=cast(b1), b2=cast(b2), eps=cast(eps),
                           weight_decay=weight_decay, mu_dtype=mu_dtype)

    def init_fn(params):  # no arrays at construction time: cast only inside the update
        return make(lambda x: x).init(params)

    def update_fn(updates, state, params=None):
        return make(_common.weak).update(updates, state, params)

    return optax.GradientTransformation(init_fn, update_fn)


def auon(
    learning_rate: optax.ScalarOrSchedule,
    beta: jax.typing.ArrayLike = 0.95,
    *,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    mask: Any | Callable[[optax.Params], Any] | None = None,
    nesterov: bool = True,
    hybrid: bool = False,
    ns_steps: int | None = None,
    gamma: jax.typing.ArrayLike = 1.0,
    rms_scaling: bool = True,
    aspect_factor: bool = True,
    mu_dtype: Any | None = None,
    adam_b1: jax.typing.ArrayLike = 0.9,
    adam_b2: jax.typing.ArrayLike = 0.999,
    adam_eps: jax.typing.ArrayLike = 1e-8,
    adam_weight_decay: jax.typing.ArrayLike = 0.0,
    adam_learning_rate: optax.ScalarOrSchedule | None = None,
    auon_mask: Any | Callable[[optax.Params], Any] | None = None,
) -> optax.GradientTransformation:
    r"""AuON for the 2-D leaves, AdamW for the rest (``hybrid=True``: Hybrid-AuON).

    Matrix leaves: ``chain(scale_by_auon(...), add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate))``, i.e. W ← W − η(u_t + λW). Other leaves:
    ``optax.adamw(adam_learning_rate or learning_rate, adam_b1, adam_b2, adam_eps,
    weight_decay=adam_weight_decay)``, routed with ``optax.partition`` as
    ``optax.contrib.muon`` does (its Adam uses Nesterov momentum when ``nesterov``;
    ours is plain AdamW like the reference code's ``torch.optim.AdamW``). The paper
    tunes η_AuON = 0.055 on its LM; the reference code gives AdamW 0.1× the AuON rate.

    Args:
      learning_rate: scalar or schedule η for the matrices.
      beta, nesterov, hybrid, ns_steps, gamma, rms_scaling, aspect_factor, mu_dtype: see
        :func:`scale_by_auon`.
      weight_decay: decoupled weight decay λ ≥ 0 of the matrices (× η).
      mask: pytree or callable selecting the matrices that get weight decay.
      adam_b1, adam_b2: AdamW's decays for the non-matrix leaves, each in [0, 1).
      adam_eps: AdamW's ε, ≥ 0.
      adam_weight_decay: AdamW's decoupled weight decay, ≥ 0.
      adam_learning_rate: its learning rate; ``None`` uses ``learning_rate``.
      auon_mask: pytree of bools or callable ``params -> pytree``: which 2-D leaves
        take AuON (``None``: all; the reference code excludes the token embedding).

    Returns:
      An ``optax.GradientTransformation``.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> opt = gradkit.auon(0.05, hybrid=True, adam_learning_rate=3e-3)
      >>> state = opt.init({"kernel": jnp.ones((4, 3)), "bias": jnp.zeros(3)})

    References:
      Maity, `AuON: A Linear-time Alternative to Semi-Orthogonal Momentum Updates
      <https://arxiv.org/abs/2509.24320>`_, 2025 (v1, §3).
    """
    _common.check_learning_rate(learning_rate)
    _common.check_nonnegative("weight_decay", weight_decay)
    _common.check_interval("adam_b1", adam_b1, 0.0, 1.0)
    _common.check_interval("adam_b2", adam_b2, 0.0, 1.0)
    _common.check_nonnegative("adam_eps", adam_eps)
    _common.check_nonnegative("adam_weight_decay", adam_weight_decay)
    if adam_learning_rate is None:
        adam_learning_rate = learning_rate
    else:
        _common.check_learning_rate(adam_learning_rate, "adam_learning_rate")
    matrix = optax.chain(
        scale_by_auon(beta, nesterov=nesterov, hybrid=hybrid, ns_steps=ns_steps,
                      gamma=gamma, rms_scaling=rms_scaling, aspect_factor=aspect_factor,
                      mu_dtype=mu_dtype),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )
    other = _adamw_traced_hparams(adam_learning_rate, adam_b1, adam_b2, adam_eps,
                                  adam_weight_decay, mu_dtype)
    return optax.partition({"auon": matrix, "adam": other}, _labels_fn(auon_mask))

