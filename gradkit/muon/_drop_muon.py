"""Drop-Muon: each step a random start layer s; only layers s..L take a Muon step.

Gruntkowska, Maziane, Qu, Richtárik, *Drop-Muon: Update Less, Converge Faster*, 2025,
arXiv 2510.02239 (no official code). The active layers take exactly the step of
``optax.contrib.scale_by_muon`` (its public transform, applied per layer with a per-layer
step count) for matrices and ``optax.scale_by_adam`` for the other leaves, as
``optax.contrib.muon`` routes them; with s ≡ 0 the method *is* ``optax.contrib.muon``
(tested). The wall-clock gain needs a backward pass that stops at layer s:
:func:`drop_muon_value_and_grad` builds it without recompiling per s.
"""

from __future__ import annotations

import math
import re
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

from gradkit import _control
from gradkit import _validation

# `layers`: None (top-level keys of the params dict, natural order), the top-level key
# names from the input end to the output end, or a callable params -> pytree of layer
# indices (int; -1 for leaves that are always updated).
Layers = None | Sequence[str] | Callable[[Any], Any]

ALWAYS_ACTIVE = -1


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(name))]


def _top_key(path) -> str:
    entry = path[0]
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def layer_indices(params: Any, layers: Layers = None) -> Any:
    """The layer index of every leaf of `params` (a pytree of Python ints, −1 = always on).

    Args:
      params: the parameter (or gradient) pytree; only its paths are used.
      layers: ``None``: one layer per top-level key, in natural order (``Conv_0``,
        ``Conv_1``, ..., ``Conv_10``, ``Dense_0``: note that this sorts names, so pass
        the order explicitly for anything whose names do not sort input → output);
        a sequence of top-level key names from the input end to the output end (every
        top-level key must appear); or a callable ``params -> pytree of int``
        (layer indices 0..L−1, or −1 for leaves updated at every step).

    Returns:
      A pytree of ints with the structure of `params`.
    """
    if callable(layers):
        tree = layers(params)
        got, want = jax.tree.structure(tree), jax.tree.structure(params)
        if got != want:
            raise ValueError(f"`layers` callable must return a pytree structured like the "
                             f"params.\n  got: {got}\n  expected: {want}")
        return jax.tree.map(int, tree)
    paths, treedef = jax.tree_util.tree_flatten_with_path(params)
    tops = [_top_key(p) if p else "" for p, _ in paths]
    if layers is None:
        order = sorted(set(tops), key=_natural_key)
    else:
        if isinstance(layers, str):
            raise TypeError("`layers` must be a sequence of top-level key names, not a str.")
        order = [str(name) for name in layers]
        missing = sorted(set(tops) - set(order))
        if missing:
            raise ValueError(f"`layers` must name every top-level key of the params; "
                             f"missing {missing}, given {order}.")
    index = {name: i for i, name in enumerate(order)}
    return jax.tree.unflatten(treedef, [index[t] for t in tops])


def _num_layers(indices: Any) -> int:
    leaves = jax.tree.leaves(indices)
    return max([i for i in leaves if i >= 0], default=-1) + 1


class ScaleByDropMuonState(NamedTuple):
    """State for :func:`scale_by_drop_muon`."""

    count: chex.Array  # int32 scalar, number of updates so far.
    key: chex.Array  # uint32[2], raw threefry key data of `seed`.
    start_layer: chex.Array  # int32 scalar, the start layer s of the last update.
    layer_counts: chex.Array  # int32[L], how many updates each layer has taken.
    mu: optax.Updates  # Momentum (Muon) / first moment (Adam), params' shapes.
    nu: optax.Updates  # Adam's second moment for non-matrix leaves; float32[] else.
    ns_coeffs: chex.Array  # float32[3] or [n, 3], as optax's MuonState.


def _check_layers_structure(updates, indices):
    if jax.tree.structure(updates) != jax.tree.structure(indices):
        raise ValueError("`updates` must have the same pytree structure as the params.")


