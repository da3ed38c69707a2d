# SPDX-License-Identifier: Apache-2.0
"""8-bit block-wise optimizer state (gradkit/memory/): maps, quantization, wrapper, alias.

The conformance suite (tests/registry.py row ``adamw_8bit``) covers jit/pmap, bf16,
inject_hyperparams, MultiSteps and the orbax round trip with every moment quantized.
"""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradkit
from gradkit.memory import _quantization

# ----------------------------------------------------------------------------- maps


def _numpy_dynamic_map(signed: bool) -> np.ndarray:
    """Transcription of the published construction (bitsandbytes create_dynamic_map with
    max_exponent_bits=7, total_bits=8) in float64: linspace boundaries, their means."""
    data = []
    for i in range(7):
        items = 2**i + 1 if signed else 2 ** (i + 1) + 1
        boundaries = np.linspace(0.1, 1, items)
        means = (boundaries[:-1] + boundaries[1:]) / 2.0
        data += (10 ** (-6 + i) * means).tolist()
        if signed:
            data += (-(10 ** (-6 + i)) * means).tolist()
    data += [0.0, 1.0]
    assert len(data) == 256
    return np.sort(np.asarray(data, np.float32))


@pytest.mark.parametrize("signed", [True, False])
def test_dynamic_map_equals_published_construction(signed):
    code = np.asarray(gradkit.dynamic_quantization_map(signed))
    assert code.dtype == np.float32 and code.shape == (256,)
    np.testing.assert_array_equal(code, _numpy_dynamic_map(signed))
    assert np.all(np.diff(code) > 0)  # sorted, 256 distinct values
    assert code[-1] == 1.0 and 0.0 in code
    positive = code[code > 0]
    if signed:
        assert (code < 0).sum() == 127 and positive.size == 128  # 127 + the 1.0
        assert -1.0 not in code
        np.testing.assert_allclose(positive.min(), 5.5e-7, rtol=1e-6)
        np.testing.assert_array_equal(-code[code < 0][::-1], positive[:-1])
    else:
        assert code.min() == 0.0 and positive.size == 255
        np.testing.assert_allclose(positive.min(), 3.25e-7, rtol=1e-6)


# ----------------------------------------------------------------------------- quantization

SIGNED = gradkit.dynamic_quantization_map(True)
UNSIGNED = gradkit.dynamic_quantization_map(False)


def test_quantize_closed_form_tiny():
    x = jnp.array([0.5, -1.0, 0.0, 2.0, 1.0])  # blocks [0.5, -1], [0, 2], [1, pad]
    codes, absmax = gradkit.quantize_blockwise(x, SIGNED, block_size=2)
    np.testing.assert_array_equal(absmax, [1.0, 2.0, 1.0])
    assert codes.dtype == jnp.uint8 and codes.shape == (5,)
    code = np.asarray(SIGNED)
    # -1 is not in the signed map: its nearest value is the smallest one, index 0.
    expected = [np.argmin(np.abs(code - v)) for v in (0.5, -1.0, 0.0, 1.0, 1.0)]
    np.testing.assert_array_equal(codes, expected)
    assert expected[1] == 0 and code[expected[2]] == 0.0 and expected[3] == 255
    x_hat = gradkit.dequantize_blockwise(codes, absmax, SIGNED, block_size=2)
    np.testing.assert_allclose(x_hat, [code[expected[0]], code[0], 0.0, 2.0, 1.0])


@pytest.mark.parametrize("signed", [True, False])
def test_nearest_value_and_round_trip_bound_per_block(signed):
    code = np.asarray(SIGNED if signed else UNSIGNED, np.float64)
    rng = np.random.default_rng(1)
    x = rng.standard_t(3.0, size=(37, 29)).astype(np.float32)  # 1073: not whole blocks
    x *= np.exp(rng.normal(size=x.shape) * 3).astype(np.float32)
    if not signed:
        x = np.abs(x)
    block = 128
    codes, absmax = gradkit.quantize_blockwise(x, code, block_size=block)
    codes, absmax = np.asarray(codes), np.asarray(absmax)
    assert absmax.shape == (9,) and absmax.dtype == np.float32
    flat = np.pad(x.ravel().astype(np.float64), (0, 9 * block - x.size)).reshape(9, block)
    np.testing.assert_array_equal(absmax, np.abs(flat).max(axis=1))
    # Nearest map value (float64 brute force); ties may differ only at float32 rounding.
    y = (flat / absmax[:, None]).ravel()[: x.size]
    chosen = np.abs(code[codes.ravel()] - y)
    best = np.abs(code[None, :] - y[:, None]).min(axis=1)
    np.testing.assert_allclose(chosen, best, atol=1e-7)
    # Round-trip error per block ≤ half the largest gap of the map times the block's absmax.
    x_hat = np.asarray(gradkit.dequantize_blockwise(codes, absmax, code, block_size=block))
    err = np.pad(np.abs(x_hat - x).ravel(), (0, 9 * block - x.size)).reshape(9, block)
    half_gap = np.diff(code).max() / 2
    assert np.all(err.max(axis=1) <= half_gap * absmax * (1 + 1e-5))
    assert np.all(err.max(axis=1) > 0.1 * half_gap * absmax)  # the bound is not vacuous


def test_dynamic_blockwise_beats_linear_and_global_scale_on_heavy_tails():
    rng = np.random.default_rng(0)
    m = (1e-3 * rng.standard_t(2.0, size=2**15)).astype(np.float32)  # Adam-like m
    v = m.astype(np.float64) ** 2  # and v (non-negative, unsigned map)
    v = v.astype(np.float32)

    def rel_error(x, code, block):
        c, a = gradkit.quantize_blockwise(x, code, block)
        x_hat = np.asarray(gradkit.dequantize_blockwise(c, a, code, block))
        return float(np.abs(x_hat - x).mean() / np.abs(x).mean())

    lin_s = gradkit.memory.linear_quantization_map(True)
    lin_u = gradkit.memory.linear_quantization_map(False)
    dyn_block = rel_error(m, SIGNED, 2048)
    dyn_global = rel_error(m, SIGNED, m.size)
    lin_block = rel_error(m, lin_s, 2048)
    # Measured: 0.024 (dynamic, blocks of 2048), 0.030 (one global scale), 0.110 (linear).
    assert dyn_block < 0.03 and dyn_block < 0.85 * dyn_global and dyn_block < 0.3 * lin_block
    dyn_block_v = rel_error(v, UNSIGNED, 2048)
    lin_block_v = rel_error(v, lin_u, 2048)
    # Measured: 0.011 vs 0.151; the linear map rounds most of v to exactly 0.
    assert dyn_block_v < 0.02 and dyn_block_v < 0.15 * lin_block_v


@pytest.mark.parametrize("signed", [True, False])
def test_codes_are_nearest_values_with_ties_to_the_lower_one(signed):
    # Brute force over the map on random values, the exact midpoints between neighbours
    # (ties go to the lower code), the map's own values, ±1 and 0; the codes do not depend
    # on how the binary search is run.
    code = SIGNED if signed else UNSIGNED
    midpoints = (code[1:] + code[:-1]) / 2
    rng = np.random.default_rng(3)
    x = rng.standard_t(2.0, size=4096).astype(np.float32)
    x *= np.exp(rng.normal(size=x.shape) * 4).astype(np.float32)
    x = jnp.concatenate([jnp.asarray(np.clip(x, -1, 1)), midpoints, code,
                         jnp.array([-1.0, 1.0, 0.0])])
    q, _ = _quantization.quantize_blocks(x[None, :], code)
    q = q.astype(jnp.int32)
    dist = jnp.abs(code[None, :] - x[:, None])
    lowest_nearest = jnp.argmax(dist == dist.min(axis=1, keepdims=True), axis=1)
    on_midpoint = jnp.isin(x, midpoints)
    # Off the midpoints the nearest value is unique; on them it is the lower neighbour.
    np.testing.assert_array_equal(jnp.where(on_midpoint, -1, q[0]),
                                  jnp.where(on_midpoint, -1, lowest_nearest))
    np.testing.assert_array_equal(q[0][4096:4096 + 255], np.arange(255))  # the midpoints
    unrolled = jnp.searchsorted(midpoints, x, side="left", method="scan_unrolled")
    np.testing.assert_array_equal(q[0], unrolled)


def _every_float32_class(code: np.ndarray) -> np.ndarray:
    """Float32 values of every kind a normalised moment (or anything else) can take."""
    rng = np.random.default_rng(4)
    # Every exponent (subnormals' 0 and Inf/NaN's 255 included) × a spread of fractions.
    fractions = np.concatenate([[0, 1, 2, 0x400000, 0x7FFFFE, 0x7FFFFF],
                                rng.integers(0, 1 << 23, 58)]).astype(np.uint32)
    exponents = np.arange(256, dtype=np.uint32)
    grid = (exponents[:, None] << 23 | fractions[None, :]).ravel()
    grid = np.concatenate([grid, grid | np.uint32(1 << 31)]).view(np.float32)
    # The midpoints between neighbouring codes and the codes, each ±1, ±2 ulp.
    midpoints = (code[1:] + code[:-1]) / np.float32(2)
    near = [midpoints, code]
    for points in (midpoints, code):
        for direction in (np.inf, -np.inf):
            step = points
            for _ in range(2):
                step = np.nextafter(step, np.float32(direction))
                near.append(step)
    nan_bits = np.array([0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFFFFFFF], np.uint32)
    specials = np.concatenate([np.array([0.0, -0.0, np.inf, -np.inf, 1.0, -1.0], np.float32),
                               nan_bits.view(np.float32)])
    wide = rng.standard_t(2.0, 8192) * np.exp(4 * rng.normal(size=8192))
    return np.concatenate([grid, *near, specials, np.clip(wide, -1, 1).astype(np.float32)])


@pytest.mark.parametrize("signed", [True, False])
def test_table_lookup_gives_the_search_codes_on_every_float32_class(signed):
    # The table look-up (the quantizer of with_8bit_state) against its textbook twin, the
    # binary search over the midpoints; over all 2^32 float32 bit patterns they agree
    # too (checked once offline, not here: minutes of CPU).
    code = np.asarray(gradkit.dynamic_quantization_map(signed))
    x = jnp.asarray(_every_float32_class(code))
    table = _quantization.dynamic_bucket_table(signed)
    search = jax.jit(_quantization.nearest_code_search)(x, jnp.asarray(code))
    lookup = jax.jit(lambda x: _quantization.nearest_code_lookup(x, table))(x)
    np.testing.assert_array_equal(lookup, search)
    assert np.asarray(lookup).min() == 0 and np.asarray(lookup).max() == 255
    # Blocks with zeros, NaN and Inf (absmax and codes): the same through both quantizers.
    blocks = jnp.concatenate([x[: 64 * 256], jnp.zeros(1024)]).reshape(-1, 256)
    blocks = blocks.at[3, 5].set(jnp.nan).at[4, 7].set(-jnp.inf)
    if not signed:
        blocks = jnp.abs(blocks)
    for a, b in zip(_quantization.quantize_blocks_dynamic(blocks, signed),
                    _quantization.quantize_blocks(blocks, jnp.asarray(code)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_non_finite_poisons_only_its_block_and_zero_block_is_exact():
    x = jnp.concatenate([jnp.zeros(4), jnp.array([1.0, jnp.nan, 2.0, 3.0]), jnp.arange(4.0)])
    codes, absmax = gradkit.quantize_blockwise(x, SIGNED, block_size=4)
    x_hat = gradkit.dequantize_blockwise(codes, absmax, SIGNED, block_size=4)
    np.testing.assert_array_equal(x_hat[:4], 0.0)
    assert bool(jnp.all(jnp.isnan(x_hat[4:8])))
    np.testing.assert_allclose(x_hat[8:], jnp.arange(4.0), rtol=0.02)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_block_size_raises(bad):
    with pytest.raises(ValueError, match="block_size"):
        gradkit.quantize_blockwise(jnp.ones(8), SIGNED, block_size=bad)
    with pytest.raises(ValueError, match="block_size"):
        gradkit.with_8bit_state(optax.adam(1e-3), block_size=bad)
    with pytest.raises(ValueError, match="block_size"):
        gradkit.adamw_8bit(1e-3, block_size=bad)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="code"):
        gradkit.quantize_blockwise(jnp.ones(8), SIGNED[:10])
    with pytest.raises(ValueError, match="absmax"):
        gradkit.dequantize_blockwise(jnp.zeros(8, jnp.uint8), jnp.ones(3), SIGNED, block_size=4)
    with pytest.raises(ValueError, match="min_8bit_size"):
        gradkit.with_8bit_state(optax.adam(1e-3), min_8bit_size=-1)
    with pytest.raises(TypeError, match="unsigned"):
        gradkit.with_8bit_state(optax.adam(1e-3), unsigned="nu")
    for kwargs, name in [(dict(learning_rate=float("inf")), "learning_rate"),
                         (dict(learning_rate=-1e-3), "learning_rate"),
                         (dict(learning_rate=1e-3, b1=1.0), "b1"),
                         (dict(learning_rate=1e-3, b2=-0.1), "b2"),
                         (dict(learning_rate=1e-3, eps=-1.0), "eps"),
                         (dict(learning_rate=1e-3, weight_decay=-1.0), "weight_decay")]:
        with pytest.raises(ValueError, match=name):
            gradkit.adamw_8bit(**kwargs)


# ----------------------------------------------------------------------------- wrapper

BLOCK, MIN_SIZE = 256, 512


def _params(dtype=jnp.float32):
    k1, k2 = jax.random.split(jax.random.key(0))
    return {"w": jax.random.normal(k1, (32, 48), dtype),  # 1536 ≥ MIN_SIZE: 8-bit
            "b": jax.random.normal(k2, (48,), dtype)}  # 48 < MIN_SIZE: stays as is


def _loss(params):
    return sum(jnp.sum(jnp.cos(x) + 0.1 * x**2) for x in jax.tree.leaves(params))


# Heavy-tailed (Student-t, 3 dof) gradient noise on "w", one slice per step (≤ 16 steps).
_NOISE = np.random.default_rng(2).standard_t(3.0, size=(16, 32, 48)).astype(np.float32)


def _grads(params, step):
    g = jax.grad(_loss)(params)
    noise = jnp.asarray(_NOISE)[step].astype(g["w"].dtype)
    return {"w": g["w"] + 0.3 * noise, "b": g["b"]}


def test_state_structure_maps_and_keep_32bit():
    params = _params()
    opt = gradkit.with_8bit_state(optax.adam(1e-3), block_size=BLOCK, min_8bit_size=MIN_SIZE)
    state = opt.init(params)
    inner = state.inner_state[0]
    assert inner.count.dtype == jnp.int32
    for q in (inner.mu["w"], inner.nu["w"]):
        assert isinstance(q, gradkit.Quantized8bit)
        assert q.codes.shape == (6, BLOCK) and q.codes.dtype == jnp.uint8
        assert q.absmax.shape == (6,) and q.absmax.dtype == jnp.float32
    assert inner.mu["b"].dtype == jnp.float32 and inner.mu["b"].shape == (48,)
    # After a step: m uses the signed map (mixed signs), v the unsigned one (all ≥ 0).
    _, state = jax.jit(opt.update)(_grads(params, 0), state, params)
    inner = state.inner_state[0]
    signed_codes, unsigned_codes = np.asarray(inner.mu["w"].codes), np.asarray(inner.nu["w"].codes)
    assert signed_codes.min() < 127 < signed_codes.max()  # negative and positive m
    # Each block's largest |m| is ±1 (index 255, or 0 = −0.993 as −1 is not in the map).
    assert np.all(np.any((signed_codes == 0) | (signed_codes == 255), axis=1))
    assert np.all(unsigned_codes.max(axis=1) == 255)  # v's block max is the map's 1.0
    # keep_32bit by name: the whole "w" moment stays float32.
    kept = gradkit.with_8bit_state(optax.adam(1e-3), block_size=BLOCK, min_8bit_size=MIN_SIZE,
                                   keep_32bit=("w",)).init(params)
    assert kept.inner_state[0].mu["w"].dtype == jnp.float32


def _numpy_adam_8bit(params, grads_fn, steps, lr, b1=0.9, b2=0.999, eps=1e-8):
    """Float64 transcription of 8-bit Adam on the one quantized leaf "w" (block BLOCK)."""
    sc, uc = np.asarray(SIGNED, np.float64), np.asarray(UNSIGNED, np.float64)

    def quantize(x, code):
        blocks = np.pad(x.ravel(), (0, (-x.size) % BLOCK)).reshape(-1, BLOCK)
        absmax = np.abs(blocks).max(axis=1)
        y = blocks / np.where(absmax > 0, absmax, 1)[:, None]
        return np.abs(code[None, None, :] - y[..., None]).argmin(-1), absmax

    def dequantize(q, absmax, code, shape):
        return (code[q] * absmax[:, None]).ravel()[: np.prod(shape)].reshape(shape)

    w = np.asarray(params["w"], np.float64)
    qm, am = quantize(np.zeros_like(w), sc)
    qv, av = quantize(np.zeros_like(w), uc)
    for t in range(1, steps + 1):
        g = np.asarray(grads_fn({"w": jnp.asarray(w, jnp.float32), "b": params["b"]}, t - 1)["w"],
                       np.float64)
        m = b1 * dequantize(qm, am, sc, w.shape) + (1 - b1) * g
        v = b2 * dequantize(qv, av, uc, w.shape) + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        qm, am = quantize(m, sc)
        qv, av = quantize(v, uc)
    return w


def test_adam_8bit_matches_float64_transcription_and_tracks_adam():
    params = _params()
    lr, steps = 1e-2, 12
    opt = gradkit.adamw_8bit(lr, weight_decay=0.0, block_size=BLOCK, min_8bit_size=MIN_SIZE)
    p8, _ = _scan(opt, params, steps)
    expected = _numpy_adam_8bit(params, _grads, steps, lr)
    moved = np.abs(expected - np.asarray(params["w"])).mean()
    # float32 vs float64 can move a moment to the neighbouring code now and then.
    np.testing.assert_allclose(p8["w"], expected, atol=0.02 * moved)
    assert np.abs(np.asarray(p8["w"]) - expected).mean() < 1e-3 * moved
    # And it tracks 32-bit AdamW (the quantized leaf differs, the small one barely).
    p32, _ = _scan(optax.adamw(lr, weight_decay=0.0), params, steps)
    gap = np.abs(np.asarray(p8["w"]) - np.asarray(p32["w"])).mean()
    assert 0 < gap < 0.05 * moved
    np.testing.assert_allclose(p8["b"], p32["b"], rtol=1e-5, atol=1e-6)


def _scan(opt, params, steps):
    def body(carry, i):
        return _apply(opt, *carry, i), None

    return jax.jit(lambda p: jax.lax.scan(body, (p, opt.init(p)), jnp.arange(steps))[0])(params)


def _apply(opt, params, state, step, **extra):
    updates, state = opt.update(_grads(params, step), state, params, **extra)
    return optax.apply_updates(params, updates), state


def test_large_min_size_is_plain_adamw():
    params = _params()
    opt = gradkit.adamw_8bit(1e-2, min_8bit_size=10**9)
    ref = optax.adamw(1e-2, weight_decay=1e-4)
    p, _ = _scan(opt, params, 3)
    pr, _ = _scan(ref, params, 3)
    # The float32 hyperparameter arithmetic (see adamw_8bit) differs from optax's in ulps.
    chex.assert_trees_all_close(p, pr, rtol=1e-6, atol=1e-6)


def _sophia_extra(params):
    return {"obj_fn": _loss}


INNERS = {
    "adamw": (lambda: optax.adamw(1e-2), None),
    "lion": (lambda: gradkit.lion(1e-3), None),
    "spam": (lambda: gradkit.spam(1e-2), None),
    "sophia": (lambda: gradkit.sophia(1e-2, estimator="hutchinson", gamma=0.1), _sophia_extra),
}


@pytest.mark.parametrize("name", sorted(INNERS))
def test_wraps_other_optimizers(name):
    make, extra_fn = INNERS[name]
    params = _params(jnp.bfloat16 if name == "lion" else jnp.float32)
    plain = make()
    wrapped = gradkit.with_8bit_state(make(), block_size=BLOCK, min_8bit_size=MIN_SIZE)
    state0 = wrapped.init(params)
    n_quantized = sum(isinstance(x, gradkit.Quantized8bit) for x in jax.tree.leaves(
        state0, is_leaf=lambda x: isinstance(x, gradkit.Quantized8bit)))
    assert n_quantized >= 1
    extra = extra_fn(params) if extra_fn else {}

    @jax.jit
    def run(params):
        def body(carry, i):
            p8, s8, p32, s32 = carry
            p8, s8 = _apply(wrapped, p8, s8, i, **extra)
            p32, s32 = _apply(plain, p32, s32, i, **extra)
            return (p8, s8, p32, s32), None

        carry = (params, state0, params, plain.init(params))
        return jax.lax.scan(body, carry, jnp.arange(5))[0][:3]

    p8, s8, p32 = run(params)
    chex.assert_trees_all_equal_shapes_and_dtypes(s8, state0)
    chex.assert_trees_all_equal_shapes_and_dtypes(p8, params)
    for key in ("w", "b"):
        moved = np.abs(np.asarray(p32[key], np.float32) - np.asarray(params[key], np.float32))
        gap = np.abs(np.asarray(p8[key], np.float32) - np.asarray(p32[key], np.float32))
        assert gap.mean() <= 0.05 * moved.mean() + 1e-6, (key, gap.mean(), moved.mean())


def _search_quantizer(x, signed, block_size):
    code = _quantization.dynamic_quantization_map(signed)
    return _quantization.quantize_to_blocks(x, code, block_size)


@pytest.mark.parametrize("name", ["adamw_8bit", "lion"])
def test_state_over_a_run_is_bit_identical_to_the_search_quantizer(name, monkeypatch):
    # with_8bit_state quantizes by table look-up; the binary search gives the same codes,
    # so a whole run (moments re-quantized every step) ends in the same bits.
    def make():
        if name == "adamw_8bit":
            return gradkit.adamw_8bit(1e-2, block_size=BLOCK, min_8bit_size=MIN_SIZE)
        return gradkit.with_8bit_state(gradkit.lion(1e-3), block_size=BLOCK,
                                       min_8bit_size=MIN_SIZE)

    params = _params()
    fast = _scan(make(), params, 16)
    monkeypatch.setattr(_quantization, "quantize_dynamic_to_blocks", _search_quantizer)
    textbook = _scan(make(), params, 16)
    chex.assert_trees_all_equal(fast, textbook)
    codes = [x for x in jax.tree.leaves(fast[1]) if x.dtype == jnp.uint8]
    assert codes and all(len(np.unique(np.asarray(c))) > 32 for c in codes)


def test_jit_matches_eager_and_mismatched_params_raise():
    params = _params()
    opt = gradkit.with_8bit_state(optax.adam(1e-2), block_size=BLOCK, min_8bit_size=MIN_SIZE)
    state = opt.init(params)
    grads = _grads(params, 0)
    eager = opt.update(grads, state, params)
    jitted = jax.jit(opt.update)(grads, state, params)
    # XLA may fuse differently (ulps), which can move a moment to a neighbouring code.
    chex.assert_trees_all_close(eager[0], jitted[0], rtol=1e-5, atol=1e-6)
    codes = [np.asarray(s.inner_state[0].mu["w"].codes, np.int32) for s in (eager[1], jitted[1])]
    assert np.abs(codes[0] - codes[1]).max() <= 1
    with pytest.raises(ValueError, match="state does not match"):
        opt.update({"w": params["w"]}, state, {"w": params["w"]})


# ----------------------------------------------------------------------------- embedding


def test_stable_embedding_and_32bit_embedding_state():
    from gradkit.models import transformer
    from gradkit.models.stable_embedding import StableEmbedding

    emb = StableEmbedding(256, 64)
    ids = jnp.arange(256).reshape(4, 64)
    variables = emb.init(jax.random.key(0), ids)
    table = np.asarray(variables["params"]["embedding"])
    bound = np.sqrt(6 / (256 + 64))  # Xavier-uniform
    assert np.abs(table).max() <= bound and np.abs(table).max() > 0.98 * bound
    y = np.asarray(emb.apply(variables, ids))
    np.testing.assert_allclose(y.mean(-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(-1), 1.0, rtol=1e-3)

    cfg = transformer.TransformerConfig(d_model=64, max_len=64, stable_embedding=True)
    params = jax.eval_shape(transformer.Transformer(cfg).init, jax.random.key(0),
                            jnp.zeros((1, 8), jnp.int32))["params"]
    assert sum(x.size for x in jax.tree.leaves(params)) == cfg.num_params()
    assert set(params["tok_embed"]) == {"embedding", "norm"}
    # The recipe's third part: the embedding's moments stay 32-bit, the rest is 8-bit.
    params = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), params)
    state = gradkit.adamw_8bit(1e-3, keep_32bit=("tok_embed",)).init(params)
    mu = state[0].inner_state.mu
    assert mu["tok_embed"]["embedding"].dtype == jnp.float32
    assert isinstance(mu["head"]["kernel"], gradkit.Quantized8bit)


def test_multisteps_applies_8bit_update_on_mean_gradient():
    params = _params()
    opt = gradkit.adamw_8bit(1e-2, block_size=BLOCK, min_8bit_size=MIN_SIZE)
    multi = optax.MultiSteps(opt, every_k_schedule=2)
    m_state, o_state = multi.init(params), opt.init(params)
    g1, g2 = _grads(params, 0), _grads(params, 1)
    first, m_state = multi.update(g1, m_state, params)
    chex.assert_trees_all_equal(first, jax.tree.map(jnp.zeros_like, first))
    second, m_state = multi.update(g2, m_state, params)
    expected, o_state = opt.update(jax.tree.map(lambda a, b: (a + b) / 2, g1, g2), o_state,
                                   params)
    chex.assert_trees_all_close(second, expected, rtol=1e-5, atol=1e-7)
    chex.assert_trees_all_equal_shapes_and_dtypes(m_state.inner_opt_state, o_state)


def test_state_bytes_counts_every_leaf_in_closed_form():
    tree = {"m": jnp.zeros((3, 4), jnp.float32), "q": jnp.zeros(5, jnp.bfloat16),
            "key": jax.random.key(0, impl="rbg"),  # key data: 4 × uint32
            "shape_only": jax.ShapeDtypeStruct((7,), jnp.int8), "count": 1}
    assert gradkit.memory.state_bytes(tree) == 48 + 10 + 16 + 7 + 4
    params = {"w": jnp.zeros((4, 3))}
    assert gradkit.memory.state_bytes(optax.adam(1e-3).init(params)) == 4 + 2 * 48
    # An 8-bit moment: one uint8 code per value plus a float32 absmax per block.
    code = gradkit.memory.dynamic_quantization_map(signed=True)
    codes_and_absmax = gradkit.memory.quantize_blockwise(jnp.ones(4096), code, 2048)
    assert gradkit.memory.state_bytes(codes_and_absmax) == 4096 + 2 * 4


@pytest.mark.slow
def test_quantization_benchmark_runs():
    from tests.helpers import run_benchmark

    out = run_benchmark("quantization", "--size=50000", "--repeats=1")
    names = {line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")}
    assert {"optax.adamw", "optax.lion", "adamw_8bit [lookup]", "adamw_8bit [search]",
            "with_8bit_state(lion) [lookup]", "with_8bit_state(lion) [search]"} <= names
