# SPDX-License-Identifier: Apache-2.0
"""Drop-Muon's layers: which leaf belongs to which layer, the start layer, the truncated backward.

Gruntkowska, Maziane, Qu, Richtárik, *Drop-Muon: Update Less, Converge Faster*, 2025,
arXiv 2510.02239 (Algorithm 1, randomized progressive training: each step a start layer
s, layers s..L active). The optimizer itself is ``gradkit/muon/_drop_muon.py``; this
module holds what both it and the gradient computation need: the layer index of every
leaf, the start layer drawn from the key in the optimizer state, and
:func:`drop_muon_value_and_grad`, the backward pass that stops at layer s (the source of
the paper's wall-clock gain).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from gradkit import _common

# `layers`: None (top-level keys of the params dict, natural order), the top-level key
# names from the input end to the output end, or a callable params -> pytree of layer
# indices (int; -1 for leaves that are always updated).
Layers = None | Sequence[str] | Callable[[Any], Any]


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(name))]


def _top_key(path) -> str:
    entry = path[0]
    for attr in ("key", "name", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def drop_muon_layer_indices(params: Any, layers: Layers = None) -> Any:
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


def num_layers(indices: Any) -> int:
    """L: one more than the largest layer index (−1 entries do not count)."""
    leaves = jax.tree.leaves(indices)
    return max([i for i in leaves if i >= 0], default=-1) + 1


def sample_start_layer(key_data: jax.Array, count: jax.Array, num_layers: int,
                       start_probs: Sequence[float] | None = None) -> jax.Array:
    """The start layer s of step `count` (int32): fold_in(key, count), uniform or `start_probs`.

    Randomized progressive training (paper Algorithm 1): the active layers are s..L−1.
    """
    key = jax.random.fold_in(jax.random.wrap_key_data(key_data), count)
    if start_probs is None:
        return jax.random.randint(key, (), 0, num_layers, dtype=jnp.int32)
    return jax.random.choice(key, num_layers, p=jnp.asarray(start_probs, jnp.float32)
                             ).astype(jnp.int32)


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
        indices = drop_muon_layer_indices(params, layers)
        num = num_layers(indices)
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

        if _common.is_int(start_layer):
            if not 0 <= start_layer < num:
                raise ValueError(f"`start_layer` must be in [0, {num}), got {start_layer}.")
            return branch(int(start_layer))(leaves)
        s = jnp.clip(jnp.asarray(start_layer, jnp.int32), 0, num - 1)
        return jax.lax.switch(s, [branch(k) for k in range(num)], leaves)

    return vg
