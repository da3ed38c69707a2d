# SPDX-License-Identifier: Apache-2.0
r"""Gradient-spike fault injection: Adam vs SPAM vs Stable-SPAM on a small MLP.

The logic of ``python -m examples.spikes.main`` (configuration: ``configs/default.py``):
:func:`train_and_evaluate` and :func:`run_optimizer` (one optimizer's run, which
``notebooks/spam.ipynb`` calls). A 2-hidden-layer tanh MLP is trained on generated
regression data (a random teacher MLP plus noise) with minibatch gradients. Every
``spike_interval`` steps (from ``spike_first``) the whole gradient is multiplied by the next
factor of ``spike_scales`` (default 1e3, 1e4, 1e5, 1e6: the SPAM paper reports spikes of up
to 1000× typical gradients in LLM training). Outputs in the workdir:

* ``metrics.jsonl``: one row per logged step and optimizer (loss, entries clipped),
* ``summary.json``: final train loss per optimizer, with and without spikes,
* ``spikes.png``: loss curves and spike-clip counts.

The default spike steps avoid SPAM's 20-step clip pause after each reset (every 500
steps): a spike that lands right on a reset reaches Adam's fresh moments unclipped.
"""

from __future__ import annotations

import json
import math
import os

import jax
import jax.numpy as jnp
import optax
from ml_collections import ConfigDict as Config
from tqdm import tqdm

import gradkit
from examples import config_checks


def scales_label(scales) -> str:
    """``(1e3, 1e4)`` → ``"×1e3, ×1e4"`` (plot titles)."""
    return ", ".join("×" + f"{float(s):.0e}".replace("e+0", "e").replace("e+", "e")
                     for s in scales)


DIM = 16


def make_data(key, num_samples: int):
    kx, k1, k2, kn = jax.random.split(key, 4)
    x = jax.random.normal(kx, (num_samples, DIM))
    w1 = jax.random.normal(k1, (DIM, 32)) / math.sqrt(DIM)
    w2 = jax.random.normal(k2, (32, 1)) / math.sqrt(32)
    y = jnp.tanh(x @ w1) @ w2 + 0.05 * jax.random.normal(kn, (num_samples, 1))
    return x, y


def init_mlp(key, hidden: int):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "dense1": {"kernel": jax.random.normal(k1, (DIM, hidden)) / math.sqrt(DIM),
                   "bias": jnp.zeros(hidden)},
        "dense2": {"kernel": jax.random.normal(k2, (hidden, hidden)) / math.sqrt(hidden),
                   "bias": jnp.zeros(hidden)},
        "head": {"kernel": jax.random.normal(k3, (hidden, 1)) / math.sqrt(hidden),
                 "bias": jnp.zeros(1)},
    }


def mlp(params, x):
    h = jnp.tanh(x @ params["dense1"]["kernel"] + params["dense1"]["bias"])
    h = jnp.tanh(h @ params["dense2"]["kernel"] + params["dense2"]["bias"])
    return h @ params["head"]["kernel"] + params["head"]["bias"]


def mse(params, x, y):
    return jnp.mean((mlp(params, x) - y) ** 2)


def make_optimizer(name: str, lr: float, steps: int) -> optax.GradientTransformation:
    if name == "adam":
        return optax.adam(lr)
    if name == "spam":
        return gradkit.spam(lr, count_interval=1)
    if name == "stable_spam":
        return gradkit.stable_spam(lr, total_steps=steps, count_interval=1)
    if name == "clip_adam":  # the composable form: clip + Adam, reset, warm-up
        return optax.chain(
            gradkit.with_periodic_reset(
                optax.chain(gradkit.clip_spikes(count_interval=1), optax.scale_by_adam()),
                reset_interval=500),
            optax.scale_by_learning_rate(gradkit.post_reset_warmup(500, 150, base=lr)))
    raise ValueError(f"unknown optimizer {name!r}")


