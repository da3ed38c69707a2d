# SPDX-License-Identifier: Apache-2.0
r"""Layer-level gradient rules on generated image-like data: TrAct, ReSTE, Ghost BatchNorm.

The logic of ``python -m examples.layers.main`` (configuration: ``configs/default.py``).
Three experiments:

* ``tract``: a small CNN whose first 4×4 patch conv is plain or TrAct (λ = 0.1), same init,
  same batches, for each optimizer setting; epochs until the test accuracy first reaches
  ``tract_target`` (the paper: 1.25-4× fewer epochs with TrAct).
* ``reste``: a binarised MLP (full-precision first and last layers, two 1W/1A
  ``BinaryDense`` layers with BatchNorm) trained with the clipped STE, with ReSTE under
  its o schedule 1 → 3, and with ReSTE at fixed powers o; per epoch the paper's two
  indicators (fitting error Σ‖f_o(w) − sign(w)‖, gradient instability Σ Var|∂L/∂w| over
  the binary layers) and the test accuracy.
* ``ghost_bn``: Ghost BatchNorm with ghost size = batch against ``nn.BatchNorm``
  (outputs, gradients, running statistics), then a large-batch run with BatchNorm vs
  Ghost BatchNorm (ghost 128) and the paper's recipe (lr × √(B/128), gradient-norm
  clipping at 5) next to the small-batch baseline.

The data (``make_images``) are oriented colour gratings: the class is the orientation
(``num_classes`` angles evenly spaced in [0, π)), with random frequency, phase, colour,
contrast, a random smooth background and pixel noise, standardised per channel. No
downloads. Every run appends rows to ``metrics.jsonl`` in the workdir.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict as Config
from tqdm import tqdm

import gradkit
from examples import config_checks
from gradkit import layers

# ----------------------------------------------------------------------------- data


def make_images(key: jax.Array, num: int, size: int, num_classes: int, noise: float):
    """Oriented colour gratings (N, size, size, 3) and their orientation labels."""
    keys = jax.random.split(key, 8)
    labels = jax.random.randint(keys[0], (num,), 0, num_classes)
    theta = jnp.pi * labels / num_classes
    freq = jax.random.uniform(keys[1], (num,), minval=1.5, maxval=3.5)  # cycles per image
    phase = jax.random.uniform(keys[2], (num,), maxval=2 * jnp.pi)
    colour = jax.random.uniform(keys[3], (num, 3), minval=0.2, maxval=1.0)
    contrast = jax.random.uniform(keys[4], (num,), minval=0.3, maxval=1.0)
    grid = jnp.linspace(0.0, 1.0, size)
    yy, xx = jnp.meshgrid(grid, grid, indexing="ij")
    proj = (jnp.cos(theta)[:, None, None] * xx + jnp.sin(theta)[:, None, None] * yy)
    wave = jnp.sin(2 * jnp.pi * freq[:, None, None] * proj + phase[:, None, None])
    img = contrast[:, None, None, None] * wave[..., None] * colour[:, None, None, :]
    # Smooth random background: a random linear ramp per channel.
    ramp = jax.random.normal(keys[5], (num, 3, 3)) * 0.5
    background = (ramp[:, 0][:, None, None, :] * xx[None, ..., None]
                  + ramp[:, 1][:, None, None, :] * yy[None, ..., None] + ramp[:, 2][:, None, None])
    img = img + background + noise * jax.random.normal(keys[6], img.shape) * 0.5
    return img.astype(jnp.float32), labels


def make_templates(template_key: jax.Array, key: jax.Array, num: int, size: int,
                   num_classes: int, noise: float):
    """Noisy copies of one smooth random colour template per class (N, size, size, 3).

    Templates are 4×4×3 Gaussian patterns upsampled bilinearly (fixed by
    ``template_key``); each sample is template·contrast + brightness + 2·noise·N(0, 1).
    """
    k_lab, k_con, k_bri, k_noise = jax.random.split(key, 4)
    coarse = jax.random.normal(template_key, (num_classes, 4, 4, 3))
    templates = jax.image.resize(coarse, (num_classes, size, size, 3), "bilinear")
    labels = jax.random.randint(k_lab, (num,), 0, num_classes)
    contrast = jax.random.uniform(k_con, (num, 1, 1, 1), minval=0.5, maxval=1.0)
    brightness = 0.5 * jax.random.normal(k_bri, (num, 1, 1, 3))
    img = templates[labels] * contrast + brightness
    img = img + 2.0 * noise * jax.random.normal(k_noise, img.shape)
    return img.astype(jnp.float32), labels


def make_dataset(cfg: Config, seed: int, kind: str = "gratings"):
    """Train and test sets (``kind``: "gratings" or "templates"), standardised with the
    training set's per-channel statistics."""
    k_train, k_test = jax.random.split(jax.random.key(1000 + seed))
    if kind == "templates":
        k_tpl = jax.random.key(5000 + seed)  # the same class templates for train and test
        x_tr, y_tr = make_templates(k_tpl, k_train, cfg.num_train, cfg.image_size,
                                    cfg.num_classes, cfg.reste_noise)
        x_te, y_te = make_templates(k_tpl, k_test, cfg.num_test, cfg.image_size,
                                    cfg.num_classes, cfg.reste_noise)
    else:
        x_tr, y_tr = make_images(k_train, cfg.num_train, cfg.image_size, cfg.num_classes,
                                 cfg.noise)
        x_te, y_te = make_images(k_test, cfg.num_test, cfg.image_size, cfg.num_classes,
                                 cfg.noise)
    mean, std = x_tr.mean((0, 1, 2)), x_tr.std((0, 1, 2))
    return ((x_tr - mean) / std, y_tr), ((x_te - mean) / std, y_te)