def sample_start_layer(key_data: jax.Array, count: jax.Array, num_layers: int,
                       start_probs: Sequence[float] | None = None) -> jax.Array:
    """The start layer s of step `count` (int32): fold_in(key, count), uniform or `start_probs`."""
    key = jax.random.fold_in(jax.random.wrap_key_data(key_data), count)
    if start_probs is None:
        return jax.random.randint(key, (), 0, num_layers, dtype=jnp.int32)
    return jax.random.choice(key, num_layers, p=jnp.asarray(start_probs, jnp.float32)
                             ).astype(jnp.int32)


def find_drop_muon_state(opt_state: Any) -> ScaleByDropMuonState:
    """Finds the (single) :class:`ScaleByDropMuonState` inside a (chained) optax state."""
    found = [s for s in jax.tree.leaves(
        opt_state, is_leaf=lambda x: isinstance(x, ScaleByDropMuonState))
        if isinstance(s, ScaleByDropMuonState)]
    if len(found) != 1:
        raise ValueError(f"Expected one ScaleByDropMuonState in opt_state, found {len(found)}.")
    return found[0]


def drop_muon_next_start_layer(opt_state: Any,
                               start_probs: Sequence[float] | None = None) -> jax.Array:
    """The start layer the next ``update`` samples (pass it to the truncated backward).

    `start_probs` must be the one given to :func:`scale_by_drop_muon`.
    """
    state = find_drop_muon_state(opt_state)
    return sample_start_layer(state.key, state.count, state.layer_counts.shape[0],
                              start_probs)


def _is_static_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _muon_dims(ndim: int) -> optax_contrib.MuonDimensionNumbers:
    """Flax layout: the last axis is the output, all others the reduction (conv kernels)."""
    return optax_contrib.MuonDimensionNumbers(reduction_axis=tuple(range(ndim - 1)),
                                              output_axis=ndim - 1)


def _muon_leaves(tree: Any, muon_mask: Any) -> Any:
    """Python bools: which leaves take Muon (≥ 2-D and selected by `muon_mask`)."""
    if muon_mask is None:
        chosen = jax.tree.map(lambda _: True, tree)
    else:
        chosen = muon_mask(tree) if callable(muon_mask) else muon_mask
    return jax.tree.map(lambda x, c: bool(jnp.ndim(x) >= 2 and c), tree, chosen)


def _width_factor(shape) -> float:
    """√max(1, fan_out/fan_in), as ``optax.contrib.muon``'s shape scaling."""
    fan_in, fan_out = math.prod(shape[:-1]), shape[-1]
    return math.sqrt(max(1.0, fan_out / fan_in))


