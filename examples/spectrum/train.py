# SPDX-License-Identifier: Apache-2.0
r"""Curvature diagnostics on generated data: edge of stability and bulk + outliers.

The logic of ``python -m examples.spectrum.main``: :func:`train_and_evaluate` runs one of

- :func:`edge_of_stability`: full-batch GD (or full-batch Adam) on a small tanh MLP with the
  squared loss on a generated Gaussian-mixture classification set (Cohen et al. 2021's
  setting at CPU size: their tanh/ReLU MLPs on a 5k subset of CIFAR-10 with MSE). Every
  ``sharpness_interval`` steps :func:`gradkit.track_sharpness` measures λ_max(H) by Lanczos
  (and, for Adam, the preconditioned λ_max(P⁻¹H) with :func:`gradkit.adam_preconditioner`),
  logged with the loss to ``metrics.jsonl``; ``summary.json`` has the plateau (mean of the
  measured value from its first measurement at ≥ ``reach_fraction`` of the threshold to
  the end of training) divided by the threshold
  2/η (GD) or (2+2β₁)/((1−β₁)η) (Adam; 38/η at β₁ = 0.9).
- :func:`bulk_outliers`: trains a small classifier (cross-entropy) on a C-class Gaussian
  mixture for several C, then computes the top of the Hessian spectrum (Lanczos, full
  re-orthogonalisation) and the SLQ density; the number of outliers (eigenvalues above the
  largest gap among the top ``num_top``) is compared with C (Sagun et al. 2017; Papyan 2019
  relates the outliers to the C class means of the logit gradients).
"""

from __future__ import annotations

import glob
import json
import math
import os
import time
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict as Config

import gradkit
from examples import config_checks

# --- Data and model ------------------------------------------------------------------


def gaussian_mixture(num_examples: int, dim: int, classes: int, separation: float,
                     seed: int) -> tuple[jax.Array, jax.Array]:
    """x = μ_y + N(0, I), μ_c ~ separation·N(0, I/dim) per class; balanced labels y."""
    k_mu, k_x = jax.random.split(jax.random.key(seed))
    means = separation * jax.random.normal(k_mu, (classes, dim)) / math.sqrt(dim) * 3.0
    labels = jnp.arange(num_examples) % classes
    x = means[labels] + jax.random.normal(k_x, (num_examples, dim))
    return x, labels


class MLP(nn.Module):
    """``depth`` hidden Dense layers of ``width`` with tanh, then a linear head."""

    width: int
    depth: int
    classes: int

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth):
            x = jnp.tanh(nn.Dense(self.width)(x))
        return nn.Dense(self.classes)(x)


# --- Edge of stability -----------------------------------------------------------------


def _mse(model, params, x, targets):
    return 0.5 * jnp.mean(jnp.sum((model.apply({"params": params}, x) - targets) ** 2, -1))