# ----------------------------------------------------------------------------- models


class SmallCNN(nn.Module):
    """4×4/4 patch conv (plain or TrAct; the first layer) → ReLU → 1×1 conv → ReLU → mean
    pool → Dense: a patch-embedding CNN small enough for a CPU."""

    width: int
    num_classes: int
    tract: bool = False
    lam: float = 0.1

    @nn.compact
    def __call__(self, x):
        if self.tract:
            first = layers.TrActConv(self.width, (4, 4), strides=4, padding="VALID",
                                     lam=self.lam, name="first")
        else:
            first = nn.Conv(self.width, (4, 4), strides=4, padding="VALID", name="first")
        x = nn.relu(first(x))
        x = nn.relu(nn.Conv(2 * self.width, (1, 1))(x))
        return nn.Dense(self.num_classes)(x.mean((1, 2)))


class BinaryMLP(nn.Module):
    """FP Dense → BN → [BinaryDense (1W/1A) → BN] × 2 → FP Dense head."""

    hidden: int
    num_classes: int
    estimator: str = "reste"

    @nn.compact
    def __call__(self, x, o, train: bool):
        x = x.reshape((x.shape[0], -1))
        x = nn.Dense(self.hidden)(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        for i in range(2):
            x = layers.BinaryDense(self.hidden, use_bias=False, estimator=self.estimator,
                                   name=f"binary_{i}")(x, o)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
        return nn.Dense(self.num_classes)(x)


class BNCNN(nn.Module):
    """Conv → (Ghost)BN → ReLU, twice, mean pool, Dense; ``ghost`` = 0 uses nn.BatchNorm."""

    width: int
    num_classes: int
    ghost: int = 0

    @nn.compact
    def __call__(self, x, train: bool):
        for i, stride in enumerate((2, 2)):
            x = nn.Conv(self.width * (i + 1), (3, 3), strides=stride, use_bias=False)(x)
            if self.ghost:
                x = layers.GhostBatchNorm(self.ghost, use_running_average=not train,
                                          name=f"norm_{i}")(x)
            else:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9,
                                 name=f"norm_{i}")(x)
            x = nn.relu(x)
        return nn.Dense(self.num_classes)(x.mean((1, 2)))


# ----------------------------------------------------------------------------- training


def _xent(logits, labels):
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def _accuracy(logits, labels):
    return jnp.mean(jnp.argmax(logits, -1) == labels)


def make_optimizer(spec: str, steps: int) -> optax.GradientTransformation:
    """``"sgd:LR"`` (momentum 0.9) or ``"adam:LR"``, constant learning rate."""
    name, lr = spec.split(":")
    lr = float(lr)
    if name == "sgd":
        return optax.sgd(lr, momentum=0.9)
    if name == "adam":
        return optax.adam(lr)
    raise ValueError(f"unknown optimizer {spec!r} (use sgd:LR or adam:LR)")


