# SPDX-License-Identifier: Apache-2.0
r"""Training-step time of Drop-Muon (truncated backward) relative to Muon, same process.

  python -m benchmarks.drop_muon                     # reference GPT + small CNN
  python -m benchmarks.drop_muon --model=gpt --d_model=128 --num_layers=4

For each model, one jitted training step (forward, backward, optimizer update, apply) of

* ``optax.contrib.muon`` with a full ``jax.value_and_grad`` (the peer, ratio 1.00);
* ``gradkit.drop_muon`` forced to s = 0 with the full backward (our per-layer Muon's
  overhead over optax's);
* ``gradkit.drop_muon`` with ``gradkit.drop_muon_value_and_grad`` at each start layer s,
  and their mean (the expected step time under uniform sampling of s), twice: with a
  static s (one compiled step per s, the CPU pattern) and with s a runtime int32 through
  ``lax.switch`` (one program for every s).

The GPT's Drop-Muon layers are (embeddings, block_0, …, block_{L−1}, final norm + head);
the CNN's (Conv_0, Conv_1, Conv_2, Dense_0). Muon-type methods orthogonalise the
block/conv kernels and use Adam elsewhere.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app
from absl import flags

import gradkit
from benchmarks import timing
from examples.drop_muon_cnn import train as cnn_train
from examples.drop_muon_cnn.configs import default as cnn_default
from examples.muon_lm import train as lm_train
from gradkit.models import transformer

FLAGS = flags.FLAGS
flags.DEFINE_enum("model", "both", ["both", "gpt", "cnn"], "Which model(s) to time.")
flags.DEFINE_integer("d_model", 64, "GPT width (the LM demo default).")
flags.DEFINE_integer("num_layers", 2, "GPT blocks.")
flags.DEFINE_integer("batch_size", 32, "Batch size (sequences for the GPT, images for the CNN).")
flags.DEFINE_integer("seq_len", 64, "GPT sequence length.")
flags.DEFINE_list("channels", ["16", "32", "64"], "CNN channels.")
flags.DEFINE_integer("repeats", 20, "Timed repetitions per step (median reported).")


def _time_steps(loss_fn, params, batch, layers, muon_mask, muon_dims):
    """{label: median seconds} of one jitted training step for each variant."""
    results = {}
    adam_lr = 3e-3

    def full_step(opt, start):
        @jax.jit
        def step(params, state):
            grads = jax.grad(loss_fn)(params, *batch)
            updates, state = opt.update(grads, state, params, **start)
            return optax.apply_updates(params, updates), state
        return step

    peer = optax.contrib.muon(0.02, adam_learning_rate=adam_lr,
                              muon_weight_dimension_numbers=muon_dims)
    results["optax.contrib.muon (full backward)"] = timing.median_seconds(
        full_step(peer, {}), params, peer.init(params), repeats=FLAGS.repeats)
    drop = gradkit.drop_muon(0.02, layers=layers, muon_mask=muon_mask,
                             adam_learning_rate=adam_lr)
    results["gradkit.drop_muon, s = 0 (full backward)"] = timing.median_seconds(
        full_step(drop, {"start_layer": 0}), params, drop.init(params),
        repeats=FLAGS.repeats)
    vg = gradkit.drop_muon_value_and_grad(loss_fn, layers)
    num = max(jax.tree.leaves(gradkit.drop_muon_layer_indices(params, layers))) + 1

    def truncated_step(s):
        @jax.jit
        def step(params, state):
            _, grads = vg(params, s, *batch)
            updates, state = drop.update(grads, state, params, start_layer=s)
            return optax.apply_updates(params, updates), state
        return step

    for mode, make_s in (("static s", int), ("lax.switch", jnp.int32)):
        per_s = []
        for s in range(num):
            sec = timing.median_seconds(truncated_step(make_s(s)), params, drop.init(params),
                                        repeats=FLAGS.repeats)
            results[f"gradkit.drop_muon, truncated ({mode}), s = {s}"] = sec
            per_s.append(sec)
        results[f"gradkit.drop_muon, truncated ({mode}), mean over uniform s"] = float(
            np.mean(per_s))
    return results


def _table(title, results):
    peer = next(iter(results.values()))
    rows = [[k, f"{1e3 * v:.2f}", f"{v / peer:.2f}"] for k, v in results.items()]
    return f"{title}\n\n" + timing.markdown_table(["step", "ms / step", "× optax muon"], rows)


def gpt_results():
    cfg = transformer.TransformerConfig(d_model=FLAGS.d_model, num_layers=FLAGS.num_layers,
                                        max_len=FLAGS.seq_len)
    model = transformer.Transformer(cfg)
    tokens = jax.random.randint(jax.random.key(1), (FLAGS.batch_size, FLAGS.seq_len + 1), 0,
                                cfg.vocab_size)
    params = model.init(jax.random.key(0), tokens[:, :-1])

    def loss_fn(params, tokens):
        logits = model.apply(params, tokens[:, :-1])
        return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()

    res = _time_steps(loss_fn, params, (tokens,), lm_train.transformer_layers,
                      lm_train.body_kernel_mask, lm_train.muon_dims)
    n = sum(x.size for x in jax.tree.leaves(params))
    return _table(f"GPT d_model {FLAGS.d_model}, {FLAGS.num_layers} blocks, {n:,} params, "
                  f"batch {FLAGS.batch_size}×{FLAGS.seq_len}", res)


def cnn_results():
    cfg = cnn_default.get_config()
    cfg.update(channels=tuple(int(c) for c in FLAGS.channels), batch_size=FLAGS.batch_size,
               num_train=FLAGS.batch_size)
    images, labels = cnn_train.make_data(cfg)
    model = cnn_train.CNN(cfg.channels, cfg.num_classes)
    params = model.init(jax.random.key(0), jnp.asarray(images[:1]))["params"]

    def loss_fn(params, x, y):
        logits = model.apply({"params": params}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def kernels(params):
        return jax.tree_util.tree_map_with_path(
            lambda p, x: str(p[-1].key) == "kernel", params)

    def dims(params):
        return jax.tree_util.tree_map_with_path(
            lambda p, x: optax.contrib.MuonDimensionNumbers(tuple(range(x.ndim - 1)),
                                                            x.ndim - 1)
            if str(p[-1].key) == "kernel" else None, params)

    res = _time_steps(loss_fn, params, (jnp.asarray(images), jnp.asarray(labels)),
                      cnn_train.layer_order(cfg), kernels, dims)
    return _table(f"CNN channels {cfg.channels}, batch {FLAGS.batch_size} of 28×28", res)


def main(argv):
    del argv
    out = []
    if FLAGS.model in ("both", "gpt"):
        out.append(gpt_results())
    if FLAGS.model in ("both", "cnn"):
        out.append(cnn_results())
    print(f"median of {FLAGS.repeats} jitted training steps\n")
    print("\n\n".join(out))


if __name__ == "__main__":
    app.run(main)
