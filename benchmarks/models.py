# SPDX-License-Identifier: Apache-2.0
"""The benchmark models shared by ``benchmarks.sophia`` and ``benchmarks.spectrum``: an MLP
classifier on Gaussian inputs or the reference byte-level GPT on random bytes, sized by
absl flags (define them once with :func:`define_model_flags`)."""

from __future__ import annotations

import jax
from absl import flags

from gradkit.models import transformer
from gradkit.models.mlp import MLPClassifier

FLAGS = flags.FLAGS


def define_model_flags() -> None:
    flags.DEFINE_enum("model", "mlp", ["mlp", "gpt"], "MLP classifier or the reference GPT.")
    flags.DEFINE_integer("dim", 64, "MLP input dimension.")
    flags.DEFINE_integer("hidden", 512, "MLP hidden width.")
    flags.DEFINE_integer("classes", 64, "MLP number of classes.")
    flags.DEFINE_integer("batch_size", 256, "Batch size (examples, or sequences for the GPT).")
    flags.DEFINE_integer("seq_len", 64, "GPT sequence length (bytes).")
    flags.DEFINE_integer("d_model", 64, "GPT width.")
    flags.DEFINE_integer("num_layers", 2, "GPT blocks.")
    flags.DEFINE_integer("num_heads", 4, "GPT attention heads.")


def make_model():
    """(description, apply_fn, params, inputs, targets) of the ``--model`` flags."""
    kx, ky, kp = jax.random.split(jax.random.key(0), 3)
    if FLAGS.model == "gpt":
        cfg = transformer.TransformerConfig(
            vocab_size=256, max_len=FLAGS.seq_len, d_model=FLAGS.d_model,
            num_layers=FLAGS.num_layers, num_heads=FLAGS.num_heads)
        model = transformer.Transformer(cfg)
        tokens = jax.random.randint(kx, (FLAGS.batch_size, FLAGS.seq_len + 1), 0, 256)
        x, y = tokens[:, :-1], tokens[:, 1:]
        what = (f"GPT d_model {FLAGS.d_model}, {FLAGS.num_layers} layers, batch "
                f"{FLAGS.batch_size}×{FLAGS.seq_len} bytes")
    else:
        x = jax.random.normal(kx, (FLAGS.batch_size, FLAGS.dim))
        y = jax.random.randint(ky, (FLAGS.batch_size,), 0, FLAGS.classes)
        model = MLPClassifier(FLAGS.hidden, FLAGS.classes)
        what = (f"MLP {FLAGS.dim}→{FLAGS.hidden}→{FLAGS.hidden}→{FLAGS.classes}, "
                f"batch {FLAGS.batch_size}")
    params = model.init(kp, x[:1])["params"]
    return what, model.apply, params, x, y