def _epoch_batches(key, num: int, batch: int):
    perm = jax.random.permutation(key, num)
    steps = num // batch
    return perm[: steps * batch].reshape(steps, batch)


def train_tract(cfg: Config, method: str, opt_spec: str, seed: int, data,
                log: Callable[[dict], None], input_scale: float = 1.0) -> list[dict]:
    """One run of the CNN with a plain or TrAct first layer on inputs × ``input_scale``
    (standardised images times a contrast factor); a row per epoch."""
    (x_tr, y_tr), (x_te, y_te) = data
    x_tr, x_te = input_scale * x_tr, input_scale * x_te
    model = SmallCNN(cfg.width, cfg.num_classes, tract=method == "tract", lam=cfg.tract_lam)
    params = model.init(jax.random.key(seed), x_tr[:2])["params"]
    steps_per_epoch = cfg.num_train // cfg.batch_size
    opt = make_optimizer(opt_spec, cfg.tract_epochs * steps_per_epoch)
    opt_state = opt.init(params)

    def loss_fn(params, x, y):
        return _xent(model.apply({"params": params}, x), y)

    @jax.jit
    def epoch(params, opt_state, key):
        def step(carry, idx):
            params, opt_state = carry
            loss, grads = jax.value_and_grad(loss_fn)(params, x_tr[idx], y_tr[idx])
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        batches = _epoch_batches(key, cfg.num_train, cfg.batch_size)
        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), batches)
        acc = _accuracy(model.apply({"params": params}, x_te), y_te)
        return params, opt_state, losses.mean(), acc

    rows = []
    key = jax.random.key(10_000 + seed)
    for e in range(1, cfg.tract_epochs + 1):
        key, sub = jax.random.split(key)
        params, opt_state, loss, acc = epoch(params, opt_state, sub)
        row = {"experiment": "tract", "method": method, "optimizer": opt_spec,
               "input_scale": input_scale, "seed": seed, "epoch": e,
               "train_loss": float(loss), "test_accuracy": float(acc)}
        rows.append(row)
        log(row)
    return rows


def epochs_to_target(rows: list[dict], target: float) -> int | None:
    """First epoch whose test accuracy reaches ``target`` (None if none does)."""
    for row in rows:
        if row["test_accuracy"] >= target:
            return row["epoch"]
    return None


def _binary_kernels(params) -> list[jax.Array]:
    return [params[name]["kernel"] for name in sorted(params) if name.startswith("binary_")]


def train_reste(cfg: Config, method: str, seed: int, data, log: Callable[[dict], None],
                fixed_o: float | None = None) -> list[dict]:
    """One binarised-MLP run: ``method`` "ste", "reste" (o schedule) or "reste_fixed"."""
    (x_tr, y_tr), (x_te, y_te) = data
    estimator = "ste" if method == "ste" else "reste"
    model = BinaryMLP(cfg.reste_hidden, cfg.num_classes, estimator=estimator)
    variables = model.init(jax.random.key(seed), x_tr[:2], 1.0, train=False)
    params, stats = variables["params"], variables["batch_stats"]
    steps_per_epoch = cfg.num_train // cfg.batch_size
    total = cfg.reste_epochs * steps_per_epoch
    # The official recipe: SGD momentum 0.9, weight decay 1e-4, cosine learning rate.
    opt = optax.chain(optax.add_decayed_weights(1e-4),
                      optax.sgd(optax.cosine_decay_schedule(cfg.reste_lr, total), momentum=0.9))
    opt_state = opt.init(params)

    def loss_fn(params, stats, x, y, o):
        logits, new = model.apply({"params": params, "batch_stats": stats}, x, o, train=True,
                                  mutable=["batch_stats"])
        return _xent(logits, y), new["batch_stats"]

    @jax.jit
    def epoch(params, stats, opt_state, key, o):
        def step(carry, idx):
            params, stats, opt_state = carry
            (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, stats, x_tr[idx], y_tr[idx], o)
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), stats, opt_state), loss

        batches = _epoch_batches(key, cfg.num_train, cfg.batch_size)
        (params, stats, opt_state), losses = jax.lax.scan(step, (params, stats, opt_state),
                                                          batches)
        # The paper's indicators on the last training batch (the official code logs the
        # value of the last batch of the epoch), at the current o.
        idx = batches[-1]
        (_, _), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, x_tr[idx],
                                                                  y_tr[idx], o)
        fit = sum(gradkit.reste_fitting_error(w, o) for w in _binary_kernels(params))
        inst = sum(gradkit.reste_gradient_instability(g) for g in _binary_kernels(grads))
        logits = model.apply({"params": params, "batch_stats": stats}, x_te, o, train=False)
        return params, stats, opt_state, losses.mean(), _accuracy(logits, y_te), fit, inst

    rows = []
    key = jax.random.key(20_000 + seed)
    for e in range(cfg.reste_epochs):
        if method == "reste":
            o = gradkit.reste_o_schedule(e, cfg.reste_epochs, cfg.reste_o_end)
        else:
            o = jnp.float32(1.0 if fixed_o is None else fixed_o)
        key, sub = jax.random.split(key)
        params, stats, opt_state, loss, acc, fit, inst = epoch(params, stats, opt_state, sub, o)
        row = {"experiment": "reste", "method": method, "o": float(o),
               "fixed_o": fixed_o, "seed": seed, "epoch": e + 1, "train_loss": float(loss),
               "test_accuracy": float(acc), "fitting_error": float(fit),
               "gradient_instability": float(inst)}
        rows.append(row)
        log(row)
    return rows


