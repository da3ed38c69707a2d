# SPDX-License-Identifier: Apache-2.0
"""8-bit block-wise optimizer state for any optax transformation, and 8-bit AdamW.

Dettmers et al., `8-bit Optimizers via Block-wise Quantization
<https://arxiv.org/abs/2110.02861>`_, ICLR 2022; reference implementation bitsandbytes
(MIT), ``bitsandbytes/optim/optimizer.py`` (``Optimizer8bit``, ``min_8bit_size``) and its
blockwise CUDA kernels. The paper fuses dequantize → update → quantize into one kernel per
optimizer; here one wrapper does the same around any optax transformation.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Collection
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from gradkit import _common
from gradkit.memory import _quantization

# A state path (`jax.tree_util.KeyPath`) → bool.
PathPredicate = Callable[[tuple[Any, ...]], bool]

DEFAULT_MIN_8BIT_SIZE = 4096


class Quantized8bit(NamedTuple):
    """One block-wise 8-bit state tensor (it replaces a float leaf of the inner state)."""

    codes: jax.Array  # uint8[num_blocks, block_size]; the last block zero-padded
    absmax: jax.Array  # float32[num_blocks]; per-block max |x|


class With8bitState(NamedTuple):
    """State of :func:`with_8bit_state`."""

    # The inner transformation's state with every quantized leaf replaced by a
    # `Quantized8bit` (uint8 codes + float32 absmax); other leaves unchanged.
    inner_state: Any


def _as_predicate(value: PathPredicate | Collection[str] | None, what: str) -> PathPredicate:
    if value is None:
        return lambda path: False
    if callable(value):
        return value
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise TypeError(
            f"`{what}` must be a callable (state path → bool) or a collection of state "
            f"names such as ('nu',), got {value!r}."
        )
    names = frozenset(value)
    return lambda path: bool(_common.path_names(path) & names)


def _is_quantized(x) -> bool:
    return isinstance(x, Quantized8bit)


def with_8bit_state(
    inner: optax.GradientTransformation,
    *,
    block_size: int = _quantization.DEFAULT_BLOCK_SIZE,
    min_8bit_size: int = DEFAULT_MIN_8BIT_SIZE,
    unsigned: PathPredicate | Collection[str] = ("nu",),
    keep_32bit: PathPredicate | Collection[str] | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""Stores ``inner``'s floating-point state in 8 bits (block-wise) between steps.

    Every floating-point leaf ``s`` of ``inner``'s state with at least ``min_8bit_size``
    elements is kept as block-wise dynamic 8-bit codes (:func:`quantize_blockwise`:
    ``uint8`` per element, one ``float32`` absmax per ``block_size`` elements). Each
    update

    .. math::

       s_{t-1} = \mathrm{code}[q_{t-1}]\cdot N_{t-1}, \quad
       (u_t, s_t) = \mathrm{inner.update}(g_t, s_{t-1}), \quad
       (q_t, N_t) = \mathrm{quantize}(s_t),

    i.e. dequantize to the leaf's dtype, run the ordinary inner update (the update
    ``u_t`` uses the un-quantized ``s_t``, as the paper's fused kernels do), re-quantize
    with fresh per-block maxima. Smaller tensors, integer leaves (counts) and PRNG keys
    stay as they are, as do leaves selected by ``keep_32bit`` (e.g. the embedding's
    moments, see the stable-embedding recipe in ``docs/memory.md``). Leaves selected by
    ``unsigned`` (default: any leaf under a state field or key named ``nu``, Adam's
    second moment) use the unsigned dynamic map, all others the signed one.

    State memory: ``1 + 4/block_size`` bytes per element of each quantized leaf (plus
    the zero padding of its last block) instead of 4 (float32).

    The state is a plain pytree (``With8bitState`` of the inner state with
    ``Quantized8bit(codes, absmax)`` nodes): it checkpoints with orbax and works under
    jit/vmap/pmap. ``block_size`` is read back from the state's shapes in ``update``, so
    ``optax.inject_hyperparams`` around a factory that calls this wrapper works without
    ``static_args``. In ``update`` the inner state's dtypes are recovered with
    ``jax.eval_shape(inner.init, params)`` (``updates`` when ``params`` is None).
    Non-finite state values: a NaN/Inf in a block makes that whole block non-finite
    after the round trip (other blocks are unaffected).

    Args:
      inner: any optax transformation (chains, ``inject_hyperparams`` included).
      block_size: elements per quantization block (paper: 2048; bitsandbytes now 256).
      min_8bit_size: tensors with fewer elements stay in their own dtype (paper: 4096).
      unsigned: state leaves that use the unsigned map: a predicate on the leaf's
        state path (``jax.tree_util.KeyPath``) or a collection of names that must occur
        in the path (NamedTuple field names or dict keys). Only for non-negative state
        (negative values would be quantized to 0).
      keep_32bit: state leaves never quantized: a path predicate or names, e.g.
        ``lambda path: "tok_embed" in jax.tree_util.keystr(path)``.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` (extra args are passed to ``inner``).

    Example:
      >>> opt = gradkit.with_8bit_state(gradkit.lion(1e-4))
      >>> opt = gradkit.with_8bit_state(optax.adamw(1e-3), keep_32bit=("tok_embed",))

    References:
      Dettmers et al., `8-bit Optimizers via Block-wise Quantization
      <https://arxiv.org/abs/2110.02861>`_, 2022 (§2 and Figure 1: update in 32 bits, then
      block-wise dynamic quantization; the 4096-element threshold is bitsandbytes'
      ``min_8bit_size``).
    """
    if not isinstance(block_size, jax.core.Tracer):
        _common.static_int("block_size", block_size, low=1)
    if not isinstance(min_8bit_size, jax.core.Tracer):
        _common.static_int("min_8bit_size", min_8bit_size, low=0)
    is_unsigned = _as_predicate(unsigned, "unsigned")
    keep = _as_predicate(keep_32bit, "keep_32bit")
    inner = optax.with_extra_args_support(inner)

    def quantize_leaf(path, leaf, block):
        codes, absmax = _quantization.quantize_dynamic_to_blocks(
            leaf, not is_unsigned(path), block)
        return Quantized8bit(codes=codes, absmax=absmax)

    def init_fn(params):
        block = _common.static_int("block_size", block_size, low=1)
        min_size = _common.static_int("min_8bit_size", min_8bit_size, low=0)
        state = inner.init(params)

        def convert(path, leaf):
            leaf_arr = jnp.asarray(leaf) if not hasattr(leaf, "dtype") else leaf
            if (jnp.issubdtype(leaf_arr.dtype, jnp.floating) and leaf_arr.size >= min_size
                    and leaf_arr.size > 0 and not keep(path)):
                return quantize_leaf(path, leaf_arr, block)
            return leaf

        return With8bitState(inner_state=jax.tree_util.tree_map_with_path(convert, state))

    def update_fn(updates, state, params=None, **extra_args):
        template = jax.eval_shape(inner.init, params if params is not None else updates)
        paths_and_specs, inner_def = jax.tree_util.tree_flatten_with_path(template)
        stored, stored_def = jax.tree.flatten(state.inner_state, is_leaf=_is_quantized)
        if len(stored) != len(paths_and_specs):
            raise ValueError(
                "The state does not match `inner.init(params)`: it has "
                f"{len(stored)} leaves, the inner transformation's state "
                f"{len(paths_and_specs)}. Pass the params (or updates) the state was "
                "initialised with.")
        leaves = []
        for leaf, (path, spec) in zip(stored, paths_and_specs, strict=True):
            if _is_quantized(leaf):
                code = _quantization.dynamic_quantization_map(signed=not is_unsigned(path))
                x = _quantization.dequantize_blocks(leaf.codes, leaf.absmax, code)
                leaf = jnp.ravel(x)[: spec.size].reshape(spec.shape).astype(spec.dtype)
            leaves.append(leaf)
        inner_state = jax.tree.unflatten(inner_def, leaves)
        new_updates, new_inner = inner.update(updates, inner_state, params, **extra_args)
        new_leaves = inner_def.flatten_up_to(new_inner)
        out = []
        for old, new, (path, _) in zip(stored, new_leaves, paths_and_specs, strict=True):
            if _is_quantized(old):
                new = quantize_leaf(path, new, old.codes.shape[-1])
            out.append(new)
        return new_updates, With8bitState(inner_state=jax.tree.unflatten(stored_def, out))

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _scale_by_adam_f32(b1, b2, eps) -> optax.GradientTransformation:
    """``optax.scale_by_adam`` with its hyperparameters as float32 arrays in ``update``.

    The same float32 arithmetic whether they are Python numbers or arrays injected by
    ``optax.inject_hyperparams`` (with Python numbers optax computes ``1 − β`` in
    float64 first): a one-ulp difference in a moment can move it to the neighbouring
    8-bit code, so both paths must agree bit for bit.
    """

    def init_fn(params):
        return optax.scale_by_adam(b1=b1, b2=b2, eps=eps).init(params)

    def update_fn(updates, state, params=None):
        b1_, b2_, eps_ = (jnp.asarray(x, jnp.float32) for x in (b1, b2, eps))
        return optax.scale_by_adam(b1=b1_, b2=b2_, eps=eps_).update(updates, state, params)

    return optax.GradientTransformation(init_fn, update_fn)