def edge_of_stability(config: Config, workdir: str, progress: bool = True) -> dict:
    """Trains full batch, tracking (preconditioned) sharpness; writes metrics/summary/plot."""
    os.makedirs(workdir, exist_ok=True)
    x, labels = gaussian_mixture(config.num_examples, config.dim, config.classes,
                                 config.separation, config.seed)
    targets = jax.nn.one_hot(labels, config.classes)
    model = MLP(config.width, config.depth, config.classes)
    params = model.init(jax.random.key(config.seed + 1), x[:1])["params"]

    def loss_fn(p):
        return _mse(model, p, x, targets)

    if config.optimizer == "gd":
        inner = optax.sgd(config.learning_rate)
        pre_fn, threshold = None, gradkit.edge_of_stability_threshold(config.learning_rate)
    elif config.optimizer == "adam":
        inner = optax.adam(config.learning_rate, b1=config.b1, b2=config.b2, eps=config.eps)

        def pre_fn(state):
            return gradkit.adam_preconditioner(state, b1=config.b1, b2=config.b2,
                                               eps=config.eps)

        threshold = gradkit.edge_of_stability_threshold(config.learning_rate, b1=config.b1)
    else:
        raise ValueError(f"config.optimizer must be 'gd' or 'adam', got {config.optimizer!r}.")
    opt = gradkit.track_sharpness(inner, sharpness_interval=config.sharpness_interval,
                                  num_iterations=config.lanczos_iterations,
                                  preconditioner_fn=pre_fn, key=config.seed)

    def step(carry, _):
        params, state = carry
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, state = opt.update(grads, state, params, obj_fn=loss_fn)
        return (optax.apply_updates(params, updates), state), loss

    @jax.jit
    def chunk(params, state):  # `sharpness_interval` steps; the first one measures
        (params, state), losses = jax.lax.scan(step, (params, state),
                                               length=config.sharpness_interval)
        return params, state, losses

    state = opt.init(params)
    rows = []
    bar = _progress(config.num_steps, progress)
    start = time.time()
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
        for t0 in range(0, config.num_steps, config.sharpness_interval):
            params, state, losses = chunk(params, state)
            row = {"step": t0, "loss": float(losses[0]),
                   "sharpness": float(state.sharpness), "threshold": threshold}
            if pre_fn is not None:
                row["preconditioned_sharpness"] = float(state.preconditioned_sharpness)
            rows.append(row)
            f.write(json.dumps(row) + "\n")
            if bar is not None:
                bar.update(config.sharpness_interval)
                bar.set_postfix(loss=f"{row['loss']:.4f}", sharp=f"{row['sharpness']:.1f}")
    if bar is not None:
        bar.close()
    key = "sharpness" if pre_fn is None else "preconditioned_sharpness"
    # Plateau: every measurement from the first one at ≥ reach_fraction·threshold on.
    reached = next((i for i, r in enumerate(rows)
                    if math.isfinite(r[key]) and r[key] >= config.reach_fraction * threshold),
                   None)
    tail = [r[key] for r in rows[reached:]] if reached is not None else [float("nan")]
    plateau = float(np.mean(tail))
    summary = {
        "optimizer": config.optimizer, "learning_rate": config.learning_rate,
        "threshold": threshold, "tracked": key,
        "initial_sharpness": rows[0]["sharpness"],
        "max_tracked": float(np.nanmax([r[key] for r in rows])),
        "reached_at_step": rows[reached]["step"] if reached is not None else None,
        "plateau": plateau, "plateau_over_threshold": plateau / threshold,
        "plateau_std_over_threshold": float(np.std(tail)) / threshold,
        "final_loss": rows[-1]["loss"], "num_params": _size(params),
        "seconds": time.time() - start, "config": config.to_dict(),
    }
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def plot_edge_of_stability(workdirs: Sequence[str], out_path: str) -> None:
    """Loss, tracked sharpness / threshold, and the raw λ_max(H), one colour per run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_ratio, ax_raw) = plt.subplots(1, 3, figsize=(15, 4))
    for i, workdir in enumerate(workdirs):
        rows = _read_jsonl(os.path.join(workdir, "metrics.jsonl"))
        with open(os.path.join(workdir, "summary.json")) as f:
            summary = json.load(f)
        steps = [r["step"] for r in rows]
        label = f"{summary['optimizer']} η={summary['learning_rate']:g}"
        color = f"C{i}"
        ax_loss.plot(steps, [r["loss"] for r in rows], color=color, label=label)
        what = "λ₁(P⁻¹H)·(1−β₁)η/(2+2β₁)" if summary["optimizer"] == "adam" else "λ₁(H)·η/2"
        ax_ratio.plot(steps, [r[summary["tracked"]] / summary["threshold"] for r in rows],
                      color=color, label=f"{label}: {what}")
        ax_raw.semilogy(steps, [r["sharpness"] for r in rows], color=color, label=label)
        if summary["optimizer"] == "gd":
            ax_raw.axhline(summary["threshold"], color=color, ls="--", lw=1)
    ax_ratio.axhline(1.0, color="k", ls="--", lw=1)
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("train loss (full batch)")
    ax_ratio.set_ylabel("tracked sharpness / stability threshold")
    ax_raw.set_ylabel("λ_max(H) (dashed: 2/η of the GD runs)")
    for ax in (ax_loss, ax_ratio, ax_raw):
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)


# --- Bulk + outliers -----------------------------------------------------------------


def count_outliers(eigenvalues: Sequence[float]) -> int:
    """Number of eigenvalues above the largest ratio gap λ_i/λ_{i+1} among the positive ones.

    The bulk edge is placed at the largest multiplicative gap between consecutive
    (descending) positive eigenvalues; every eigenvalue before it is an outlier.
    """
    vals = np.asarray([v for v in eigenvalues if v > 0], np.float64)
    if len(vals) < 2:
        return len(vals)
    ratios = vals[:-1] / vals[1:]
    return int(np.argmax(ratios)) + 1


def bulk_outliers(config: Config, workdir: str, progress: bool = True) -> dict:
    """Top Hessian eigenvalues and SLQ density after training, for each number of classes."""
    os.makedirs(workdir, exist_ok=True)
    results = []
    bar = _progress(len(config.classes), progress)
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
        for classes in config.classes:
            x, labels = gaussian_mixture(config.num_examples, config.dim, classes,
                                         config.separation, config.seed)
            model = MLP(config.width, config.depth, classes)
            params = model.init(jax.random.key(config.seed + 1), x[:1])["params"]

            def loss_fn(p, model=model, x=x, labels=labels):
                logits = model.apply({"params": p}, x)
                return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

            opt = optax.sgd(config.learning_rate, momentum=0.9)

            @jax.jit
            def train(params, loss_fn=loss_fn, opt=opt):
                def step(carry, _):
                    params, state = carry
                    grads = jax.grad(loss_fn)(params)
                    updates, state = opt.update(grads, state, params)
                    return (optax.apply_updates(params, updates), state), None

                (params, _), _ = jax.lax.scan(step, (params, opt.init(params)),
                                              length=config.train_steps)
                return params

            params = train(params)
            logits = model.apply({"params": params}, x)
            accuracy = float(jnp.mean(jnp.argmax(logits, -1) == labels))
            vals, _ = gradkit.hessian_top_eigenvalues(
                loss_fn, params, k=config.num_top, num_iterations=config.lanczos_iterations,
                key=config.seed)
            sd = gradkit.hessian_spectral_density(
                loss_fn, params, num_iterations=config.slq_iterations,
                num_probes=config.slq_probes, grid_len=2000, key=config.seed)
            trace = gradkit.hessian_trace(loss_fn, params, num_samples=50, key=config.seed)
            vals = [float(v) for v in vals]
            row = {"classes": classes, "loss": float(loss_fn(params)), "accuracy": accuracy,
                   "num_params": _size(params), "top_eigenvalues": vals,
                   "outliers": count_outliers(vals),
                   "trace": float(trace.trace), "trace_std_error": float(trace.std_error),
                   "density_grid": np.asarray(sd.grid).tolist()[::4],
                   "density": np.asarray(sd.density).tolist()[::4]}
            results.append(row)
            f.write(json.dumps(row) + "\n")
            if bar is not None:
                bar.update(1)
                bar.set_postfix(classes=classes, outliers=row["outliers"])
    if bar is not None:
        bar.close()
    summary = {"classes": [r["classes"] for r in results],
               "outliers": [r["outliers"] for r in results],
               "accuracy": [r["accuracy"] for r in results],
               "loss": [r["loss"] for r in results],
               "config": config.to_dict()}
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    plot_bulk_outliers(results, os.path.join(workdir, "outliers.png"))
    return summary


def plot_bulk_outliers(results: Sequence[dict[str, Any]], out_path: str) -> None:
    """Top eigenvalues (log scale) per C with the outlier count, and the SLQ densities."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_top, ax_dens) = plt.subplots(1, 2, figsize=(11, 4))
    for i, r in enumerate(results):
        vals = np.asarray(r["top_eigenvalues"])
        ax_top.semilogy(np.arange(1, len(vals) + 1), np.maximum(vals, 1e-6), "o-", ms=3,
                        color=f"C{i}", label=f"C={r['classes']}: {r['outliers']} outliers")
        ax_top.axvline(r["outliers"] + 0.5, color=f"C{i}", ls=":", lw=1)
        ax_dens.semilogy(r["density_grid"], np.maximum(r["density"], 1e-8), color=f"C{i}",
                         label=f"C={r['classes']}")
    ax_top.set_xlabel("eigenvalue index (descending)")
    ax_top.set_ylabel("Hessian eigenvalue (Lanczos)")
    ax_top.legend(fontsize=8)
    ax_dens.set_xlabel("eigenvalue")
    ax_dens.set_ylabel("SLQ density (Gaussian-broadened)")
    ax_dens.set_ylim(1e-5, None)
    ax_dens.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
    plt.close(fig)