def ghost_bn_equivalence(cfg: Config, data) -> dict:
    """Max |difference| of GhostBatchNorm(ghost = batch) vs nn.BatchNorm in a CNN."""
    (x_tr, y_tr), _ = data
    x, y = x_tr[: cfg.batch_size], y_tr[: cfg.batch_size]
    bn, gbn = BNCNN(cfg.width, cfg.num_classes), BNCNN(cfg.width, cfg.num_classes,
                                                        ghost=cfg.batch_size)
    v = bn.init(jax.random.key(0), x, train=False)

    def run(model):
        def loss(params):
            logits, new = model.apply({"params": params, "batch_stats": v["batch_stats"]}, x,
                                      train=True, mutable=["batch_stats"])
            return _xent(logits, y), (logits, new)

        (_, aux), grads = jax.jit(jax.value_and_grad(loss, has_aux=True))(v["params"])
        return aux, grads

    (lb, sb), gb = run(bn)
    (lg, sg), gg = run(gbn)

    def maxdiff(a, b):
        return float(max(jnp.max(jnp.abs(p - q)) for p, q in
                         zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)))

    return {"experiment": "ghost_bn_equivalence", "batch": cfg.batch_size,
            "max_abs_diff_logits": maxdiff(lb, lg), "max_abs_diff_grads": maxdiff(gb, gg),
            "max_abs_diff_running_stats": maxdiff(sb, sg)}


def train_ghost_bn(cfg: Config, method: str, seed: int, data,
                   log: Callable[[dict], None]) -> list[dict]:
    """``small_bn`` (batch 128), ``large_bn`` or ``large_gbn`` (recipe: lr·√(B/128), clip 5)."""
    (x_tr, y_tr), (x_te, y_te) = data
    batch = cfg.batch_size if method == "small_bn" else cfg.gbn_large_batch
    ghost = cfg.gbn_ghost if method == "large_gbn" else 0
    model = BNCNN(cfg.width, cfg.num_classes, ghost=ghost)
    v = model.init(jax.random.key(seed), x_tr[:2], train=False)
    params, stats = v["params"], v["batch_stats"]
    lr = cfg.gbn_lr
    parts = []
    if method != "small_bn":
        lr = lr * math.sqrt(batch / cfg.batch_size)
        parts.append(optax.clip_by_global_norm(5.0))
    opt = optax.chain(*parts, optax.sgd(lr, momentum=0.9))
    opt_state = opt.init(params)

    def loss_fn(params, stats, x, y):
        logits, new = model.apply({"params": params, "batch_stats": stats}, x, train=True,
                                  mutable=["batch_stats"])
        return _xent(logits, y), new["batch_stats"]

    @jax.jit
    def epoch(params, stats, opt_state, key):
        def step(carry, idx):
            params, stats, opt_state = carry
            (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                params, stats, x_tr[idx], y_tr[idx])
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), stats, opt_state), loss

        batches = _epoch_batches(key, cfg.num_train, batch)
        (params, stats, opt_state), losses = jax.lax.scan(step, (params, stats, opt_state),
                                                          batches)
        logits = model.apply({"params": params, "batch_stats": stats}, x_te, train=False)
        return params, stats, opt_state, losses.mean(), _accuracy(logits, y_te)

    rows = []
    key = jax.random.key(30_000 + seed)
    for e in range(1, cfg.gbn_epochs + 1):
        key, sub = jax.random.split(key)
        params, stats, opt_state, loss, acc = epoch(params, stats, opt_state, sub)
        row = {"experiment": "ghost_bn", "method": method, "batch": batch, "lr": lr,
               "seed": seed, "epoch": e, "train_loss": float(loss), "test_accuracy": float(acc)}
        rows.append(row)
        log(row)
    return rows


