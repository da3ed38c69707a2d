# SPDX-License-Identifier: Apache-2.0
r"""Learning-rate schedules on the reference byte-level LM: WSD-S, WSD, cosine, the annealing
law and refined schedules (gradkit.schedules); the logic of ``python -m examples.schedules.main``.

Three claims of the papers, each on the LM of ``examples/lm`` (same init, same batches,
AdamW at its demo settings, validation loss every ``config.eval_interval`` steps):

1. **WSD-S** (Wen et al. 2024): one run with a decay at each budget T/3, 2T/3, T gives,
   at those steps, validation losses that match or beat separate WSD runs of each budget
   and separate cosine runs of each budget; cyclic cosine (one run, a full cosine per
   cycle) is the other one-run baseline. WSD decays over ``config.decay_fraction`` of its
   budget, WSD-S over that fraction of each cycle (levanter's semantics), both to
   ``config.final_fraction`` of the peak, like the LM's cosine (10%).
2. **Annealing law** (Tissue et al. 2024): fit L(s) = L₀ + A·S₁^(−α) − C·S₂ on the
   constant-rate run and the WSD run of budget T, then predict the cosine run's whole
   validation curve (and the other runs'); report mean |ΔL| over each curve. Points after
   the warm-up (step > ``config.warmup_steps``) are fitted and scored, warm-up steps count at
   the peak rate (the paper's §3.4).
3. **Refinement** (Defazio et al. 2023): the cosine run of budget T logs ‖g_t‖₁ every
   step; ``refined_schedule(..., optimizer_kind="adam")`` builds a schedule from them (with
   the same warm-up on top), and a second run uses it for the same T steps.

    python -m examples.schedules.main     # 10 runs, 4,800 steps: 34 min measured on the
                                          # shared, heavily loaded 2-core machine
    python -m examples.schedules.main --config.reuse --config.law_sensitivity  # tables again
                                                                               # + λ sensitivity

Writes ``<workdir>/<run>/metrics.jsonl`` per run (per-step ``lr``, ``grad_norm``,
``grad_norm_l1``, ``val_loss``), ``<workdir>/summary.json`` (tables and the fit) and the
plots ``budgets.png``, ``law.png``, ``refined.png``. ``config.reuse`` loads runs already
finished in ``workdir`` (same config!) instead of training them again.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from ml_collections import ConfigDict as Config

import gradkit
from examples import config_checks
from examples.lm import report
from examples.lm import trainer


def budgets(total: int, n: int) -> list[int]:
    """``[T/n, 2T/n, ..., T]`` rounded down (levanter's cycle end points)."""
    return gradkit.schedules.wsd_s_cycle_points(total, n)[1:]


def run_configs(base: Config, num_budgets: int, decay_fraction: float,
                decay_shape: str, final_fraction: float) -> dict[str, Config]:
    """The runs of claims 1 and 2 (the refined run is built later from a cosine run)."""
    T = base.num_steps
    points = budgets(T, num_budgets)
    runs = {}
    for b in points:
        runs[f"cosine_{b}"] = trainer.replace(base, num_steps=b, schedule="cosine")
        runs[f"wsd_{b}"] = trainer.replace(base, num_steps=b, schedule="wsd", schedule_kwargs={
            "decay_steps": max(1, round(decay_fraction * b)), "decay_shape": decay_shape,
            "final_fraction": final_fraction})
    runs["wsd_s"] = trainer.replace(base, schedule="wsd_s", schedule_kwargs={
        "cycles": points[:-1] or 1, "decay": decay_fraction, "decay_shape": decay_shape,
        "final_fraction": final_fraction})
    runs["cyclic_cosine"] = trainer.replace(base, schedule="wsd_s", schedule_kwargs={
        "cycles": points[:-1] or 1, "decay": None, "decay_shape": "cosine",
        "final_fraction": 0.1})
    runs["constant"] = trainer.replace(base, schedule="wsd", schedule_kwargs={
        "decay_steps": 0})
    return {name: trainer.replace(cfg, run_name=name) for name, cfg in runs.items()}


def train_or_load(cfg: Config, workdir: str, reuse: bool) -> list[dict[str, Any]]:
    """The run's metrics history: loaded if ``reuse`` and it reached ``num_steps``."""
    path = os.path.join(trainer.run_dir(cfg, workdir), "metrics.jsonl")
    if reuse and os.path.exists(path):
        history = trainer.read_jsonl(path)
        if history and history[-1]["step"] == cfg.num_steps:
            print(f"{trainer.run_name(cfg)}: reusing {path}", flush=True)
            return history
    return trainer.train_and_evaluate(cfg, workdir)["history"]


def val_curve(history: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    rows = [(r["step"], r["val_loss"]) for r in history if "val_loss" in r]
    steps, losses = zip(*rows, strict=True)
    return np.asarray(steps), np.asarray(losses)


def val_at(history: list[dict[str, Any]], step: int) -> float:
    for r in history:
        if r["step"] == step and "val_loss" in r:
            return float(r["val_loss"])
    raise KeyError(f"no validation loss at step {step}")


def lr_table(history: list[dict[str, Any]], num_steps: int) -> np.ndarray:
    """η_1..η_N as logged (``lr`` = schedule(step − 1)); needs ``log_interval=1``."""
    lrs = {r["step"]: r["lr"] for r in history}
    return np.array([lrs[s] for s in range(1, num_steps + 1)])


def budget_table(histories: dict[str, list], points: list[int]) -> tuple[str, list[dict]]:
    rows = []
    for b in points:
        rows.append({
            "budget": b,
            "wsd_s": val_at(histories["wsd_s"], b),
            "wsd": val_at(histories[f"wsd_{b}"], b),
            "cosine": val_at(histories[f"cosine_{b}"], b),
            "cyclic_cosine": val_at(histories["cyclic_cosine"], b),
        })
    lines = ["| budget (steps) | WSD-S (one run) | WSD (separate runs) | cosine (separate runs) "
             "| cyclic cosine (one run) |", "|---|---|---|---|---|"]
    for r in rows:
        best = min(r[k] for k in ("wsd_s", "wsd", "cosine", "cyclic_cosine"))
        cells = [f"**{r[k]:.4f}**" if r[k] == best else f"{r[k]:.4f}"
                 for k in ("wsd_s", "wsd", "cosine", "cyclic_cosine")]
        lines.append(f"| {r['budget']} | " + " | ".join(cells) + " |")
    return "\n".join(lines), rows


def law_fit(histories: dict[str, list], configs: dict[str, Config], warmup: int,
            decay_factor: float, fit_on: tuple[str, ...],
            first_step: int | None = None) -> dict[str, Any]:
    """Fits the annealing law on ``fit_on`` and scores its prediction of every run, both on
    the validation points at steps ≥ ``first_step`` (default: the first after the warm-up)."""
    first_step = warmup + 1 if first_step is None else first_step

    def curve(name):
        steps, losses = val_curve(histories[name])
        keep = steps >= first_step
        lrs = lr_table(histories[name], configs[name].num_steps)
        return lrs, steps[keep], losses[keep]

    fit = gradkit.fit_annealing_law([curve(n) for n in fit_on], decay_factor=decay_factor,
                                    warmup_steps=warmup)
    scores = {}
    for name in histories:
        lrs, steps, losses = curve(name)
        pred = gradkit.predict_annealing_law(fit, lrs, steps, decay_factor=decay_factor,
                                             warmup_steps=warmup)
        err = np.abs(pred - losses)
        scores[name] = {"fitted": name in fit_on, "mean_abs_err": float(err.mean()),
                        "max_abs_err": float(err.max()), "final_observed": float(losses[-1]),
                        "final_predicted": float(pred[-1]), "steps": steps.tolist(),
                        "predicted": pred.tolist()}
    return {"params": fit.params._asdict(), "objective": fit.objective, "fit_on": list(fit_on),
            "first_step": first_step, "scores": scores}


def law_table(law: dict[str, Any]) -> str:
    lines = ["| run | used in fit | mean abs(ΔL) over the curve | max abs(ΔL) | final L observed "
             "| final L predicted |", "|---|---|---|---|---|---|"]
    for name, s in law["scores"].items():
        lines.append(f"| {name} | {'yes' if s['fitted'] else 'no'} | {s['mean_abs_err']:.4f} | "
                     f"{s['max_abs_err']:.4f} | {s['final_observed']:.4f} | "
                     f"{s['final_predicted']:.4f} |")
    return "\n".join(lines)


def law_sensitivity(histories, configs, warmup, fit_on, total, num_budgets) -> tuple[str, list]:
    """Secondary analysis: the law's prediction errors for other λ and a later first step."""
    rows = []
    for first in (warmup + 1, budgets(total, num_budgets)[0]):
        for lam in (0.999, 0.99, 0.95, 0.9):
            law = law_fit(histories, configs, warmup, lam, fit_on, first_step=first)
            rows.append({"first_step": first, "decay_factor": lam, "objective": law["objective"],
                         **{f"err_{k}": v["mean_abs_err"] for k, v in law["scores"].items()}})
    names = [k[4:] for k in rows[0] if k.startswith("err_") and k[4:] not in fit_on]
    lines = ["| first step | λ | fit objective | " + " | ".join(names) + " |",
             "|---" * (3 + len(names)) + "|"]
    for r in rows:
        lines.append(f"| {r['first_step']} | {r['decay_factor']} | {r['objective']:.5f} | "
                     + " | ".join(f"{r['err_' + n]:.4f}" for n in names) + " |")
    return "\n".join(lines), rows


def refined_config(base: Config, cosine_history: list[dict[str, Any]], tau: float,
                   peak: float) -> tuple[Config, np.ndarray]:
    """A run of the same T steps with the schedule refined from the cosine run's ‖g‖₁."""
    by_step = {r["step"]: r["grad_norm_l1"] for r in cosine_history}
    norms = np.array([by_step[s] for s in range(1, base.num_steps + 1)])
    schedule = gradkit.refined_schedule(norms, peak, "adam", tau,
                                        warmup_steps=min(base.warmup_steps, base.num_steps - 1))
    return trainer.replace(base, schedule=schedule, run_name="refined"), norms


def peak_lr(cfg: Config) -> float:
    if cfg.learning_rate is not None:
        return float(cfg.learning_rate)
    kw = {**trainer.OPTIMIZER_DEFAULTS.get(cfg.optimizer, {}), **dict(cfg.opt_kwargs)}
    return float(kw.get("learning_rate", trainer.FALLBACK_LEARNING_RATE))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_budgets(histories, points, path):
    plt = _pyplot()
    fig, (ax_lr, ax) = plt.subplots(2, 1, figsize=(8, 7), sharex=True,
                                    gridspec_kw={"height_ratios": [1, 2]})
    styles = {"wsd_s": ("C0", "-", 2.2), "cyclic_cosine": ("C3", "-", 1.2)}
    for b in points:
        styles[f"wsd_{b}"] = ("C1", "--", 1.0)
        styles[f"cosine_{b}"] = ("C2", ":", 1.2)
    for name, (color, ls, lw) in styles.items():
        h = histories[name]
        label = {"wsd_s": "WSD-S (one run)", "cyclic_cosine": "cyclic cosine (one run)",
                 f"wsd_{points[-1]}": "WSD (separate runs)",
                 f"cosine_{points[-1]}": "cosine (separate runs)"}.get(name)
        ax_lr.plot([r["step"] for r in h], [r["lr"] for r in h], color=color, ls=ls, lw=lw)
        s, v = val_curve(h)
        ax.plot(s, v, color=color, ls=ls, lw=lw, label=label)
    for b in points:
        ax.axvline(b, color="gray", lw=0.5)
        ax.plot([b], [val_at(histories["wsd_s"], b)], "o", color="C0", ms=6)
    ax_lr.set_ylabel("learning rate")
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss (nats/byte)")
    lo = min(min(val_curve(h)[1]) for h in histories.values())
    ax.set_ylim(lo - 0.05, lo + 1.2)
    ax.legend()
    ax.grid(alpha=0.3)
    ax_lr.grid(alpha=0.3)
    ax_lr.set_title("WSD-S (one run) vs separate WSD / cosine runs per budget")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_law(histories, law, path):
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for i, (name, s) in enumerate(law["scores"].items()):
        steps, losses = val_curve(histories[name])
        ax.plot(steps, losses, "o", ms=2.5, color=f"C{i % 10}", alpha=0.6)
        kind = "fit" if s["fitted"] else f"predicted, mean |ΔL| {s['mean_abs_err']:.3f}"
        ax.plot(s["steps"], s["predicted"], "-" if s["fitted"] else "--", color=f"C{i % 10}",
                lw=1.3, label=f"{name} ({kind})")
    p = law["params"]
    ax.set_title(f"L = {p['L0']:.3f} + {p['A']:.3f}·S1^-{p['alpha']:.3f} − {p['C']:.3f}·S2 "
                 f"(fit on {', '.join(law['fit_on'])})", fontsize=9)
    lo = min(s["final_observed"] for s in law["scores"].values())
    ax.set_ylim(lo - 0.05, lo + 1.0)
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss (nats/byte)")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_refined(histories, norms, total, path):
    plt = _pyplot()
    fig, (ax_n, ax_lr, ax) = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    ax_n.plot(np.arange(1, len(norms) + 1), norms, lw=0.8, color="C2")
    ax_n.set_ylabel("‖g‖₁ (cosine run)")
    for name, color in ((f"cosine_{total}", "C2"), ("refined", "C4")):
        h = histories[name]
        ax_lr.plot([r["step"] for r in h], [r["lr"] for r in h], color=color, label=name)
        ax.plot(*val_curve(h), color=color, label=name)
    ax_lr.set_ylabel("learning rate")
    ax.set_ylabel("validation loss")
    ax.set_xlabel("step")
    lo = min(min(val_curve(histories[n])[1]) for n in (f"cosine_{total}", "refined"))
    ax.set_ylim(lo - 0.05, lo + 1.0)
    for a in (ax_n, ax_lr, ax):
        a.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_all(base: Config, workdir: str, *, num_budgets: int = 3, decay_fraction: float = 0.2,
            decay_shape: str = "linear", final_fraction: float = 0.1, refine_tau: float = 0.1,
            decay_factor: float = 0.999, reuse: bool = False,
            sensitivity: bool = False) -> dict[str, Any]:
    """Trains (or reloads) every run, then builds the three tables and plots."""
    if base.log_interval != 1:
        raise ValueError(
            "config.log_interval must be 1: the law and refinement need per-step values.")
    T = base.num_steps
    points = budgets(T, num_budgets)
    bad = [b for b in points if b % base.eval_interval]
    if bad:
        raise ValueError(
            f"config.eval_interval ({base.eval_interval}) must divide every budget {points}.")
    configs = run_configs(base, num_budgets, decay_fraction, decay_shape, final_fraction)
    histories = {}
    for i, (name, cfg) in enumerate(configs.items()):
        print(f"[{i + 1}/{len(configs) + 1}] {name}", flush=True)
        histories[name] = train_or_load(cfg, workdir, reuse)
    cfg, norms = refined_config(base, histories[f"cosine_{T}"], refine_tau, peak_lr(base))
    configs["refined"] = cfg
    print(f"[{len(configs)}/{len(configs)}] refined", flush=True)
    histories["refined"] = train_or_load(cfg, workdir, reuse)  # reused only with its cosine run

    table, rows = budget_table(histories, points)
    warmup = min(base.warmup_steps, T - 1)
    law = law_fit(histories, configs, warmup, decay_factor, fit_on=("constant", f"wsd_{T}"))
    refined = {name: {"final_val_loss": val_curve(histories[name])[1][-1],
                      "best_val_loss": float(min(val_curve(histories[name])[1]))}
               for name in (f"cosine_{T}", "refined")}
    os.makedirs(workdir, exist_ok=True)
    plots = [
        plot_budgets(histories, points, os.path.join(workdir, "budgets.png")),
        plot_law(histories, law, os.path.join(workdir, "law.png")),
        plot_refined(histories, norms, T, os.path.join(workdir, "refined.png")),
    ]
    summary = {"budgets": rows, "law": law, "refined": refined, "plots": plots,
               "budget_table": table, "law_table": law_table(law)}
    if sensitivity:
        summary["law_sensitivity_table"], summary["law_sensitivity"] = law_sensitivity(
            histories, configs, warmup, ("constant", f"wsd_{T}"), T, num_budgets)
    report.write_json(os.path.join(workdir, "summary.json"),
                      json.loads(json.dumps(summary, default=float)))
    summary["histories"] = histories
    return summary


def train_and_evaluate(config: Config, workdir: str) -> dict[str, Any]:
    """Runs the three experiments of ``config`` (:mod:`examples.schedules.configs.default`)
    under ``workdir``; returns the summary of :func:`run_all`."""
    trainer.validate(config)
    config_checks.check_positive_ints(config, "num_budgets")
    config_checks.check_learning_rates(config, "decay_fraction", "final_fraction",
                                       "refine_tau", "decay_factor")
    return run_all(config, workdir, num_budgets=config.num_budgets,
                   decay_fraction=config.decay_fraction, decay_shape=config.decay_shape,
                   final_fraction=config.final_fraction, refine_tau=config.refine_tau,
                   decay_factor=config.decay_factor, reuse=config.reuse,
                   sensitivity=config.law_sensitivity)
