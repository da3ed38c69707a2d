# SPDX-License-Identifier: Apache-2.0
"""Dynamic (tree) quantization maps and block-wise 8-bit quantization.

The quantization primitives of Dettmers et al., `8-bit Optimizers via Block-wise
Quantization <https://arxiv.org/abs/2110.02861>`_, ICLR 2022 (§1.2-1.3, §2.1-2.2),
following the construction in bitsandbytes (MIT) ``bitsandbytes/functional.py``
(``create_dynamic_map``, ``quantize_blockwise``, ``dequantize_blockwise``): facts read,
code written here.

A block-wise quantized tensor is a ``uint8`` code index per element plus one ``float32``
absolute maximum per block of ``block_size`` consecutive elements of the flattened
tensor: ``x ≈ code[q] · absmax[block]``.

The nearest code is found two ways with the same result: ``nearest_code_search`` (the
textbook binary search over the map's midpoints; ``quantize_blockwise`` uses it for any
map) and ``nearest_code_lookup`` (one look-up in a bucket table of the dynamic map; the
8-bit optimizer state uses it, several times faster on CPU). Their equality is tested on
every float32 class and was checked once on all 2^32 float32 bit patterns.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gradkit import _common

# The paper's default block size (bitsandbytes' optimizers now use 256).
DEFAULT_BLOCK_SIZE = 2048
# Number of exponent levels of the 8-bit dynamic map: magnitudes 10^-6 ... 10^0.
_EXPONENT_LEVELS = 7


def dynamic_quantization_map(signed: bool = True) -> jax.Array:
    r"""The 256 sorted values of the 8-bit dynamic (tree) quantization map.

    For exponent level ``i = 0..6`` the map holds ``n_i`` values
    ``10^{i-6}·(0.1 + (k + ½)·0.9/n_i)``, ``k = 0..n_i−1`` (the midpoints of ``n_i``
    equal cells on ``[0.1, 1]``), with ``n_i = 2^i`` (signed map, together with their
    negatives) or ``n_i = 2^{i+1}`` (unsigned map), plus ``0`` and ``1``:

    * signed: 127 positive and 127 negative values, 0 and 1 (no −1); smallest
      magnitude ``5.5e-7``;
    * unsigned: 254 positive values, 0 and 1; smallest ``3.25e-7``.

    The values are computed in float64 and rounded once to float32. bitsandbytes'
    ``create_dynamic_map(signed)`` (``max_exponent_bits=7, total_bits=8``) builds the
    same values with float32 ``torch.linspace`` arithmetic, so individual entries may
    differ from it in the last float32 bits; the set of values and their order are the
    same.

    Args:
      signed: the signed map (for quantities of either sign, e.g. Adam's first moment)
        or the unsigned map (non-negative quantities, e.g. Adam's second moment).

    Returns:
      ``float32[256]``, sorted ascending, ``max = 1``.

    Example:
      >>> code = gradkit.dynamic_quantization_map(signed=True)
      >>> code.shape, float(code[-1])
      ((256,), 1.0)

    References:
      Dettmers et al., `8-bit Optimizers via Block-wise Quantization
      <https://arxiv.org/abs/2110.02861>`_, 2022 (§1.3 "Dynamic Tree Quantization" and
      §2.2 "Dynamic Quantization", whose unsigned variant re-purposes the sign bit;
      bitsandbytes ``create_dynamic_map``).
    """
    return jnp.asarray(_dynamic_map(bool(signed)))


@functools.cache
def _dynamic_map(signed: bool) -> np.ndarray:
    values = [0.0, 1.0]
    for level in range(_EXPONENT_LEVELS):
        cells = 2**level if signed else 2 ** (level + 1)
        k = np.arange(cells, dtype=np.float64)
        mids = 0.1 + (k + 0.5) * (0.9 / cells)
        scaled = 10.0 ** (level - (_EXPONENT_LEVELS - 1)) * mids
        values.extend(scaled.tolist())
        if signed:
            values.extend((-scaled).tolist())
    table = np.sort(np.asarray(values, np.float64)).astype(np.float32)
    assert table.shape == (256,)
    table.setflags(write=False)
    return table


def linear_quantization_map(signed: bool = True) -> jax.Array:
    """A linear 8-bit map on ``[-1, 1]`` (signed) or ``[0, 1]`` (unsigned), 256 values.

    The baseline of the paper's ablations of dynamic quantization; the
    signed map is ``linspace(-1, 1, 255)`` plus an extra 0 so that 0 is exact (as
    bitsandbytes' ``create_linear_map``).
    """
    if signed:
        table = np.sort(np.concatenate([np.linspace(-1.0, 1.0, 255), [0.0]]))
    else:
        table = np.linspace(0.0, 1.0, 256)
    return jnp.asarray(table.astype(np.float32))


def num_blocks(size: int, block_size: int) -> int:
    """Number of blocks of ``block_size`` elements covering ``size`` elements (≥ 1)."""
    return max(1, math.ceil(size / block_size))


def _check_code(code: jax.Array) -> jax.Array:
    code = jnp.asarray(code, jnp.float32)
    if code.shape != (256,):
        raise ValueError(f"`code` must be a float[256] quantization map, got shape {code.shape}.")
    return code


def to_blocks(x: jax.Array, block_size: int) -> jax.Array:
    """Flattens ``x`` to float32, zero-pads it to whole blocks: ``[num_blocks, block_size]``."""
    flat = jnp.ravel(x).astype(jnp.float32)
    nb = num_blocks(flat.size, block_size)
    flat = jnp.pad(flat, (0, nb * block_size - flat.size))
    return flat.reshape(nb, block_size)


def _normalise(blocks: jax.Array) -> tuple[jax.Array, jax.Array]:
    absmax = jnp.max(jnp.abs(blocks), axis=-1)
    # An all-zero block has absmax 0: normalise by 1 instead (its codes are all 0 → 0.0).
    scale = jnp.where(absmax > 0, absmax, jnp.ones_like(absmax))
    return blocks / scale[:, None], absmax.astype(jnp.float32)


def nearest_code_search(normed: jax.Array, code: jax.Array) -> jax.Array:
    """Index of the map value nearest to each of ``normed``: a binary search.

    The boundaries between neighbouring map values are their midpoints; a value exactly
    on a midpoint goes to the lower neighbour; NaN goes to the top code, as in
    ``jnp.searchsorted``.
    """
    midpoints = (code[1:] + code[:-1]) / 2
    return jnp.searchsorted(midpoints, normed, side="left")


def quantize_blocks(blocks: jax.Array, code: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Quantizes ``float32[num_blocks, block_size]`` rows: (``uint8`` codes, absmax)."""
    normed, absmax = _normalise(blocks)
    return nearest_code_search(normed, code).astype(jnp.uint8), absmax


# ----------------------------------------------------------------------------------------
# The same codes by one table look-up. The binary search costs eight dependent gathers
# per element (XLA:CPU runs them as a loop); here the float's own bits (sign, exponent,
# top mantissa bits) pick a bucket of the number line so narrow that it holds at most one
# midpoint, and one gather returns how many midpoints lie below the bucket and where the
# one inside it (if any) sits. Integer compares of the bits order float32 values exactly
# as float compares do (for same-signed values), so the codes equal the search's.

_SIGN_BITS = 0x7FFFFFFF
# float32 -inf as int32: the bits of -0.0 ... -inf are exactly the int32 values ≤ this.
_NEGATIVE_INF_BITS = -0x800000


class BucketTable(NamedTuple):
    """Buckets of float32 values, each holding at most one midpoint of a 256-value map.

    A bucket is the values whose magnitude bits ``|x|_bits >> shift`` are equal (a
    binade cut into ``2^(23 − shift)`` equal parts), for either sign; magnitudes below
    the first bucket or above the last share those end buckets, which hold no midpoint.
    ``entries[b] = below | (position << 8)``: ``below`` midpoints are smaller than every
    value of bucket ``b``, and the one midpoint inside it has ``position`` (its low
    ``shift`` bits, in increasing order of value) or, with none inside, ``position =
    2^shift`` (larger than any value's).
    """

    entries: np.ndarray  # int32[2·buckets]: positive values' buckets, then negative ones'
    first: int  # magnitude bits >> shift of the first bucket
    shift: int


def _order_keys(x: np.ndarray) -> np.ndarray:
    """int64 keys of float32 values, in the order of the values (−0 just below +0)."""
    bits = np.asarray(x, np.float32).view(np.int32).astype(np.int64)
    return np.where(bits < 0, -(bits & _SIGN_BITS) - 1, bits)


def bucket_table(code: np.ndarray) -> BucketTable:
    """The :class:`BucketTable` of a sorted map with finite non-zero midpoints."""
    code = np.asarray(code, np.float32)
    midpoints = (code[1:] + code[:-1]) / np.float32(2)  # float32, as in the search
    if not (np.all(np.isfinite(midpoints)) and np.all(midpoints != 0)
            and np.all(np.diff(midpoints) > 0)):
        raise ValueError("`code` must be sorted with finite non-zero midpoints.")
    keys = _order_keys(midpoints)
    magnitudes = np.abs(midpoints).view(np.int32).astype(np.int64)
    for shift in range(23, -1, -1):  # the coarsest buckets that separate the midpoints
        first = int(magnitudes.min() >> shift) - 1
        last = int(magnitudes.max() >> shift) + 1
        if first < 0:
            continue
        lows = np.arange(first, last + 1, dtype=np.int64) << shift
        highs = lows + (1 << shift) - 1
        lows[0], highs[-1] = 0, _SIGN_BITS  # the end buckets take every magnitude beyond
        rows = []
        for lo_key, hi_key in ((lows, highs), (-highs - 1, -lows - 1)):  # +x, then −x
            below = np.searchsorted(keys, lo_key, side="left")
            inside = np.searchsorted(keys, hi_key, side="right") - below
            if inside.max() > 1:
                break
            position = np.where(inside == 1, keys[np.minimum(below, keys.size - 1)]
                                & ((1 << shift) - 1), 1 << shift)
            rows.append(below | (position << 8))
        else:
            entries = np.concatenate(rows).astype(np.int32)
            entries.setflags(write=False)
            return BucketTable(entries, first, shift)
    raise ValueError("`code` has midpoints closer than one float32 ulp.")


@functools.cache
def dynamic_bucket_table(signed: bool) -> BucketTable:
    """The :class:`BucketTable` of :func:`dynamic_quantization_map` (``signed``)."""
    return bucket_table(_dynamic_map(bool(signed)))


def nearest_code_lookup(normed: jax.Array, table: BucketTable) -> jax.Array:
    """:func:`nearest_code_search` of float32 ``normed`` by one look-up in ``table``."""
    bits = jax.lax.bitcast_convert_type(normed.astype(jnp.float32), jnp.int32)
    # NaNs of either sign fall into the last positive bucket: above every midpoint.
    negative = bits <= _NEGATIVE_INF_BITS
    buckets = table.entries.size // 2
    bucket = jnp.clip(((bits & _SIGN_BITS) >> table.shift) - table.first, 0, buckets - 1)
    entry = jnp.asarray(table.entries)[bucket + jnp.where(negative, buckets, 0)]
    # The low bits, flipped for negative values so that they grow with the value.
    position = (bits ^ (bits >> 31)) & ((1 << table.shift) - 1)
    return (entry & 0xFF) + ((entry >> 8) < position).astype(jnp.int32)


def quantize_blocks_dynamic(blocks: jax.Array, signed: bool) -> tuple[jax.Array, jax.Array]:
    """:func:`quantize_blocks` with :func:`dynamic_quantization_map` by table look-up."""
    normed, absmax = _normalise(blocks)
    codes = nearest_code_lookup(normed, dynamic_bucket_table(signed))
    return codes.astype(jnp.uint8), absmax


def dequantize_blocks(codes: jax.Array, absmax: jax.Array, code: jax.Array) -> jax.Array:
    """``code[codes] · absmax`` per row of ``uint8[num_blocks, block_size]``: float32."""
    return code[codes.astype(jnp.int32)] * absmax[:, None]


def quantize_blockwise(
    x: jax.Array, code: jax.Array, block_size: int = DEFAULT_BLOCK_SIZE
) -> tuple[jax.Array, jax.Array]:
    r"""Block-wise 8-bit quantization of ``x`` with the 256-value map ``code``.

    The flattened ``x`` is cut into blocks of ``block_size`` consecutive elements (the
    last one zero-padded). Per block ``b``: ``N_b = max_{j∈b} |x_j|`` (float32) and

    .. math:: q_j = \operatorname{argmin}_k |\,\mathrm{code}_k - x_j / N_b\,|,

    the nearest map value (round-to-nearest; a value exactly halfway between two map
    values goes to the lower one; an all-zero block keeps ``N_b = 0`` and codes of 0).
    bitsandbytes also picks the nearest map value (a binary search over the sorted map,
    no stochastic rounding for optimizer states), so the two agree up to the tie rule
    and the float32 rounding of the map itself. Non-finite inputs: a NaN or ±Inf makes
    that block's ``N_b`` non-finite, and the whole block dequantizes to non-finite
    values; other blocks are unaffected.

    Args:
      x: array of any shape and floating dtype (computed in float32).
      code: ``float[256]`` sorted map with values in ``[-1, 1]``, e.g.
        :func:`dynamic_quantization_map`.
      block_size: elements per block, a positive integer (paper default 2048).

    Returns:
      ``(codes, absmax)``: ``uint8`` with the shape of ``x`` and ``float32[ceil(size /
      block_size)]`` (at least one block).

    Example:
      >>> code = gradkit.dynamic_quantization_map(signed=True)
      >>> q, absmax = gradkit.quantize_blockwise(x, code, block_size=2048)
      >>> x_hat = gradkit.dequantize_blockwise(q, absmax, code, block_size=2048)

    References:
      Dettmers et al., `8-bit Optimizers via Block-wise Quantization
      <https://arxiv.org/abs/2110.02861>`_, 2022 (§1.2 the quantize/dequantize steps, §2.1
      "Block-wise Quantization").
    """
    block_size = _common.static_int("block_size", block_size)
    return _quantize_flat(jnp.asarray(x), _check_code(code), block_size)


@functools.partial(jax.jit, static_argnums=2)
def _quantize_flat(x, code, block_size):
    q, absmax = quantize_blocks(to_blocks(x, block_size), code)
    return jnp.ravel(q)[: x.size].reshape(x.shape), absmax


@functools.partial(jax.jit, static_argnums=2)
def quantize_to_blocks(x, code, block_size):
    """Jitted ``quantize_blocks(to_blocks(x, block_size), code)``."""
    return quantize_blocks(to_blocks(x, block_size), code)


@functools.partial(jax.jit, static_argnums=(1, 2))
def quantize_dynamic_to_blocks(x, signed, block_size):
    """Jitted ``quantize_blocks_dynamic(to_blocks(x, block_size), signed)``."""
    return quantize_blocks_dynamic(to_blocks(x, block_size), signed)


def dequantize_blockwise(
    codes: jax.Array,
    absmax: jax.Array,
    code: jax.Array,
    block_size: int = DEFAULT_BLOCK_SIZE,
    dtype: jax.typing.DTypeLike = jnp.float32,
) -> jax.Array:
    r"""Inverse of :func:`quantize_blockwise`: ``x̂_j = code[q_j] · N_b`` for ``j ∈ b``.

    Args:
      codes: ``uint8`` codes (any shape), as returned by :func:`quantize_blockwise`.
      absmax: ``float32[ceil(codes.size / block_size)]`` per-block maxima.
      code: the map used to quantize.
      block_size: the block size used to quantize.
      dtype: output dtype (the arithmetic is float32).

    Returns:
      Array of ``codes.shape`` and ``dtype``.

    References:
      Dettmers et al., `8-bit Optimizers via Block-wise Quantization
      <https://arxiv.org/abs/2110.02861>`_, 2022 (§2.1).
    """
    block_size = _common.static_int("block_size", block_size)
    code = _check_code(code)
    codes = jnp.asarray(codes)
    nb = num_blocks(codes.size, block_size)
    if jnp.shape(absmax) != (nb,):
        raise ValueError(
            f"`absmax` must have shape ({nb},) for {codes.size} codes in blocks of "
            f"{block_size}, got {jnp.shape(absmax)}."
        )
    return _dequantize_flat(codes, jnp.asarray(absmax, jnp.float32), code, block_size,
                            jnp.dtype(dtype))


@functools.partial(jax.jit, static_argnums=(3, 4))
def _dequantize_flat(codes, absmax, code, block_size, dtype):
    nb = absmax.shape[0]
    flat = jnp.pad(jnp.ravel(codes), (0, nb * block_size - codes.size))
    x = dequantize_blocks(flat.reshape(nb, block_size), absmax, code)
    return jnp.ravel(x)[: codes.size].reshape(codes.shape).astype(dtype)