# ----------------------------------------------------------------------------- summaries


def summarize(rows: list[dict], cfg: Config) -> dict[str, Any]:
    """Per-experiment summary tables (medians over seeds)."""
    out: dict[str, Any] = {}
    tract = [r for r in rows if r["experiment"] == "tract"]
    if tract:
        table = []
        for opt_spec, scale in [(o, c) for c in cfg.tract_input_scales
                                for o in cfg.tract_optimizers]:
            entry = {"optimizer": opt_spec, "input_scale": scale}
            for method in ("plain", "tract"):
                per_seed = []
                finals = []
                for seed in range(cfg.seeds):
                    run = [r for r in tract if r["method"] == method
                           and r["optimizer"] == opt_spec and r["seed"] == seed
                           and r["input_scale"] == scale]
                    if not run:
                        continue
                    hit = epochs_to_target(run, cfg.tract_target)
                    per_seed.append(hit if hit is not None else math.inf)
                    finals.append(run[-1]["test_accuracy"])
                entry[f"{method}_epochs"] = per_seed
                entry[f"{method}_median_epochs"] = float(np.median(per_seed)) if per_seed else None
                entry[f"{method}_final_accuracy"] = float(np.mean(finals)) if finals else None
            table.append(entry)
        out["tract"] = {"target": cfg.tract_target, "table": table}
    reste = [r for r in rows if r["experiment"] == "reste"]
    if reste:
        table = []
        keys = sorted({(r["method"], r["fixed_o"] or 0.0) for r in reste})
        for method, fixed in keys:
            runs = [r for r in reste if r["method"] == method and (r["fixed_o"] or 0.0) == fixed]
            last = max(r["epoch"] for r in runs)
            half = [r for r in runs if r["epoch"] > last // 2]
            finals = [r for r in runs if r["epoch"] == last]
            table.append({
                "method": method, "o": fixed if method == "reste_fixed" else None,
                "final_test_accuracy": float(np.mean([r["test_accuracy"] for r in finals])),
                "final_test_accuracy_std": float(np.std([r["test_accuracy"] for r in finals])),
                "fitting_error": float(np.mean([r["fitting_error"] for r in half])),
                "gradient_instability": float(np.mean([r["gradient_instability"]
                                                       for r in half])),
            })
        out["reste"] = table
    gbn = [r for r in rows if r["experiment"] == "ghost_bn"]
    if gbn:
        last = max(r["epoch"] for r in gbn)
        out["ghost_bn"] = [
            {"method": m, "final_test_accuracy": float(np.mean(
                [r["test_accuracy"] for r in gbn if r["method"] == m and r["epoch"] == last]))}
            for m in ("small_bn", "large_bn", "large_gbn") if any(r["method"] == m for r in gbn)]
    eq = [r for r in rows if r["experiment"] == "ghost_bn_equivalence"]
    if eq:
        out["ghost_bn_equivalence"] = eq[0]
    return out


def plot(rows: list[dict], cfg: Config, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    tract = [r for r in rows if r["experiment"] == "tract"]
    ax = axes[0]
    settings = [(o, c) for c in cfg.tract_input_scales for o in cfg.tract_optimizers]
    for i, (opt_spec, scale) in enumerate(settings):
        for method, style in (("plain", "--"), ("tract", "-")):
            runs = [r for r in tract if r["method"] == method and r["optimizer"] == opt_spec
                    and r["input_scale"] == scale]
            if not runs:
                continue
            epochs = sorted({r["epoch"] for r in runs})
            acc = [np.mean([r["test_accuracy"] for r in runs if r["epoch"] == e]) for e in epochs]
            ax.plot(epochs, acc, style, color=f"C{i}", label=f"{method} {opt_spec} ×{scale:g}")
    ax.axhline(cfg.tract_target, color="k", lw=0.5)
    ax.set(xlabel="epoch", ylabel="test accuracy", title="TrAct vs plain first layer")
    ax.legend(fontsize=6)
    reste = [r for r in rows if r["experiment"] == "reste" and r["method"] == "reste_fixed"]
    ax = axes[1]
    if reste:
        for o in sorted({r["fixed_o"] for r in reste}):
            runs = [r for r in reste if r["fixed_o"] == o]
            ax.scatter(np.mean([r["fitting_error"] for r in runs]),
                       np.mean([r["gradient_instability"] for r in runs]), label=f"o={o:g}")
        ax.set(xlabel="fitting error Σ‖f_o(w) − sign(w)‖", ylabel="Σ Var|∂L/∂w|",
               yscale="log", title="ReSTE: error vs stability over o")
        ax.legend(fontsize=7)
    ax = axes[2]
    for i, method in enumerate(("ste", "reste", "small_bn", "large_bn", "large_gbn")):
        runs = [r for r in rows if r.get("method") == method]
        if not runs:
            continue
        epochs = sorted({r["epoch"] for r in runs})
        acc = [np.mean([r["test_accuracy"] for r in runs if r["epoch"] == e]) for e in epochs]
        ax.plot(epochs, acc, color=f"C{i}", label=method)
    ax.set(xlabel="epoch", ylabel="test accuracy", title="binarised MLP / Ghost BN")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def validate(config) -> None:
    """Raises ``ValueError`` naming the first invalid field of ``config``."""
    config_checks.check_positive_ints(config, "seeds", "num_train", "num_test", "batch_size",
                                      "tract_epochs", "reste_epochs", "gbn_epochs",
                                      "gbn_large_batch", "gbn_ghost")
    config_checks.check_learning_rates(config, "reste_lr", "gbn_lr")


def train_and_evaluate(config: Config, workdir: str) -> dict[str, Any]:
    """Runs the selected experiments; writes metrics.jsonl, summary.json and layers.png."""
    validate(config)
    cfg = config
    os.makedirs(workdir, exist_ok=True)
    rows: list[dict] = []
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
        def log(row):
            rows.append(row)
            f.write(json.dumps(row) + "\n")
            f.flush()

        runs = []
        for seed in range(cfg.seeds):
            if "tract" in cfg.experiments:
                runs += [("tract", m, (o, c), seed) for c in cfg.tract_input_scales
                         for o in cfg.tract_optimizers for m in ("plain", "tract")]
            if "reste" in cfg.experiments:
                runs += [("reste", m, None, seed) for m in ("ste", "reste")]
                runs += [("reste", "reste_fixed", o, seed) for o in cfg.reste_fixed_o]
            if "ghost_bn" in cfg.experiments:
                runs += [("ghost_bn", m, None, seed)
                         for m in ("small_bn", "large_bn", "large_gbn")]
        data = {}
        if "ghost_bn" in cfg.experiments:
            log(ghost_bn_equivalence(cfg, make_dataset(cfg, 0)))
        for experiment, method, arg, seed in tqdm(runs, desc="runs"):
            kind = "templates" if experiment == "reste" else "gratings"
            if (kind, seed) not in data:
                data[kind, seed] = make_dataset(cfg, seed, kind)
            if experiment == "tract":
                train_tract(cfg, method, arg[0], seed, data[kind, seed], log,
                            input_scale=arg[1])
            elif experiment == "reste":
                train_reste(cfg, method, seed, data[kind, seed], log, fixed_o=arg)
            else:
                train_ghost_bn(cfg, method, seed, data[kind, seed], log)
    summary = summarize(rows, cfg)
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    plot(rows, cfg, os.path.join(workdir, "layers.png"))
    return summary
