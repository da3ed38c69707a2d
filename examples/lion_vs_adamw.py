r"""Lion vs AdamW on a generated classification task (a small Flax MLP).

Labels come from a random "teacher" MLP and every step draws a fresh batch, so the
data needs no download and the comparison measures optimisation, not overfitting
(test loss is measured on a fixed held-out sample). Following
the Lion paper's advice, Lion gets a learning rate 10× smaller and a weight decay
10× larger than AdamW's.

  python examples/lion_vs_adamw.py --steps=2000 --workdir=/tmp/lion_vs_adamw

Writes `metrics.jsonl` (one line per optimizer per eval) and `loss.png` to --workdir.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from absl import app
from absl import flags
from tqdm import tqdm

import gradkit
from gradkit.models.mlp import MLPClassifier

FLAGS = flags.FLAGS
flags.DEFINE_integer("steps", 2000, "Training steps per optimizer.")
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_integer("num_test", 2048, "Test examples.")
flags.DEFINE_integer("width", 128, "Hidden width of the student MLP.")
flags.DEFINE_float("adamw_lr", 3e-3, "AdamW learning rate.")
flags.DEFINE_float("adamw_wd", 1e-2, "AdamW weight decay.")
flags.DEFINE_float("lion_lr", 3e-4, "Lion learning rate (paper: 3-10x below AdamW's).")
flags.DEFINE_float("lion_wd", 1e-1, "Lion weight decay (paper: 3-10x above AdamW's).")
flags.DEFINE_integer("eval_every", 50, "Evaluate every this many steps.")
flags.DEFINE_integer("seed", 0, "Random seed (data, init and batches).")
flags.DEFINE_string("workdir", "/tmp/gradkit_lion_vs_adamw", "Output directory.")

NUM_FEATURES, NUM_CLASSES = 32, 10




TEACHER = MLPClassifier(hidden=64, classes=NUM_CLASSES, activation=nn.relu)
TEACHER_PARAMS = TEACHER.init(jax.random.key(1234), jnp.zeros((1, NUM_FEATURES)))


def teacher_batch(key: jax.Array, num: int) -> tuple[jax.Array, jax.Array]:
    """Gaussian inputs labelled by a fixed random teacher MLP (the argmax class)."""
    x = jax.random.normal(key, (num, NUM_FEATURES))
    return x, jnp.argmax(TEACHER.apply(TEACHER_PARAMS, x), axis=-1)


def train(name: str, optimizer: optax.GradientTransformation, seed: int):
    x_test, y_test = teacher_batch(jax.random.key(seed + 1), FLAGS.num_test)
    model = MLPClassifier(hidden=FLAGS.width, classes=NUM_CLASSES, activation=nn.relu)
    params = model.init(jax.random.key(seed), x_test[:1])
    opt_state = optimizer.init(params)

    def loss_fn(params, x, y):
        logits = model.apply(params, x)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, jnp.mean(jnp.argmax(logits, -1) == y)

    @jax.jit
    def step(params, opt_state, key):
        x, y = teacher_batch(key, FLAGS.batch_size)
        (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    evaluate = jax.jit(loss_fn)
    batch_key = jax.random.key(seed + 2)
    records = []
    start = time.perf_counter()
    for t in tqdm(range(1, FLAGS.steps + 1), desc=name, leave=False):
        params, opt_state, loss = step(params, opt_state, jax.random.fold_in(batch_key, t))
        if t % FLAGS.eval_every == 0 or t == FLAGS.steps:
            test_loss, test_acc = evaluate(params, x_test, y_test)
            records.append(dict(optimizer=name, step=t, train_loss=float(loss),
                                test_loss=float(test_loss), test_accuracy=float(test_acc),
                                seconds=time.perf_counter() - start))
    return records


def plot(records: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name in dict.fromkeys(r["optimizer"] for r in records):
        rows = [r for r in records if r["optimizer"] == name]
        steps = [r["step"] for r in rows]
        axes[0].plot(steps, [r["test_loss"] for r in rows], label=name)
        axes[1].plot(steps, [r["test_accuracy"] for r in rows], label=name)
    axes[0].set(xlabel="step", ylabel="test loss", yscale="log")
    axes[1].set(xlabel="step", ylabel="test accuracy")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str]) -> None:
    del argv
    os.makedirs(FLAGS.workdir, exist_ok=True)
    optimizers = {
        "adamw": optax.adamw(FLAGS.adamw_lr, weight_decay=FLAGS.adamw_wd),
        "lion": gradkit.lion(FLAGS.lion_lr, weight_decay=FLAGS.lion_wd),
    }
    records = []
    for name, optimizer in optimizers.items():
        records += train(name, optimizer, FLAGS.seed)
    with open(os.path.join(FLAGS.workdir, "metrics.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    plot(records, os.path.join(FLAGS.workdir, "loss.png"))

    print("\n| optimizer | final test loss | final test accuracy | seconds |")
    print("|---|---|---|---|")
    for name in optimizers:
        last = [r for r in records if r["optimizer"] == name][-1]
        print(f"| {name} | {last['test_loss']:.4f} | {last['test_accuracy']:.3f} "
              f"| {last['seconds']:.1f} |")
    print(f"\nmetrics and plot written to {FLAGS.workdir}")


if __name__ == "__main__":
    app.run(main)
