# SPDX-License-Identifier: Apache-2.0
"""Small generated tasks for the four multi-gradient methods (importable logic, no flags).

Each ``run_<experiment>(config, workdir)`` trains on generated data, appends rows to
``<workdir>/metrics.jsonl``, saves ``<workdir>/<experiment>.png`` and returns a summary
dict (also written to ``<workdir>/<experiment>_summary.json``). ``config`` is any object
with the attributes listed in each function (``configs/default.py``).

* ``pcgrad_toy``: the 2-D two-task landscape (CAGrad's version of PCGrad's Figure 1):
  Adam on the summed loss vs PCGrad→Adam from the same starting points.
* ``gcond_toy``: two regression heads on a shared trunk; GCond classical vs stochastic
  accumulation (same steps, half the gradient evaluations) and plain summed gradients.
* ``adadagrad``: a generated 10-class Gaussian-mixture classifier; AdaGrad with the
  AdAdaGrad norm test growing the batch from 8 vs fixed-batch AdaGrad.
* ``sven``: the reference notebook's 1-D regression f(x) = exp(−10x²)·sin 2x with an
  MLP 1-16-16-16-1 (GELU), batch 128: Sven (lr 0.1, k 64) vs Adam 1e-3.
"""

from __future__ import annotations

import json
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
from tqdm import tqdm

import gradkit
from examples import config_checks

matplotlib.use("Agg")
import itertools

import matplotlib.pyplot as plt

EXPERIMENTS = ("pcgrad_toy", "gcond_toy", "adadagrad", "sven")


def _write(workdir: str, name: str, rows: list[dict], summary: dict) -> None:
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
        for row in rows:
            f.write(json.dumps({"experiment": name, **row}) + "\n")
    with open(os.path.join(workdir, f"{name}_summary.json"), "w") as f:
        json.dump(summary, f, indent=2)


def _dense_init(key, sizes):
    """PyTorch nn.Linear's default init: U(±1/√fan_in) for weights and biases."""
    params = []
    for k, (n_in, n_out) in zip(jax.random.split(key, len(sizes) - 1),
                                itertools.pairwise(sizes), strict=True):
        kw, kb = jax.random.split(k)
        bound = 1.0 / math.sqrt(n_in)
        params.append({"w": jax.random.uniform(kw, (n_in, n_out), minval=-bound, maxval=bound),
                       "b": jax.random.uniform(kb, (n_out,), minval=-bound, maxval=bound)})
    return params


def _mlp(params, x, act):
    for layer in params[:-1]:
        x = act(x @ layer["w"] + layer["b"])
    return x @ params[-1]["w"] + params[-1]["b"]


# ---------------------------------------------------------------------------------------
# PCGrad: 2-D toy
# ---------------------------------------------------------------------------------------

_LOWER = 5e-6


def toy_losses(theta: jax.Array) -> jax.Array:
    """The two task losses of the 2-D toy (CAGrad's adaptation of PCGrad's Figure 1)."""
    x1, x2 = theta[0], theta[1]
    f1 = jnp.log(jnp.maximum(jnp.abs(0.5 * (-x1 - 7) - jnp.tanh(-x2)), _LOWER)) + 6
    f2 = jnp.log(jnp.maximum(jnp.abs(0.5 * (-x1 + 3) + jnp.tanh(-x2) + 2), _LOWER)) + 6
    c1 = jnp.maximum(jnp.tanh(0.5 * x2), 0.0)
    c2 = jnp.maximum(jnp.tanh(-0.5 * x2), 0.0)
    f1_sq = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    f2_sq = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
    return jnp.stack([f1 * c1 + f1_sq * c2, f2 * c1 + f2_sq * c2])


def toy_trajectory(method: str, start, steps: int, learning_rate: float = 1e-3,
                   record_every: int = 100):
    """Adam on L1 + L2 (``"adam"``) or PCGrad then Adam (``"pcgrad"``) from ``start``."""
    opt = optax.adam(learning_rate)
    if method == "pcgrad":
        opt = optax.chain(gradkit.pcgrad(0), opt)
    theta = jnp.asarray(start, jnp.float32)

    def body(carry, _):
        theta, state = carry
        jac = jax.jacrev(toy_losses)(theta)  # (2 tasks, 2 params)
        grads = jac if method == "pcgrad" else jac.sum(0)
        updates, state = opt.update(grads, state, theta)
        theta = optax.apply_updates(theta, updates)
        return (theta, state), theta

    @jax.jit
    def run(theta):
        _, path = jax.lax.scan(body, (theta, opt.init(theta)), length=steps)
        return path[record_every - 1::record_every]

    return np.asarray(run(theta))