def scale_by_drop_muon(
    layers: Layers = None,
    *,
    start_probs: Sequence[float] | None = None,
    seed: int = 0,
    ns_coeffs: Any = (3.4445, -4.7750, 2.0315),
    ns_steps: int | None = None,
    beta: jax.typing.ArrayLike = 0.95,
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
      layers: layer assignment, see :func:`layer_indices` (default: one layer per
        top-level key, natural order). Static.
      start_probs: probabilities of s = 0..L−1 (``None``: uniform). Static.
      seed: seed of the key the start layers are drawn from.
      ns_coeffs, ns_steps, beta, eps, nesterov: ``optax.contrib.scale_by_muon``'s
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
      >>> opt = optax.chain(gradkit.scale_by_drop_muon(["Conv_0", "Conv_1", "Dense_0"]),
      ...                   optax.scale(-0.02))

    References:
      Gruntkowska, Maziane, Qu, Richtárik, `Drop-Muon: Update Less, Converge Faster
      <https://arxiv.org/abs/2510.02239>`_, 2025 (Algorithm 1, randomized progressive
      training).
    """
    _validation.check_interval("beta", beta, 0.0, 1.0)
    _validation.check_interval("adam_b1", adam_b1, 0.0, 1.0)
    _validation.check_interval("adam_b2", adam_b2, 0.0, 1.0)
    _validation.check_nonnegative("eps", eps)
    _validation.check_nonnegative("weight_decay", weight_decay)
    ns_steps = 5 if ns_steps is None else ns_steps
    _validation.check_positive_int("ns_steps", ns_steps)
    if start_probs is not None:
        probs = np.asarray(start_probs, np.float64)
        if probs.ndim != 1 or np.any(probs < 0) or not np.isclose(probs.sum(), 1.0):
            raise ValueError(f"`start_probs` must be a 1-D sequence of non-negative "
                             f"probabilities summing to 1, got {start_probs!r}.")
        start_probs = tuple(float(p) for p in probs)
    if layers is not None and not callable(layers) and isinstance(layers, str):
        raise TypeError("`layers` must be a sequence of top-level key names, not a str.")

    # Python-float hyperparameters become weakly typed float32 arrays inside the update,
    # so that e.g. 1 − β rounds exactly as under optax.inject_hyperparams (which makes
    # the same arrays) while bfloat16 moments stay bfloat16.
    def weak(x):
        return jnp.asarray(x) if isinstance(x, float) else x

    def muon_for(ndim):
        return optax_contrib.scale_by_muon(
            ns_coeffs=ns_coeffs, ns_steps=ns_steps, beta=weak(beta), eps=weak(eps),
            nesterov=nesterov, weight_dimension_numbers={"w": _muon_dims(ndim)})

    def adam():
        return optax.scale_by_adam(b1=weak(adam_b1), b2=weak(adam_b2), eps=weak(eps),
                                   nesterov=nesterov)

    def resolve(tree):
        indices = layer_indices(tree, layers)
        num = _num_layers(indices)
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
            key=jax.random.key_data(jax.random.key(seed)),
            start_layer=jnp.zeros([], jnp.int32),
            layer_counts=jnp.zeros([num], jnp.int32),
            mu=mu, nu=nu,
            ns_coeffs=muon_for(2).init({}).ns_coeffs,
        )

    def update_fn(updates, state, params=None, *, start_layer=None, **extra_args):
        del extra_args
        _validation.check_same_structure(updates, state.mu)
        indices, num = resolve(updates)
        if num != state.layer_counts.shape[0]:
            raise ValueError(f"The params have {num} layers but the state was "
                             f"initialised with {state.layer_counts.shape[0]}.")
        if weight_decay is not None and not (isinstance(weight_decay, (int, float))
                                             and weight_decay == 0) and params is None:
            raise ValueError("`scale_by_drop_muon` with weight_decay > 0 needs `params`.")
        static_s = _is_static_int(start_layer)
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
                    u = (_width_factor(g.shape) * u["w"]).astype(g.dtype)
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
                outs = _control.cond(layer >= s, run_active, run_frozen)
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
    layers: Layers = None,
    *,
    start_probs: Sequence[float] | None = None,
    seed: int = 0,
    ns_coeffs: Any = (3.4445, -4.7750, 2.0315),
    ns_steps: int | None = None,
    beta: jax.typing.ArrayLike = 0.95,
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
      layers, start_probs, seed, ns_coeffs, ns_steps, beta, eps, nesterov, adam_b1,
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
    _validation.check_learning_rate(learning_rate)
    core = scale_by_drop_muon(layers, start_probs=start_probs, seed=seed, ns_coeffs=ns_coeffs,
                              ns_steps=ns_steps, beta=beta, eps=eps, nesterov=nesterov,
                              adam_b1=adam_b1, adam_b2=adam_b2, weight_decay=weight_decay,
                              weight_decay_mask=mask, muon_mask=muon_mask)
    if adam_learning_rate is None:
        return optax.chain(core, optax.scale_by_learning_rate(learning_rate))
    _validation.check_learning_rate(adam_learning_rate, "adam_learning_rate")

    def labels(params):
        return jax.tree.map(lambda m: "muon" if m else "adam", _muon_leaves(params, muon_mask))

    return optax.chain(core, optax.partition(
        {"muon": optax.scale_by_learning_rate(learning_rate),
         "adam": optax.scale_by_learning_rate(adam_learning_rate)}, labels))


def drop_muon_value_and_grad(
    fun: Callable[..., Any],
    layers: Layers = None,
    *,
    has_aux: bool = False,
) -> Callable[..., tuple[Any, Any]]:
    r"""``jax.value_and_grad(fun)`` whose backward pass stops at a (traced) start layer.

    Returns ``vg(params, start_layer, *args, **kwargs) -> (value, grads)``: ``grads``
    holds ∂fun/∂W for the leaves of layers ≥ ``start_layer`` (and those with index −1)
    and zeros for the earlier layers, whose gradients are never computed: inside a
    ``jax.lax.switch`` over the L possible start layers, branch s differentiates
    ``fun`` only with respect to layers s..L and closes over the earlier layers as
    constants, so the backward pass neither forms their weight gradients nor
    back-propagates activations into them. All L branches are compiled once into one
    program (jit it once; the start layer is a runtime int32, no recompilation per s);
    at run time only branch s executes. The forward pass is always complete.

    With a Python int ``start_layer`` the branch is built directly (no ``lax.switch``).
    On XLA:CPU this is the fast pattern: convolutions (and large matmuls) inside a
    conditional's branch are compiled far less efficiently than in the entry
    computation (measured in ``docs/muon.md``: a CNN step 30× slower), so on CPU jit one
    step function per start layer (``static_argnums``; L compilations, cached, none per
    step) and dispatch on the host with ``int(drop_muon_next_start_layer(state))``.

    Args:
      fun: ``fun(params, *args, **kwargs)`` → scalar (or ``(scalar, aux)``).
      layers: layer assignment, as given to :func:`scale_by_drop_muon`.
      has_aux: as in ``jax.value_and_grad``.

    Returns:
      The function ``vg`` described above.

    Example:
      >>> import gradkit, jax
      >>> vg = jax.jit(gradkit.drop_muon_value_and_grad(loss_fn))  # doctest: +SKIP
      >>> s = gradkit.drop_muon_next_start_layer(opt_state)  # doctest: +SKIP
      >>> loss, grads = vg(params, s, batch)  # doctest: +SKIP
      >>> updates, opt_state = opt.update(grads, opt_state, params,
      ...                                 start_layer=s)  # doctest: +SKIP

    References:
      Gruntkowska, Maziane, Qu, Richtárik, `Drop-Muon: Update Less, Converge Faster
      <https://arxiv.org/abs/2510.02239>`_, 2025 (§ cost model: the backward pass of
      randomized progressive training stops at layer s).
    """

    def vg(params, start_layer, *args, **kwargs):
        indices = layer_indices(params, layers)
        num = _num_layers(indices)
        leaves, treedef = jax.tree.flatten(params)
        idx = treedef.flatten_up_to(indices)

        def branch(s):
            train = [i for i, layer in enumerate(idx) if layer < 0 or layer >= s]

            def run(leaves_all):
                def partial_fun(train_leaves):
                    full = list(leaves_all)
                    for i, x in zip(train, train_leaves, strict=True):
                        full[i] = x
                    return fun(jax.tree.unflatten(treedef, full), *args, **kwargs)

                value, g_train = jax.value_and_grad(partial_fun, has_aux=has_aux)(
                    [leaves_all[i] for i in train])
                grads = [jnp.zeros_like(x) for x in leaves_all]
                for i, g in zip(train, g_train, strict=True):
                    grads[i] = g
                return value, jax.tree.unflatten(treedef, grads)

            return run

        if _is_static_int(start_layer):
            if not 0 <= start_layer < num:
                raise ValueError(f"`start_layer` must be in [0, {num}), got {start_layer}.")
            return branch(int(start_layer))(leaves)
        s = jnp.clip(jnp.asarray(start_layer, jnp.int32), 0, num - 1)
        return jax.lax.switch(s, [branch(k) for k in range(num)], leaves)

    return vg