def spike_factor(step, first: int, every: int, scales):
    if every <= 0:
        return jnp.ones([]), jnp.asarray(False)
    hit = (step >= first) & ((step - first) % every == 0)
    index = ((step - first) // every) % scales.shape[0]
    return jnp.where(hit, scales[index], 1.0), hit


def run_optimizer(name: str, spikes: bool, cfg: Config, progress: bool = True) -> list[dict]:
    """Trains one optimizer, with or without the injected spikes; returns the logged rows."""
    key = jax.random.key(cfg.seed)
    kd, kp, kb = jax.random.split(key, 3)
    x, y = make_data(kd, cfg.num_samples)
    params = init_mlp(kp, cfg.hidden)
    opt = make_optimizer(name, cfg.learning_rate, cfg.steps)
    scales = jnp.asarray([float(s) for s in cfg.spike_scales])
    every = cfg.spike_interval if spikes else 0

    def one_step(carry, step):
        params, state = carry
        idx = jax.random.randint(jax.random.fold_in(kb, step), (cfg.batch_size,), 0,
                                 cfg.num_samples)
        loss, grads = jax.value_and_grad(mse)(params, x[idx], y[idx])
        factor, hit = spike_factor(step, cfg.spike_first, every, scales)
        grads = jax.tree.map(lambda g: g * factor, grads)
        updates, state = opt.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        clipped = optax.tree_utils.tree_get(state, "num_clipped", jnp.zeros([], jnp.int32))
        return (params, state), (loss, clipped, hit)

    @jax.jit
    def chunk(carry, start):
        steps = start + jnp.arange(cfg.log_interval)
        carry, (loss, clipped, hit) = jax.lax.scan(one_step, carry, steps)
        full_loss = mse(carry[0], x, y)
        return carry, (full_loss, jnp.mean(loss), jnp.sum(clipped), jnp.any(hit))

    carry = (params, opt.init(params))
    rows = []
    label = f"{name}{'' if spikes else ' (clean)'}"
    for start in tqdm(range(0, cfg.steps, cfg.log_interval), desc=label, leave=False,
                      disable=not progress):
        carry, (full_loss, batch_loss, clipped, hit) = chunk(carry, start)
        rows.append({
            "optimizer": name, "spikes": spikes, "step": start + cfg.log_interval,
            "train_loss": float(full_loss), "batch_loss": float(batch_loss),
            "num_clipped": int(clipped), "spike_in_chunk": bool(hit),
        })
    return rows


def plot(rows: list[dict], cfg: Config, path: str) -> None:
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    fig = Figure(figsize=(8, 7))
    ax_loss, ax_clip = fig.subplots(2, 1, sharex=True)
    colors = {"adam": "tab:red", "spam": "tab:blue", "stable_spam": "tab:green",
              "clip_adam": "tab:purple"}
    for name in cfg.optimizers:
        for spikes, style in ((True, "-"), (False, ":")):
            sel = [r for r in rows if r["optimizer"] == name and r["spikes"] == spikes]
            if not sel:
                continue
            ax_loss.plot([r["step"] for r in sel], [r["train_loss"] for r in sel], style,
                         color=colors.get(name), label=f"{name}{'' if spikes else ' (clean)'}")
            if spikes:
                ax_clip.plot([r["step"] for r in sel], [r["num_clipped"] for r in sel],
                             color=colors.get(name), label=name)
    if cfg.spike_interval > 0:
        for s in range(cfg.spike_first, cfg.steps, cfg.spike_interval):
            ax_loss.axvline(s, color="gray", alpha=0.3, lw=0.8)
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("train loss (full data)")
    ax_loss.legend(fontsize=8)
    ax_loss.set_title("Injected gradient spikes " + scales_label(cfg.spike_scales))
    ax_clip.set_ylabel(f"entries clipped per {cfg.log_interval} steps")
    ax_clip.set_yscale("symlog")
    ax_clip.set_ylim(bottom=0)
    ax_clip.set_xlabel("step")
    ax_clip.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def validate(config) -> None:
    """Raises ``ValueError`` naming the first invalid field of ``config``."""
    config_checks.check_positive_ints(config, "steps", "hidden", "num_samples", "batch_size",
                                      "log_interval")
    config_checks.check_learning_rates(config, "learning_rate")
    if config.spike_interval < 0:
        raise ValueError("config.spike_interval must be ≥ 0 (0: no spikes), got "
                         f"{config.spike_interval!r}.")


def train_and_evaluate(config: Config, workdir: str) -> dict:
    """Runs every optimizer (spiked, and clean if ``also_clean``); writes metrics.jsonl,
    summary.json and spikes.png to ``workdir``; returns the summary
    ``{name or name_clean: {"final_train_loss", "total_clipped"}}``."""
    validate(config)
    progress = config.progress
    cfg = config
    os.makedirs(workdir, exist_ok=True)
    rows = []
    for name in cfg.optimizers:
        rows += run_optimizer(name, True, cfg, progress)
        if cfg.also_clean:
            rows += run_optimizer(name, False, cfg, progress)
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    summary = {}
    for name in cfg.optimizers:
        for spikes in (True, False):
            sel = [r for r in rows if r["optimizer"] == name and r["spikes"] == spikes]
            if sel:
                key = name + ("" if spikes else "_clean")
                summary[key] = {"final_train_loss": sel[-1]["train_loss"],
                                "total_clipped": sum(r["num_clipped"] for r in sel)}
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    plot(rows, cfg, os.path.join(workdir, "spikes.png"))
    return summary


def summary_table(summary: dict, optimizers) -> str:
    """Markdown table: final loss with and without spikes, their ratio, entries clipped."""
    lines = ["| optimizer | final loss (spikes) | final loss (clean) | ratio | clipped |",
             "|---|---|---|---|---|"]
    for name in optimizers:
        s, c = summary.get(name), summary.get(name + "_clean")
        ratio = f"{s['final_train_loss'] / c['final_train_loss']:.2f}" if c else "-"
        clean = f"{c['final_train_loss']:.3e}" if c else "-"
        lines.append(f"| {name} | {s['final_train_loss']:.3e} | {clean} | {ratio} | "
                     f"{s['total_clipped']} |")
    return "\n".join(lines)
