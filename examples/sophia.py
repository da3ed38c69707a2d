r"""Sophia-G / Sophia-H vs AdamW on a generated softmax-classification task.

Each optimizer's learning rate is tuned by a small sweep; the reported number is the
number of steps until the held-out cross-entropy first reaches ``--target_loss`` with
the best learning rate of each optimizer (fewest steps, ties broken by final loss).

The task: inputs x ~ N(0, I_d); labels are sampled from the softmax of a random
teacher MLP (so the best achievable loss is the teacher's conditional entropy, which
is printed); the student is an MLP (d → hidden → hidden → classes, GELU). Every step
draws a fresh minibatch (online, single-epoch training like LM pre-training), so the
held-out loss measures optimisation, not overfitting. The paper's own task (GPT-2 on
OpenWebText) is far beyond a CPU; this is a stand-in until the LM reference model
lands.

    python examples/sophia.py --workdir=/tmp/sophia
    python examples/sophia.py --workdir=/tmp/sophia_tiny --steps=20 --eval_every=10 \
        --num_eval=64 --hidden=16 --sweep_lrs=1e-3

Writes ``metrics.jsonl`` (one line per evaluation of every run), ``summary.json`` and
``loss.png`` to ``--workdir``.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import matplotlib
import optax
from absl import app
from absl import flags
from tqdm import tqdm

import gradkit
from gradkit.models.mlp import MLPClassifier

matplotlib.use("Agg")
import matplotlib.pyplot as plt

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", "/tmp/gradkit_sophia", "Output folder.")
flags.DEFINE_list("optimizers", ["adamw", "sophia_g", "sophia_h"], "Optimizers to compare.")
flags.DEFINE_list("sweep_lrs", ["1e-3", "3e-3", "1e-2", "3e-2"], "Learning rates swept.")
flags.DEFINE_integer("steps", 1000, "Training steps per run.")
flags.DEFINE_integer("eval_every", 20, "Evaluate the held-out loss every this many steps.")
flags.DEFINE_integer("batch_size", 128, "Minibatch size.")
flags.DEFINE_integer("num_eval", 2048, "Held-out set size.")
flags.DEFINE_integer("dim", 32, "Input dimension.")
flags.DEFINE_integer("hidden", 128, "Student hidden width.")
flags.DEFINE_integer("classes", 10, "Number of classes.")
flags.DEFINE_float("teacher_scale", 5.0, "Teacher logit scale (higher: less label noise).")
flags.DEFINE_float("target_loss", 1.05, "Held-out cross-entropy that counts as reached.")
flags.DEFINE_float("weight_decay", 0.0, "Decoupled weight decay for every optimizer.")
flags.DEFINE_integer("update_interval", 10, "Sophia's Hessian refresh period k.")
flags.DEFINE_float("sophia_gamma", None, "Sophia's γ; default: the paper's (0.05 G, 0.01 H).")
flags.DEFINE_integer("seed", 0, "Seed for data, init and estimators.")




class Teacher:
    """A random MLP whose softmax (times a scale) defines p(y | x), x ~ N(0, I)."""

    def __init__(self, seed, dim, classes, scale):
        self.module = MLPClassifier(hidden=64, classes=classes)
        kt, kx = jax.random.split(jax.random.key(seed + 1000))
        self.params = self.module.init(kt, jnp.zeros((1, dim)))
        probe = self.module.apply(self.params, jax.random.normal(kx, (4096, dim)))
        self.scale = scale / float(jnp.std(probe))
        self.dim = dim

    def logits(self, x):
        return self.scale * self.module.apply(self.params, x)

    def sample(self, key, n):
        """A fresh batch (x, y): online data, every step sees new samples."""
        kx, ky = jax.random.split(key)
        x = jax.random.normal(kx, (n, self.dim))
        return x, jax.random.categorical(ky, self.logits(x))

    def entropy(self, x):
        logp = jax.nn.log_softmax(self.logits(x))
        return float(-jnp.mean(jnp.sum(jnp.exp(logp) * logp, -1)))


def make_schedule(lr, steps, warmup_frac=0.05, final_frac=0.05):
    """Linear warm-up then cosine decay to `final_frac`·lr, as in the paper's runs."""
    warmup = max(int(warmup_frac * steps), 1)
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, steps, final_frac * lr)


def make_optimizer(name, lr, *, steps, weight_decay, update_interval, seed, gamma=None):
    schedule = make_schedule(lr, steps)
    if name == "adamw":
        return optax.adamw(schedule, b1=0.9, b2=0.95, weight_decay=weight_decay)
    if name in ("sophia_g", "sophia_h"):
        return gradkit.sophia(schedule, estimator="gnb" if name == "sophia_g" else "hutchinson",
                              gamma=gamma, weight_decay=weight_decay,
                              update_interval=update_interval, seed=seed)
    raise ValueError(f"unknown optimizer {name!r}")


def train(name, lr, teacher, eval_data, *, steps, eval_every, batch_size, hidden, classes,
          weight_decay, update_interval, seed, gamma=None):
    """Trains one run; returns [(step, eval_loss, win_rate)] every `eval_every` steps."""
    xe, ye = eval_data
    model = MLPClassifier(hidden=hidden, classes=classes)
    params = model.init(jax.random.key(seed), xe[:1])["params"]
    opt = make_optimizer(name, lr, steps=steps, weight_decay=weight_decay,
                         update_interval=update_interval, seed=seed, gamma=gamma)
    state = opt.init(params)

    def loss(params, x, y):
        logits = model.apply({"params": params}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def step(carry, key):
        params, state = carry
        x, y = teacher.sample(key, batch_size)
        extra = gradkit.sophia_extra_args(model.apply, x, y)
        grads = jax.grad(loss)(params, x, y)
        updates, state = opt.update(grads, state, params, **extra)
        return (optax.apply_updates(params, updates), state), None

    @jax.jit
    def chunk(params, state, keys):
        (params, state), _ = jax.lax.scan(step, (params, state), keys)
        win = optax.tree_utils.tree_get(state, "win_rate", default=jnp.float32(jnp.nan))
        return params, state, loss(params, xe, ye), win

    base = jax.random.PRNGKey(seed + 1)
    history = [(0, float(loss(params, xe, ye)), float("nan"))]
    for i in range(steps // eval_every):
        keys = jax.random.split(jax.random.fold_in(base, i), eval_every)
        params, state, eval_loss, win = chunk(params, state, keys)
        history.append(((i + 1) * eval_every, float(eval_loss), float(win)))
    return history


def steps_to_target(history, target):
    for step, loss, _ in history:
        if loss <= target:
            return step
    return None


def run(argv: Sequence[str] | None = None) -> dict:
    del argv
    os.makedirs(FLAGS.workdir, exist_ok=True)
    teacher = Teacher(FLAGS.seed, FLAGS.dim, FLAGS.classes, FLAGS.teacher_scale)
    eval_data = teacher.sample(jax.random.key(FLAGS.seed + 2000), FLAGS.num_eval)
    entropy = teacher.entropy(eval_data[0])
    lrs = [float(v) for v in FLAGS.sweep_lrs]
    runs = [(name, lr) for name in FLAGS.optimizers for lr in lrs]
    common = dict(steps=FLAGS.steps, eval_every=FLAGS.eval_every,
                  batch_size=FLAGS.batch_size, hidden=FLAGS.hidden, classes=FLAGS.classes,
                  weight_decay=FLAGS.weight_decay, update_interval=FLAGS.update_interval,
                  seed=FLAGS.seed, gamma=FLAGS.sophia_gamma)
    results = {}
    metrics_path = os.path.join(FLAGS.workdir, "metrics.jsonl")
    with open(metrics_path, "w") as f:
        for name, lr in tqdm(runs, desc="runs"):
            t0 = time.perf_counter()
            history = train(name, lr, teacher, eval_data, **common)
            seconds = time.perf_counter() - t0
            for step, loss, win in history:
                f.write(json.dumps({"optimizer": name, "lr": lr, "step": step,
                                    "eval_loss": loss,
                                    "win_rate": None if math.isnan(win) else win}) + "\n")
            results[(name, lr)] = (history, seconds)

    summary = {"teacher_entropy": entropy, "target_loss": FLAGS.target_loss, "best": {}}
    for name in FLAGS.optimizers:
        def key(lr, name=name):
            history = results[(name, lr)][0]
            reached = steps_to_target(history, FLAGS.target_loss)
            final = history[-1][1] if math.isfinite(history[-1][1]) else math.inf
            return (reached if reached is not None else math.inf, final)

        best_lr = min(lrs, key=key)
        history = results[(name, best_lr)][0]
        summary["best"][name] = {
            "lr": best_lr,
            "steps_to_target": steps_to_target(history, FLAGS.target_loss),
            "final_eval_loss": history[-1][1],
            "final_win_rate": None if math.isnan(history[-1][2]) else history[-1][2],
            "sweep": {str(lr): {"steps_to_target": steps_to_target(
                results[(name, lr)][0], FLAGS.target_loss),
                "final_eval_loss": results[(name, lr)][0][-1][1]} for lr in lrs},
        }
    with open(os.path.join(FLAGS.workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in FLAGS.optimizers:
        best = summary["best"][name]
        history = results[(name, best["lr"])][0]
        ax.plot([h[0] for h in history], [h[1] for h in history],
                label=f"{name} (lr={best['lr']:g})")
    ax.axhline(FLAGS.target_loss, color="gray", ls="--", lw=0.8, label="target")
    ax.axhline(entropy, color="k", ls=":", lw=0.8, label="teacher entropy")
    ax.set_xlabel("step")
    ax.set_ylabel("held-out cross-entropy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(FLAGS.workdir, "loss.png"), dpi=100)
    plt.close(fig)

    print(f"teacher entropy {entropy:.4f}; target loss {FLAGS.target_loss}")
    print("| optimizer | best lr | steps to target | final held-out loss |")
    print("|---|---|---|---|")
    for name, best in summary["best"].items():
        print(f"| {name} | {best['lr']:g} | {best['steps_to_target']} | "
              f"{best['final_eval_loss']:.4f} |")
    return summary


def main(argv):
    run(argv)


if __name__ == "__main__":
    app.run(main)