# --- Helpers ---------------------------------------------------------------------------


def _size(params) -> int:
    return int(sum(np.prod(np.shape(a)) for a in jax.tree.leaves(params)))


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is in the [examples] extra
        return None
    return tqdm(total=total)


def _read_jsonl(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


EXPERIMENTS = ("eos", "eos_plot", "outliers")


def validate(config: Config) -> None:
    """Raises ``ValueError`` naming the first invalid field of ``config``."""
    if config.experiment not in EXPERIMENTS:
        raise ValueError(
            f"config.experiment must be one of {EXPERIMENTS}, got {config.experiment!r}.")
    config_checks.check_positive_ints(config.eos, "num_steps", "sharpness_interval",
                                      "lanczos_iterations", "num_examples", "width",
                                      where="config.eos")
    config_checks.check_learning_rates(config.eos, "learning_rate", where="config.eos")
    config_checks.check_positive_ints(config.outliers, "train_steps", "num_top",
                                      "lanczos_iterations", "slq_iterations", "num_examples",
                                      where="config.outliers")
    config_checks.check_learning_rates(config.outliers, "learning_rate",
                                       where="config.outliers")


def train_and_evaluate(config: Config, workdir: str) -> dict:
    """Runs ``config.experiment``; returns its summary.

    ``eos``: :func:`edge_of_stability` of ``config.eos`` in
    ``<workdir>/eos_<optimizer>_lr<learning_rate>`` (with its ``eos.png``); ``eos_plot``:
    ``<workdir>/eos.png`` from every ``eos`` run in ``workdir``, returns each run's plateau
    over threshold; ``outliers``: :func:`bulk_outliers` of ``config.outliers`` in
    ``<workdir>/outliers``.
    """
    validate(config)
    if config.experiment == "eos":
        eos = config.eos
        run = os.path.join(workdir, f"eos_{eos.optimizer}_lr{eos.learning_rate:g}")
        summary = edge_of_stability(eos, run, progress=config.progress)
        plot_edge_of_stability([run], os.path.join(run, "eos.png"))
        return summary
    if config.experiment == "eos_plot":
        runs = sorted(glob.glob(os.path.join(workdir, "eos_*", "summary.json")))
        runs_dirs = [os.path.dirname(r) for r in runs]
        plot_edge_of_stability(runs_dirs, os.path.join(workdir, "eos.png"))
        out = {}
        for run_dir, path in zip(runs_dirs, runs, strict=True):
            with open(path) as f:
                out[os.path.basename(run_dir)] = json.load(f)["plateau_over_threshold"]
        return out
    return bulk_outliers(config.outliers, os.path.join(workdir, "outliers"),
                         progress=config.progress)
