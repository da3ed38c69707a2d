# SPDX-License-Identifier: Apache-2.0
r"""Lion vs AdamW on a generated classification task (a small Flax MLP).

The logic of ``python -m examples.lion_vs_adamw.main`` (configuration: ``configs/default.py``):
:func:`train_and_evaluate`. Labels come from a random "teacher" MLP and every step draws a
fresh batch, so the data needs no download and the comparison measures optimisation, not
overfitting (test loss is measured on a fixed held-out sample). Following the Lion paper's
advice, Lion gets a learning rate 10× smaller and a weight decay 10× larger than AdamW's.

Writes ``metrics.jsonl`` (one line per optimizer per evaluation) and ``loss.png``.
"""

from __future__ import annotations

import json
import os
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from ml_collections import ConfigDict as Config
from tqdm import tqdm

import gradkit
from examples import config_checks
from gradkit.models.mlp import MLP

NUM_FEATURES, NUM_CLASSES, TEACHER_WIDTH, TEACHER_SEED = 32, 10, 64, 1234


def _mlp(width: int) -> MLP:
    return MLP((width, width, NUM_CLASSES), activation=nn.relu)


def teacher_params():
    """The fixed random teacher's parameters (the same in every run)."""
    return _mlp(TEACHER_WIDTH).init(jax.random.key(TEACHER_SEED), jnp.zeros((1, NUM_FEATURES)))


def teacher_batch(key: jax.Array, num: int, teacher) -> tuple[jax.Array, jax.Array]:
    """Gaussian inputs labelled by the teacher MLP with params ``teacher`` (argmax class)."""
    x = jax.random.normal(key, (num, NUM_FEATURES))
    return x, jnp.argmax(_mlp(TEACHER_WIDTH).apply(teacher, x), axis=-1)


def train_one(name: str, optimizer: optax.GradientTransformation, config: Config,
              progress: bool = True) -> list[dict]:
    """Trains a fresh student with ``optimizer``; returns one record per evaluation."""
    seed = config.seed
    teacher = teacher_params()
    x_test, y_test = teacher_batch(jax.random.key(seed + 1), config.num_test, teacher)
    model = _mlp(config.width)
    params = model.init(jax.random.key(seed), x_test[:1])
    opt_state = optimizer.init(params)

    def loss_fn(params, x, y):
        logits = model.apply(params, x)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, jnp.mean(jnp.argmax(logits, -1) == y)

    @jax.jit
    def step(params, opt_state, key):
        x, y = teacher_batch(key, config.batch_size, teacher)
        (loss, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    evaluate = jax.jit(loss_fn)
    batch_key = jax.random.key(seed + 2)
    records = []
    start = time.perf_counter()
    for t in tqdm(range(1, config.steps + 1), desc=name, leave=False, disable=not progress):
        params, opt_state, loss = step(params, opt_state, jax.random.fold_in(batch_key, t))
        if t % config.eval_interval == 0 or t == config.steps:
            test_loss, test_acc = evaluate(params, x_test, y_test)
            records.append(dict(optimizer=name, step=t, train_loss=float(loss),
                                test_loss=float(test_loss), test_accuracy=float(test_acc),
                                seconds=time.perf_counter() - start))
    return records


def plot(records: list[dict], path: str) -> None:
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
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


def validate(config) -> None:
    """Raises ``ValueError`` naming the first invalid field of ``config``."""
    config_checks.check_positive_ints(config, "steps", "batch_size", "num_test", "width",
                                      "eval_interval")
    config_checks.check_learning_rates(config, "adamw_lr", "adamw_wd", "lion_lr", "lion_wd")


def train_and_evaluate(config: Config, workdir: str) -> dict:
    """Trains AdamW and Lion; writes metrics.jsonl and loss.png to ``workdir``; returns
    each optimizer's last record (final test loss/accuracy, seconds)."""
    validate(config)
    progress = config.progress
    os.makedirs(workdir, exist_ok=True)
    optimizers = {
        "adamw": optax.adamw(config.adamw_lr, weight_decay=config.adamw_wd),
        "lion": gradkit.lion(config.lion_lr, weight_decay=config.lion_wd),
    }
    records = []
    for name, optimizer in optimizers.items():
        records += train_one(name, optimizer, config, progress)
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    plot(records, os.path.join(workdir, "loss.png"))
    return {name: [r for r in records if r["optimizer"] == name][-1] for name in optimizers}


def summary_table(final: dict) -> str:
    """Markdown table of :func:`train_and_evaluate`'s result."""
    lines = ["| optimizer | final test loss | final test accuracy | seconds |", "|---|---|---|---|"]
    for name, last in final.items():
        lines.append(f"| {name} | {last['test_loss']:.4f} | {last['test_accuracy']:.3f} "
                     f"| {last['seconds']:.1f} |")
    return "\n".join(lines)