def run_pcgrad_toy(config: Any, workdir: str) -> dict:
    """config: toy_steps, toy_starts (pairs (x, y)), learning_rate_toy."""
    os.makedirs(workdir, exist_ok=True)
    starts = [tuple(float(v) for v in s) for s in config.toy_starts]
    rows, summary = [], {"steps": config.toy_steps, "runs": []}
    paths = {}
    for start in tqdm(starts, desc="pcgrad toy"):
        for method in ("adam", "pcgrad"):
            path = toy_trajectory(method, start, config.toy_steps, config.learning_rate_toy,
                                  record_every=max(1, config.toy_steps // 200))
            paths[(start, method)] = path
            losses = np.asarray(jax.vmap(toy_losses)(jnp.asarray(path)))
            final = losses[-1]
            run = {"start": list(start), "method": method, "final_theta": path[-1].tolist(),
                   "final_loss_sum": float(final.sum()), "final_losses": final.tolist()}
            summary["runs"].append(run)
            rows.append(run)
    x, y = np.meshgrid(np.linspace(-10, 10, 200), np.linspace(-10, 10, 200))
    grid = np.asarray(jax.vmap(toy_losses)(jnp.stack([x.ravel(), y.ravel()], 1))).sum(1)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.contourf(x, y, grid.reshape(x.shape), levels=40, cmap="viridis")
    for (start, method), path in paths.items():
        ax.plot(path[:, 0], path[:, 1], "-", color="w" if method == "pcgrad" else "r",
                lw=1.5, label=method if start == starts[0] else None)
        ax.plot(*start, "ko")
    ax.set_title(f"L1 + L2, {config.toy_steps} steps (white: PCGrad, red: Adam)")
    ax.legend(loc="upper right")
    fig.savefig(os.path.join(workdir, "pcgrad_toy.png"), dpi=110)
    plt.close(fig)
    _write(workdir, "pcgrad_toy", rows, summary)
    return summary


# ---------------------------------------------------------------------------------------
# GCond: two regression heads on shared features
# ---------------------------------------------------------------------------------------

def make_two_task_data(key, num: int, dim: int = 8, task_seed: int = 1234):
    """Inputs and noise from `key`; the two target functions from `task_seed` (shared by
    the train and validation sets)."""
    kx, kn = jax.random.split(key)
    ka, kb = jax.random.split(jax.random.key(task_seed))
    x = jax.random.normal(kx, (num, dim))
    a = jax.random.normal(ka, (dim,)) / math.sqrt(dim)
    b = jax.random.normal(kb, (dim,)) / math.sqrt(dim)
    y1 = jnp.sin(2 * x @ a) + 0.5 * (x @ b)
    y2 = -jnp.sin(2 * x @ a) + jnp.cos(2 * x @ b)  # partly opposed to task 1
    noise = 0.05 * jax.random.normal(kn, (num, 2))
    return x, jnp.stack([y1, y2], 1) + noise


def _two_head_init(key, dim, hidden):
    k1, k2, k3 = jax.random.split(key, 3)
    return {"trunk": _dense_init(k1, [dim, hidden, hidden]),
            "head1": _dense_init(k2, [hidden, 1]), "head2": _dense_init(k3, [hidden, 1])}


def _two_head_losses(params, batch):
    x, y = batch
    h = jnp.tanh(_mlp(params["trunk"], x, jnp.tanh))
    p1 = _mlp(params["head1"], h, jnp.tanh)[:, 0]
    p2 = _mlp(params["head2"], h, jnp.tanh)[:, 0]
    return jnp.stack([jnp.mean((p1 - y[:, 0]) ** 2), jnp.mean((p2 - y[:, 1]) ** 2)])


def gcond_train(mode: str, config: Any, data, val, key):
    """mode: "stochastic" / "classical" (GCond) or "sum" (Adam on L1 + L2, classical
    accumulation). Returns (per-log rows, gradient evaluations)."""
    x, y = data
    n_micro, micro = config.gcond_micro_batches, config.gcond_micro_batch_size
    params = _two_head_init(jax.random.key(config.seed), x.shape[1], config.gcond_hidden)
    if mode == "sum":
        opt = optax.adam(config.gcond_learning_rate)
    else:
        # The reference advises b1 = 0 in the optimizer: GCond supplies the momentum.
        opt = optax.chain(gradkit.gcond(num_tasks=2),
                          optax.adam(config.gcond_learning_rate, b1=0.0))
    state = opt.init(params)

    def task_loss(p, b, task):
        return _two_head_losses(p, b)[task]

    @jax.jit
    def step(params, state, key):
        idx = jax.random.randint(key, (n_micro, micro), 0, x.shape[0])
        batches = (x[idx], y[idx])
        grads, _ = gradkit.gcond_accumulate(task_loss, params, batches, 2,
                                            stochastic=(mode == "stochastic"))
        if mode == "sum":
            grads = jax.tree.map(lambda g: g.sum(0), grads)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    evals_per_step = n_micro if mode == "stochastic" else 2 * n_micro
    rows = []
    val_loss = jax.jit(_two_head_losses)
    keys = jax.random.split(key, config.gcond_steps)
    for t in tqdm(range(config.gcond_steps), desc=f"gcond {mode}", leave=False):
        params, state = step(params, state, keys[t])
        if (t + 1) % config.log_interval == 0 or t + 1 == config.gcond_steps:
            v = np.asarray(val_loss(params, val))
            rows.append({"mode": mode, "step": t + 1, "grad_evals": (t + 1) * evals_per_step,
                         "val_loss1": float(v[0]), "val_loss2": float(v[1]),
                         "val_loss": float(v.sum())})
    return rows


def run_gcond_toy(config: Any, workdir: str) -> dict:
    """config: gcond_steps, gcond_micro_batches, gcond_micro_batch_size, gcond_hidden,
    gcond_learning_rate, gcond_seeds, log_interval, seed."""
    os.makedirs(workdir, exist_ok=True)
    key = jax.random.key(config.seed)
    data = make_two_task_data(jax.random.fold_in(key, 1), 4096)
    val = make_two_task_data(jax.random.fold_in(key, 2), 2048)
    rows, finals = [], {}
    for seed in range(config.gcond_seeds):
        for mode in ("classical", "stochastic", "sum"):
            r = gcond_train(mode, config, data, val, jax.random.fold_in(key, 100 + seed))
            for row in r:
                row["seed"] = seed
            rows += r
            finals.setdefault(mode, []).append(r[-1])
    summary = {mode: {"val_loss_mean": float(np.mean([f["val_loss"] for f in fs])),
                      "val_loss_per_seed": [f["val_loss"] for f in fs],
                      "grad_evals": fs[0]["grad_evals"]} for mode, fs in finals.items()}
    summary["steps"] = config.gcond_steps
    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, color in (("classical", "C0"), ("stochastic", "C1"), ("sum", "C2")):
        for seed in range(config.gcond_seeds):
            r = [row for row in rows if row["mode"] == mode and row["seed"] == seed]
            ax.plot([row["grad_evals"] for row in r], [row["val_loss"] for row in r],
                    color=color, alpha=0.8, label=mode if seed == 0 else None)
    ax.set_xlabel("gradient evaluations")
    ax.set_ylabel("val L1 + L2")
    ax.set_yscale("log")
    ax.legend()
    fig.savefig(os.path.join(workdir, "gcond_toy.png"), dpi=110)
    plt.close(fig)
    _write(workdir, "gcond_toy", rows, summary)
    return summary


# ---------------------------------------------------------------------------------------
# AdAdaGrad: adaptive batch size on a generated classifier
# ---------------------------------------------------------------------------------------

def make_mixture(key, num: int, dim: int = 20, classes: int = 10, scale: float = 1.2):
    """A Gaussian mixture: class centers N(0, scale²·I), unit-variance clusters."""
    kc, kx, kl = jax.random.split(key, 3)
    centers = scale * jax.random.normal(kc, (classes, dim))
    labels = jax.random.randint(kl, (num,), 0, classes)
    x = centers[labels] + jax.random.normal(kx, (num, dim))
    return x, labels


def _clf_loss(params, example):
    x, label = example
    logits = _mlp(params, x[None], jax.nn.relu)[0]
    return -jax.nn.log_softmax(logits)[label]


def adadagrad_train(adaptive: bool, config: Any, data, key):
    """AdaGrad (optax.adagrad) with fixed batch ``ada_initial_batch`` or AdAdaGrad's
    norm test growing it (bucketed to powers of 2 up to ``ada_max_batch``)."""
    x, labels = data
    params = _dense_init(jax.random.key(config.seed), [x.shape[1], config.ada_hidden, 10])
    opt = (gradkit.adagrad_norm(config.ada_learning_rate) if config.ada_optimizer ==
           "adagrad_norm" else optax.adagrad(config.ada_learning_rate))
    state = opt.init(params)
    controller = gradkit.AdaptiveBatchSize(config.ada_initial_batch, config.ada_max_batch)

    @jax.jit
    def step(params, state, idx):
        batch = (x[idx], labels[idx])
        stats, grad = gradkit.per_sample_statistics_from_loss(
            _clf_loss, params, batch, chunk_size=min(idx.shape[0], 64))
        proposal = gradkit.adadagrad_batch_size_from_statistics(
            stats, config.ada_test, eta=config.ada_eta, theta=config.ada_theta, nu=config.ada_nu)
        updates, state = opt.update(grad, state, params)
        return optax.apply_updates(params, updates), state, proposal

    full_loss = jax.jit(lambda p: jnp.mean(jax.vmap(_clf_loss, in_axes=(None, 0))(p, data)))
    rows, samples, reached = [], 0, None
    for t in tqdm(range(config.ada_steps), desc=f"adadagrad adaptive={adaptive}", leave=False):
        b = controller.batch_size
        key, sub = jax.random.split(key)
        idx = jax.random.randint(sub, (b,), 0, x.shape[0])
        params, state, proposal = step(params, state, idx)
        samples += b
        if adaptive:
            controller.update(int(proposal))
        if (t + 1) % config.ada_eval_interval == 0:
            loss = float(full_loss(params))
            rows.append({"adaptive": adaptive, "step": t + 1, "batch_size": b,
                         "samples": samples, "train_loss": loss, "proposal": int(proposal)})
            if reached is None and loss <= config.ada_target_loss:
                reached = {"step": t + 1, "samples": samples}
    return rows, reached, controller.history


def run_adadagrad(config: Any, workdir: str) -> dict:
    """config: ada_steps, ada_initial_batch, ada_max_batch, ada_hidden, ada_learning_rate,
    ada_optimizer, ada_test, ada_eta, ada_theta, ada_nu, ada_target_loss, ada_eval_interval,
    seed."""
    os.makedirs(workdir, exist_ok=True)
    key = jax.random.key(config.seed)
    data = make_mixture(jax.random.fold_in(key, 1), config.ada_num_samples,
                        scale=config.ada_center_scale)
    rows, summary = [], {"target_loss": config.ada_target_loss}
    for adaptive in (False, True):
        r, reached, history = adadagrad_train(adaptive, config, data,
                                              jax.random.fold_in(key, 7))
        rows += r
        name = "adaptive" if adaptive else "fixed"
        summary[name] = {"reached": reached, "final_loss": r[-1]["train_loss"],
                         "final_batch": history[-1],
                         "monotone": all(a <= b for a, b in itertools.pairwise(history)),
                         "samples": r[-1]["samples"]}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for adaptive, color in ((False, "C0"), (True, "C1")):
        r = [row for row in rows if row["adaptive"] == adaptive]
        label = "AdAdaGrad (norm test)" if adaptive else f"fixed b={config.ada_initial_batch}"
        axes[0].plot([row["step"] for row in r], [row["train_loss"] for row in r], color=color,
                     label=label)
        axes[1].plot([row["step"] for row in r], [row["batch_size"] for row in r], color=color)
    axes[0].axhline(config.ada_target_loss, color="k", ls=":")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("full-data train loss")
    axes[0].legend()
    axes[1].set_yscale("log")
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("batch size")
    fig.savefig(os.path.join(workdir, "adadagrad.png"), dpi=110)
    plt.close(fig)
    _write(workdir, "adadagrad", rows, summary)
    return summary


# ---------------------------------------------------------------------------------------
# Sven: 1-D regression from the reference notebook
# ---------------------------------------------------------------------------------------

def make_regression(key, num_train: int, num_val: int):
    kt, kv = jax.random.split(key)
    xt = jax.random.uniform(kt, (num_train, 1), minval=-1.0, maxval=1.0)
    xv = jax.random.uniform(kv, (num_val, 1), minval=-1.0, maxval=1.0)
    f = lambda x: jnp.exp(-10 * x**2) * jnp.sin(2 * x)  # noqa: E731
    yt, yv = f(xt), f(xv)
    mean, std = yt.mean(), yt.std(ddof=1)
    return (xt, (yt - mean) / std), (xv, (yv - mean) / std), (mean, std)


def _gelu(x):
    return jax.nn.gelu(x, approximate=False)  # torch.nn.GELU's default (erf)


def _per_sample_mse(params, x, y):
    return jnp.sum((_mlp(params, x, _gelu) - y) ** 2, axis=-1)


def sven_train(method: str, config: Any, train, val):
    x, y = train
    params = _dense_init(jax.random.key(config.seed), [1, 16, 16, 16, 1])
    if method == "sven":
        opt = gradkit.sven(config.sven_learning_rate, k=config.sven_k, rtol=config.sven_rtol)
    else:
        opt = optax.adam(config.adam_learning_rate)
    state = opt.init(params)
    bs = config.sven_batch_size
    steps = x.shape[0] // bs

    def body(carry, idx):
        params, state = carry
        xb, yb = x[idx], y[idx]
        losses_fn = lambda p: _per_sample_mse(p, xb, yb)  # noqa: E731
        if method == "sven":
            updates, state = opt.update(params, state, params, per_sample_loss_fn=losses_fn)
            loss = losses_fn(params).mean()
        else:
            loss, grads = jax.value_and_grad(lambda p: losses_fn(p).mean())(params)
            updates, state = opt.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), loss

    @jax.jit
    def epoch(params, state, key):
        # Shuffled batches; the last partial batch is dropped (fixed shapes).
        perm = jax.random.permutation(key, x.shape[0])[: steps * bs].reshape(steps, bs)
        (params, state), losses = jax.lax.scan(body, (params, state), perm)
        return params, state, losses.mean()

    val_mse = jax.jit(lambda p: jnp.mean(_per_sample_mse(p, *val)))
    rows = [{"method": method, "epoch": 0, "val_mse": float(val_mse(params))}]
    key = jax.random.key(config.seed + 1)
    start = time.perf_counter()
    for e in tqdm(range(config.sven_epochs), desc=f"sven {method}", leave=False):
        params, state, train_loss = epoch(params, state, jax.random.fold_in(key, e))
        rows.append({"method": method, "epoch": e + 1, "train_mse": float(train_loss),
                     "val_mse": float(val_mse(params)),
                     "wall_s": time.perf_counter() - start})
    return rows, params


def run_sven(config: Any, workdir: str) -> dict:
    """config: sven_methods, sven_epochs, sven_num_train, sven_batch_size,
    sven_learning_rate, sven_k, sven_rtol, adam_learning_rate, seed."""
    os.makedirs(workdir, exist_ok=True)
    train, val, (mean, std) = make_regression(jax.random.key(config.seed),
                                              config.sven_num_train, config.sven_num_train)
    rows, summary, fits = [], {"epochs": config.sven_epochs}, {}
    for method in config.sven_methods:
        r, params = sven_train(method, config, train, val)
        rows += r
        fits[method] = params
        summary[method] = {"train_mse": r[-1]["train_mse"], "val_mse": r[-1]["val_mse"],
                           "wall_s": r[-1]["wall_s"]}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for method in config.sven_methods:
        r = [row for row in rows if row["method"] == method and row["epoch"] > 0]
        axes[0].plot([row["epoch"] for row in r], [row["train_mse"] for row in r],
                     label=f"{method} train")
        axes[0].plot([row["epoch"] for row in r], [row["val_mse"] for row in r], "--",
                     label=f"{method} val")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("epoch")
    axes[0].legend()
    xs = jnp.linspace(-1, 1, 400)[:, None]
    axes[1].plot(xs, (jnp.exp(-10 * xs**2) * jnp.sin(2 * xs) - mean) / std, "k", lw=2,
                 label="f (standardised)")
    for method, params in fits.items():
        axes[1].plot(xs, _mlp(params, xs, _gelu), "--", label=method)
    axes[1].legend()
    fig.savefig(os.path.join(workdir, "sven.png"), dpi=110)
    plt.close(fig)
    _write(workdir, "sven", rows, summary)
    return summary


RUNNERS = {"pcgrad_toy": run_pcgrad_toy, "gcond_toy": run_gcond_toy,
           "adadagrad": run_adadagrad, "sven": run_sven}


def validate(config) -> None:
    """Raises ``ValueError`` naming the first invalid field of ``config``."""
    config_checks.check_positive_ints(config, "toy_steps", "gcond_steps", "gcond_micro_batches",
                                      "gcond_micro_batch_size", "ada_steps",
                                      "ada_initial_batch", "ada_max_batch",
                                      "ada_eval_interval", "sven_epochs", "sven_batch_size",
                                      "log_interval")
    config_checks.check_learning_rates(config, "learning_rate_toy", "gcond_learning_rate",
                                       "ada_learning_rate", "sven_learning_rate",
                                       "adam_learning_rate")
    unknown = [e for e in config.experiments if e not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"config.experiments: unknown {unknown}; choose among {EXPERIMENTS}.")


def train_and_evaluate(config: Any, workdir: str) -> dict:
    """Runs ``config.experiments`` (names from EXPERIMENTS); returns their summaries."""
    validate(config)
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "metrics.jsonl")
    if os.path.exists(path):
        os.remove(path)
    return {name: RUNNERS[name](config, workdir) for name in config.experiments}