def adamw_8bit(
    learning_rate: optax.ScalarOrSchedule,
    b1: jax.typing.ArrayLike = 0.9,
    b2: jax.typing.ArrayLike = 0.999,
    *,
    eps: jax.typing.ArrayLike = 1e-8,
    weight_decay: jax.typing.ArrayLike = 1e-4,
    mask: Any = None,
    block_size: int = _quantization.DEFAULT_BLOCK_SIZE,
    min_8bit_size: int = DEFAULT_MIN_8BIT_SIZE,
    keep_32bit: PathPredicate | Collection[str] | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""AdamW with block-wise dynamic 8-bit moments (8-bit Adam of Dettmers et al.).

    Adam's moments ``m`` (signed dynamic map) and ``v`` (unsigned dynamic map) are
    stored as 8-bit block-wise codes between steps (:func:`with_8bit_state` around
    ``optax.scale_by_adam``); each step

    .. math::

       m_t = β_1 m_{t-1} + (1-β_1) g_t,\quad v_t = β_2 v_{t-1} + (1-β_2) g_t^2,\\
       θ_t = θ_{t-1} - η\,\Big(\frac{m_t/(1-β_1^t)}{\sqrt{v_t/(1-β_2^t)} + ε}
             + λ θ_{t-1}\Big),

    with ``m_{t-1}, v_{t-1}`` dequantized from the stored codes and ``m_t, v_t``
    re-quantized with fresh block maxima. Tensors with fewer than ``min_8bit_size``
    elements keep float32 moments. State: about ``2 + 8/block_size`` bytes per
    parameter (2.004 at the paper's block size 2048) instead of optax.adamw's 8.

    ``optax.chain(with_8bit_state(optax.scale_by_adam(b1, b2, eps)),
    optax.add_decayed_weights(weight_decay, mask), optax.scale_by_learning_rate(lr))``:
    numerically ``optax.adamw`` up to the quantization of the moments.

    Args:
      learning_rate: η ≥ 0, a number or a schedule.
      b1, b2: moment decay rates in [0, 1).
      eps: ε ≥ 0 added to ``√v̂``.
      weight_decay: λ ≥ 0, decoupled (multiplied by η as in optax.adamw).
      mask: which params get weight decay (as ``optax.adamw``).
      block_size: elements per quantization block (paper 2048; bitsandbytes' 8-bit
        optimizers now use 256).
      min_8bit_size: smaller tensors keep 32-bit moments (paper/bitsandbytes 4096).
      keep_32bit: state paths kept in 32 bits (e.g. the embedding, stable-embedding
        recipe), see :func:`with_8bit_state`. With ``optax.inject_hyperparams`` pass
        ``static_args=("keep_32bit",)`` when it is a callable.

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    Example:
      >>> opt = gradkit.adamw_8bit(learning_rate=1e-3)
      >>> state = opt.init(params)

    References:
      Dettmers et al., `8-bit Optimizers via Block-wise Quantization
      <https://arxiv.org/abs/2110.02861>`_, 2022 (§2, 8-bit Adam; bitsandbytes
      ``bnb.optim.AdamW8bit``). Loshchilov & Hutter, `Decoupled Weight Decay
      Regularization <https://arxiv.org/abs/1711.05101>`_, 2019.
    """
    _common.check_learning_rate(learning_rate)
    _common.check_interval("b1", b1, 0.0, 1.0)
    _common.check_interval("b2", b2, 0.0, 1.0)
    _common.check_nonnegative("eps", eps)
    _common.check_nonnegative("weight_decay", weight_decay)
    return optax.chain(
        with_8bit_state(_scale_by_adam_f32(b1, b2, eps), block_size=block_size,
                        min_8bit_size=min_8bit_size, keep_32bit=keep_32bit),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )
