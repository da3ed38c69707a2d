# SPDX-License-Identifier: Apache-2.0
"""Data-parallel steps (examples/lm/parallel_train.py): pmap and Mesh/NamedSharding jit on 8
devices equal one device."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradkit
from examples.lm import parallel_train as parallel
from gradkit.data import text
from gradkit.models import transformer as tf

# No biases: the key bias has an exactly-zero true gradient (softmax is shift invariant),
# so its float noise would be amplified to ±lr by Adam/Lion and differ between layouts.
CFG = tf.TransformerConfig(
    vocab_size=256, max_len=8, d_model=16, num_layers=1, num_heads=2, use_bias=False
)
MODEL = tf.Transformer(CFG)


def _loss_fn(params, batch):
    logits = MODEL.apply(params, batch["inputs"])
    return tf.lm_loss(logits, batch["targets"], z_loss=1e-4)


def _extra_args(params, batch):
    del params
    return {"obj_fn": lambda p: _loss_fn(p, batch)[0]}


def _setup(num_steps=2, batch_size=16):
    params = jax.jit(MODEL.init)(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))
    tokens = np.frombuffer(text.generated_corpus(4000, key=0), np.uint8)
    batches = [text.train_batch(tokens, s, batch_size, 8) for s in range(num_steps)]
    return params, batches


def _single(opt, params, batches, extra_args_fn=None):
    step = jax.jit(parallel.data_parallel_train_step(_loss_fn, opt, extra_args_fn=extra_args_fn))
    state = opt.init(params)
    for b in batches:
        params, state, metrics = step(params, state, b)
    return params, state, metrics


def _assert_tree_close(a, b, rtol=2e-5, atol=1e-6):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


def _obj_fn_sgd(learning_rate, axis_name=None):
    """A test transform driven only by the `obj_fn` extra arg: −lr·∇obj_fn, pmean-ed."""

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None, *, obj_fn, **extra_args):
        del updates, extra_args
        grads = jax.grad(obj_fn)(params)
        if axis_name is not None:
            grads = jax.lax.pmean(grads, axis_name)
        return jax.tree.map(lambda g: -learning_rate * g, grads), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def test_pmap_and_mesh_steps_equal_single_device():
    assert jax.device_count() == 8
    # Lion (sign of the momentum) from gradkit, chained after optax's AdamW scaling, so
    # both a gradkit and an optax state go through the replicated/sharded paths.
    opt = optax.chain(optax.scale_by_adam(), gradkit.lion(1e-3, weight_decay=0.1))
    params, batches = _setup()
    want_params, want_state, want_metrics = _single(opt, params, batches)

    pstep = parallel.pmap_train_step(_loss_fn, opt)
    p, s = parallel.replicate(params), parallel.replicate(opt.init(params))
    for b in batches:
        p, s, m = pstep(p, s, parallel.split_for_pmap(b))
    # Every device holds the same params, equal to the single-device run.
    for i in range(8):
        np.testing.assert_array_equal(jax.tree.leaves(p)[0][i], jax.tree.leaves(p)[0][0])
    _assert_tree_close(parallel.unreplicate(p), want_params)
    _assert_tree_close(parallel.unreplicate(s), want_state)
    np.testing.assert_allclose(m["loss"][0], want_metrics["loss"], rtol=1e-5)
    np.testing.assert_allclose(m["grad_norm"][0], want_metrics["grad_norm"], rtol=1e-4)

    mesh = parallel.make_data_mesh()
    mstep = parallel.mesh_train_step(_loss_fn, opt, mesh)
    p = parallel.replicate_on_mesh(params, mesh)
    s = parallel.replicate_on_mesh(opt.init(params), mesh)
    for b in batches:
        sharded = parallel.shard_batch(b, mesh)
        assert len(sharded["inputs"].addressable_shards) == 8
        assert sharded["inputs"].addressable_shards[0].data.shape == (2, 8)
        p, s, m = mstep(p, s, sharded)
    _assert_tree_close(p, want_params)
    _assert_tree_close(s, want_state)
    np.testing.assert_allclose(m["loss"], want_metrics["loss"], rtol=1e-5)


def test_extra_args_and_axis_name_reach_the_transform_under_pmap():
    params, batches = _setup(num_steps=1)
    want, _, _ = _single(_obj_fn_sgd(0.5), params, batches, _extra_args)
    plain_sgd, _, _ = _single(optax.sgd(0.5), params, batches)
    _assert_tree_close(want, plain_sgd)  # obj_fn is the training loss on the batch

    pstep = parallel.pmap_train_step(
        _loss_fn, _obj_fn_sgd(0.5, axis_name="batch"), extra_args_fn=_extra_args
    )
    p = parallel.replicate(params)
    s = parallel.replicate(optax.EmptyState())
    p, s, _ = pstep(p, s, parallel.split_for_pmap(batches[0]))
    _assert_tree_close(parallel.unreplicate(p), want)

    # Without the axis name each device would step on its own shard's gradient.
    pstep_local = parallel.pmap_train_step(_loss_fn, _obj_fn_sgd(0.5), extra_args_fn=_extra_args)
    p2, _, _ = pstep_local(parallel.replicate(params), s, parallel.split_for_pmap(batches[0]))
    diff = max(float(np.max(np.abs(a[1] - a[0]))) for a in jax.tree.leaves(p2))
    assert diff > 1e-6


def test_split_for_pmap_rejects_indivisible_batch():
    with pytest.raises(ValueError, match="divisible"):
        parallel.split_for_pmap({"x": np.zeros((10, 3))}, 8)
    assert parallel.split_for_pmap({"x": np.zeros((16, 3))}, 8)["x"].shape == (8, 2, 3)
