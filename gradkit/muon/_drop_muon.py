# SPDX-License-Identifier: Apache-2.0
"""Drop-Muon: each step a random start layer s; only layers s..L take a Muon step.

Gruntkowska, Maziane, Qu, Richtárik, *Drop-Muon: Update Less, Converge Faster*, 2025,
arXiv 2510.02239 (no official code). The active layers take exactly the step of
``optax.contrib.scale_by_muon`` (its public transform, applied per layer with a per-layer
step count) for matrices and ``optax.scale_by_adam`` for the other leaves, as
``optax.contrib.muon`` routes them; with s ≡ 0 the method *is* ``optax.contrib.muon``
(tested). The wall-clock gain needs a backward pass that stops at layer s:
:func:`drop_muon_value_and_grad` (``gradkit/muon/_drop_muon_layers.py``) builds it without
recompiling per s.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from optax import contrib as optax_contrib

from gradkit import _common
from gradkit.muon import _base
from gradkit.muon._drop_muon_layers import Layers
from gradkit.muon._drop_muon_layers import drop_muon_layer_indices
from gradkit.muon._drop_muon_layers import num_layers
from gradkit.muon._drop_muon_layers import sample_start_layer


class ScaleByDropMuonState(NamedTuple):
    """State for :func:`scale_by_drop_muon`."""

    count: chex.Array  # int32 scalar, number of updates so far.
    key: chex.Array  # uint32[2], raw key data of `key` (the start layers' PRNG).
    start_layer: chex.Array  # int32 scalar, the start layer s of the last update.
    layer_counts: chex.Array  # int32[L], how many updates each layer has taken.
    mu: optax.Updates  # Momentum (Muon) / first moment (Adam), params' shapes.
    nu: optax.Updates  # Adam's second moment for non-matrix leaves; float32[] else.
    ns_coeffs: chex.Array  # float32[3] or [n, 3], as optax's MuonState.


def drop_muon_next_start_layer(opt_state: Any,
                               start_probs: Sequence[float] | None = None) -> jax.Array:
    """The start layer the next ``update`` samples (pass it to the truncated backward).

    `start_probs` must be the one given to :func:`scale_by_drop_muon`.
    """
    state = _common.find_state(opt_state, ScaleByDropMuonState, "drop_muon_next_start_layer")
    return sample_start_layer(state.key, state.count, state.layer_counts.shape[0],
                              start_probs)


def _muon_leaves(tree: Any, muon_mask: Any) -> Any:
    """Python bools: which leaves take Muon (≥ 2-D and selected by `muon_mask`)."""
    if muon_mask is None:
        chosen = jax.tree.map(lambda _: True, tree)
    else:
        chosen = muon_mask(tree) if callable(muon_mask) else muon_mask
    return jax.tree.map(lambda x, c: bool(jnp.ndim(x) >= 2 and c), tree, chosen)


def scale_by_drop_muon(
    beta: jax.typing.ArrayLike = 0.95,
    *,
    layers: Layers = None,
    start_probs: Sequence[float] | None = None,
    key: Any = 0,
    ns_coeffs: Any = _base.MUON_NS_COEFFS,
    ns_steps: int | None = None,
    eps: jax.typing.ArrayLike = 1e-8,
    nesterov: bool = True,
    adam_b1: jax.typing.ArrayLike = 0.9,
    adam_b2: jax.typing.ArrayLike = 0.999,
    weight_decay: jax.typing.ArrayLike = 0.0,
    weight_decay_mask: Any | Callable[[optax.Params], Any] | None = None,
    muon_mask: Any | Callable[[optax.Params], Any] | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Randomized progressive Muon: only layers s..L take a step (Drop-Muon).

    Each step draws s ∈ {0, …, L−1} (uniformly, or with ``start_probs``) from
    fold_in(key, count), or takes it from the ``start_layer`` extra arg. For every layer
    i (0 = input end):

    .. math::

        i < s:\quad M_i \leftarrow M_i,\ \ u_i = 0 \qquad (\text{weights, momentum and
        step count frozen, bit for bit}),\\
        i \ge s:\quad u_i = \text{optax Muon step of layer } i
        = \sqrt{\max(1, \tfrac{\text{fan\_out}}{\text{fan\_in}})}\,
          \mathrm{NS}_5(\hat M_i) \ (+\, \lambda W_i),

    with M̂_i optax's (bias-corrected, Nesterov) momentum; matrices and conv kernels
    (Flax layout, last axis = output, the other axes flattened as the reduction axis)
    take the Muon step and the other leaves of the layer ``optax.scale_by_adam``
    (``nesterov`` as optax's muon). The bias corrections use each layer's own count of
    steps taken. The paper (Algorithm 1 with the randomized progressive schedule
    S^k = {s^k, …, L}) writes the active step as X_i ← X_i − γ_i (M_i)^♯ with M_i the
    momentum and ♯ the spectral-norm LMO (orthogonalisation); we take Muon's practical
    form exactly as optax implements it, so that s ≡ 0 reproduces
    ``optax.contrib.muon``.

    Weight decay is part of this primitive (not a separate ``add_decayed_weights``)
    because frozen layers must not decay either: λW is added to the *active* matrices
    only (as optax's muon, none on Adam leaves).

    Args:
      beta: Muon's momentum β, in [0, 1) (optax's default 0.95).
      layers: layer assignment, see :func:`drop_muon_layer_indices` (default: one layer
        per top-level key, natural order). Static.
      start_probs: probabilities of s = 0..L−1 (``None``: uniform). Static.
      key: an int or a ``jax.random.key`` the start layers are drawn from; stored in
        the state as raw key data.
      ns_coeffs, ns_steps, eps, nesterov: ``optax.contrib.scale_by_muon``'s
        (``ns_steps=None`` means its default 5; a static int, ``None`` by default so
        that ``optax.inject_hyperparams`` leaves it alone).
      adam_b1, adam_b2: Adam of the non-matrix leaves (its eps is ``eps``).
      weight_decay: decoupled λ ≥ 0 on active matrices (the alias multiplies by η).
      weight_decay_mask: pytree or callable selecting the leaves that decay.
      muon_mask: pytree of bools or callable: which ≥2-D leaves take Muon (``None``:
        all); the others take Adam (e.g. embeddings and the output head).

    Returns:
      An ``optax.GradientTransformationExtraArgs``; ``update(..., start_layer=s)``
      forces s: a Python int selects the active layers at trace time (no control flow;
      one compilation per value of s), an int32 array (may be traced) through one
      ``lax.cond`` per layer (one compilation for every s). ``params`` are needed when
      ``weight_decay > 0``. NaN/Inf follow optax's Muon/Adam in the active layers and
      never touch frozen ones.

    Example:
      >>> import gradkit, optax
      >>> opt = optax.chain(
      ...     gradkit.scale_by_drop_muon(layers=["Conv_0", "Conv_1", "Dense_0"]),
      ...     optax.scale(-0.02))

    References:
      Gruntkowska, Maziane, Qu, Richtárik, `Drop-Muon: Update Less, Converge Faster
      <https://arxiv.org/abs/2510.02239>`_, 2025 (Algorithm 1, randomized progressive
      training).
    """
    _common.check_interval("beta", beta, 0.0, 1.0)
    _common.check_interval("adam_b1", adam_b1, 0.0, 1.0)
    _common.check_interval("adam_b2", adam_b2, 0.0, 1.0)
    _common.check_nonnegative("eps", eps)
    _common.check_nonnegative("weight_decay", weight_decay)
    ns_steps = 5 if ns_steps is None else ns_steps
    _common.check_positive_int("ns_steps", ns_steps)
    if start_probs is not None:
        probs = np.asarray(start_probs, np.float64)
        if probs.ndim != 1 or np.any(probs < 0) or not np.isclose(probs.sum(), 1.0):
            raise ValueError(f"`start_probs` must be a 1-D sequence of non-negative "
                             f"probabilities summing to 1, got {start_probs!r}.")
        start_probs = tuple(float(p) for p in probs)
    if layers is not None and not callable(layers) and isinstance(layers, str):
        raise TypeError("`layers` must be a sequence of top-level key names, not a str.")

    weak = _common.weak  # Python floats round as under optax.inject_hyperparams

    def muon_for(ndim):
        return optax_contrib.scale_by_muon(
            ns_coeffs=ns_coeffs, ns_steps=ns_steps, beta=weak(beta), eps=weak(eps),
            nesterov=nesterov, weight_dimension_numbers={"w": _base.flax_dimension_numbers(ndim)})

    def adam():
        return optax.scale_by_adam(b1=weak(adam_b1), b2=weak(adam_b2), eps=weak(eps),
                                   nesterov=nesterov)

    def resolve(tree):
        indices = drop_muon_layer_indices(tree, layers)
        num = num_layers(indices)
        if num == 0:
            raise ValueError("`layers` assigned no leaf to a layer (need at least one).")
        if start_probs is not None and len(start_probs) != num:
            raise ValueError(f"`start_probs` must have one entry per layer ({num}), "
                             f"got {len(start_probs)}.")
        return indices, num

    def init_fn(params):
        indices, num = resolve(params)
        del indices
        mu = optax.tree.zeros_like(params)
        nu = jax.tree.map(lambda x, is_muon: jnp.zeros([], jnp.float32) if is_muon
                          else jnp.zeros_like(x), params, _muon_leaves(params, muon_mask))
        return ScaleByDropMuonState(
            count=jnp.zeros([], jnp.int32),
            key=_common.key_data(key),
            start_layer=jnp.zeros([], jnp.int32),
            layer_counts=jnp.zeros([num], jnp.int32),
            mu=mu, nu=nu,
            ns_coeffs=muon_for(2).init({}).ns_coeffs,
        )

    def update_fn(updates, state, params=None, *, start_layer=None, **extra_args):
        del extra_args
        _common.check_same_structure(updates, state.mu)
        indices, num = resolve(updates)
        if num != state.layer_counts.shape[0]:
            raise ValueError(f"The params have {num} layers but the state was "
                             f"initialised with {state.layer_counts.shape[0]}.")
        if weight_decay is not None and not (isinstance(weight_decay, (int, float))
                                             and weight_decay == 0) and params is None:
            raise ValueError("`scale_by_drop_muon` with weight_decay > 0 needs `params`.")
        static_s = _common.is_int(start_layer)
        if start_layer is None:
            s = sample_start_layer(state.key, state.count, num, start_probs)
        elif static_s:
            if not 0 <= start_layer < num:
                raise ValueError(f"`start_layer` must be in [0, {num}), got {start_layer}.")
            s = int(start_layer)
        else:
            s = jnp.clip(jnp.asarray(start_layer, jnp.int32), 0, num - 1)
        if weight_decay_mask is None:
            decay_mask = jax.tree.map(lambda _: True, updates)
        elif callable(weight_decay_mask):
            decay_mask = weight_decay_mask(params if params is not None else updates)
        else:
            decay_mask = weight_decay_mask
        decay_mask = jax.tree.map(bool, decay_mask)

        g_leaves, treedef = jax.tree.flatten(updates)
        idx = treedef.flatten_up_to(indices)
        mu_l = treedef.flatten_up_to(state.mu)
        nu_l = treedef.flatten_up_to(state.nu)
        p_l = treedef.flatten_up_to(params) if params is not None else [None] * len(g_leaves)
        dm_l = treedef.flatten_up_to(decay_mask)
        is_muon_l = treedef.flatten_up_to(_muon_leaves(updates, muon_mask))
        actives, frozens = [], []
        for g, layer, m, v, p, dm, is_muon in zip(g_leaves, idx, mu_l, nu_l, p_l, dm_l,
                                                  is_muon_l, strict=True):
            layer_count = (state.layer_counts[layer] if layer >= 0
                           else state.count)

            if is_muon:
                def active(g=g, m=m, v=v, p=p, dm=dm, layer_count=layer_count):
                    inner = muon_for(jnp.ndim(g))
                    u, st = inner.update(
                        {"w": g}, optax_contrib.MuonState(
                            count=layer_count, mu={"w": m}, ns_coeffs=state.ns_coeffs))
                    u = (_base.aspect_factor(g.shape) * u["w"]).astype(g.dtype)
                    if dm and p is not None:
                        u = (u + weak(weight_decay) * p).astype(g.dtype)
                    return u, st.mu["w"].astype(m.dtype), v
            else:
                def active(g=g, m=m, v=v, layer_count=layer_count):
                    u, st = adam().update({"w": g}, optax.ScaleByAdamState(
                        count=layer_count, mu={"w": m}, nu={"w": v}))
                    return (u["w"].astype(g.dtype), st.mu["w"].astype(m.dtype),
                            st.nu["w"].astype(v.dtype))

            def frozen(g=g, m=m, v=v):
                return jnp.zeros_like(g), m, v

            actives.append(active)
            frozens.append(frozen)

        # One lax.cond per layer (not per leaf): at run time a frozen layer costs nothing
        # but copies, and XLA keeps each layer's update in one fused region.
        results = [None] * len(g_leaves)
        for layer in sorted(set(idx)):
            members = [i for i, l_ in enumerate(idx) if l_ == layer]

            def run_active(members=members):
                return [actives[i]() for i in members]

            def run_frozen(members=members):
                return [frozens[i]() for i in members]

            if layer < 0 or (static_s and layer >= s):
                outs = run_active()
            elif static_s:
                outs = run_frozen()
            else:
                outs = jax.lax.cond(layer >= s, run_active, run_frozen)
            for i, out in zip(members, outs, strict=True):
                results[i] = out
        out_u = [r[0] for r in results]
        out_mu = [r[1] for r in results]
        out_nu = [r[2] for r in results]
        layer_counts = state.layer_counts + (jnp.arange(num) >= s).astype(jnp.int32)
        new_state = ScaleByDropMuonState(
            count=optax.safe_increment(state.count), key=state.key,
            start_layer=jnp.asarray(s, jnp.int32), layer_counts=layer_counts,
            mu=treedef.unflatten(out_mu), nu=treedef.unflatten(out_nu),
            ns_coeffs=state.ns_coeffs)
        return treedef.unflatten(out_u), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def drop_muon(
    learning_rate: optax.ScalarOrSchedule,
    beta: jax.typing.ArrayLike = 0.95,
    *,
    layers: Layers = None,
    start_probs: Sequence[float] | None = None,
    key: Any = 0,
    ns_coeffs: Any = _base.MUON_NS_COEFFS,
    ns_steps: int | None = None,
    eps: jax.typing.ArrayLike = 1e-8,
    nesterov: bool = True,
    adam_b1: jax.typing.ArrayLike = 0.9,
    adam_b2: jax.typing.ArrayLike = 0.999,
    weight_decay: jax.typing.ArrayLike = 0.0,
    mask: Any | Callable[[optax.Params], Any] | None = None,
    muon_mask: Any | Callable[[optax.Params], Any] | None = None,
    adam_learning_rate: optax.ScalarOrSchedule | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Drop-Muon: ``chain(scale_by_drop_muon(...), scale_by_learning_rate(η))``.

    With ``start_layer=0`` at every step (or a single layer) this equals
    ``optax.contrib.muon(η, ..., weight_decay=λ)`` (tested). Weight decay lives in the
    primitive so that frozen layers keep their weights bit for bit. For the paper's
    wall-clock gain, compute the gradients with :func:`drop_muon_value_and_grad` at
    the start layer :func:`drop_muon_next_start_layer` returns.

    Args:
      learning_rate: scalar or schedule η (shared by Muon and Adam leaves).
      beta, layers, start_probs, key, ns_coeffs, ns_steps, eps, nesterov, adam_b1,
        adam_b2, weight_decay: see :func:`scale_by_drop_muon`.
      mask: pytree or callable selecting the matrices that get weight decay.
      muon_mask: see :func:`scale_by_drop_muon`.
      adam_learning_rate: learning rate (or schedule) of the Adam leaves; ``None``:
        ``learning_rate`` (then the alias is a plain chain, as ``optax.contrib.muon``).

    Returns:
      An ``optax.GradientTransformationExtraArgs`` (extra arg ``start_layer``).

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> opt = gradkit.drop_muon(0.02)
      >>> state = opt.init({"Dense_0": {"kernel": jnp.ones((4, 3))},
      ...                   "Dense_1": {"kernel": jnp.ones((3, 2))}})

    References:
      Gruntkowska, Maziane, Qu, Richtárik, `Drop-Muon: Update Less, Converge Faster
      <https://arxiv.org/abs/2510.02239>`_, 2025 (Algorithm 1).
    """
    _common.check_learning_rate(learning_rate)
    core = scale_by_drop_muon(beta, layers=layers, start_probs=start_probs, key=key,
                              ns_coeffs=ns_coeffs, ns_steps=ns_steps, eps=eps, nesterov=nesterov,
                              adam_b1=adam_b1, adam_b2=adam_b2, weight_decay=weight_decay,
                              weight_decay_mask=mask, muon_mask=muon_mask)
    if adam_learning_rate is None:
        return optax.chain(core, optax.scale_by_learning_rate(learning_rate))
    _common.check_learning_rate(adam_learning_rate, "adam_learning_rate")

    def labels(params):
        return jax.tree.map(lambda m: "muon" if m else "adam", _muon_leaves(params, muon_mask))

    return optax.chain(core, optax.partition(
        {"muon": optax.scale_by_learning_rate(learning_rate),
         "adam": optax.scale_by_learning_rate(adam_learning_rate)}, labels))
