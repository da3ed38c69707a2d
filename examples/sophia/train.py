# SPDX-License-Identifier: Apache-2.0
r"""Sophia-G / Sophia-H vs AdamW on the reference LM, each tuned by a sweep (the example's logic).

The Sophia paper's claim, at CPU scale: does a tiny language model reach a target validation
loss in fewer steps with Sophia than with AdamW, when each optimizer uses its best
setting from a sweep? Every run trains the byte-level GPT of
:mod:`gradkit.models.transformer` on the generated corpus of :mod:`gradkit.data.text`
through :func:`examples.lm.trainer.train_and_evaluate` (same init, same batches, warm-up +
cosine schedule, global-norm gradient clipping 1.0 as in the paper's runs). The sweep is:

- AdamW (betas 0.9/0.95 as in the paper's baselines, weight decay 0.1) over ``config.adamw_lrs``;
- Sophia-G (GNB estimator, k = 10, weight decay 0.1) over ``config.sophia_g_lrs`` ×
  ``config.sophia_g_gammas``: in the unclipped regime the step is (lr/γ)·m/h, so lr and γ
  trade off, and γ sets the win rate (the fraction of unclipped coordinates; the
  official README advises tuning γ so that it stays around 0.1-0.5);
- Sophia-H (Hutchinson, k = 10) over ``config.sophia_h_lrs`` × ``config.sophia_h_gammas``
  (an empty tuple skips a family).

Each family's best setting is the one reaching ``config.target_val_loss`` first (ties and
runs that never reach it: lowest final validation loss). The target is fixed before the
sweep (default 0.8: the main demo's, ``examples/compare``).

    python -m examples.sophia.main   # the sweep of docs/sophia.md, ~20 min on 2 idle CPU cores
    python -m examples.sophia.main --config.batch_size=256 --config.num_steps=300 \
        --config.adamw_lrs='(8e-3,)' --config.sophia_g_lrs='(3e-3,)' \
        --config.sophia_g_gammas='(0.5,)' --config.sophia_h_lrs='(1e-2,)' \
        --config.sophia_h_gammas='(10.0,)'   # the 8×-batch runs of docs/sophia.md

Writes ``<workdir>/<run>/metrics.jsonl`` per run (``val_loss``, ``win_rate``, …),
``<workdir>/sweep.jsonl`` (one line per run), ``<workdir>/summary.json`` and
``<workdir>/sophia.png`` (validation loss of each family's best run).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any

import jax
import ml_collections
import numpy as np
import optax

from examples import config_checks
from examples.lm import report
from examples.lm import trainer


@dataclasses.dataclass
class Setting:
    """One run of the sweep."""

    family: str  # "AdamW", "Sophia-G" or "Sophia-H"
    optimizer: str  # alias name for examples.lm.trainer ("adamw" or "sophia")
    learning_rate: float
    opt_kwargs: dict[str, Any]

    @property
    def gamma(self) -> float | None:
        return self.opt_kwargs.get("gamma")

    @property
    def name(self) -> str:
        name = f"{self.family.lower()}_lr{self.learning_rate:g}"
        return name if self.gamma is None else f"{name}_gamma{self.gamma:g}"


def sweep_settings(
    adamw_lrs: list[float],
    sophia_g: tuple[list[float], list[float]],
    sophia_h: tuple[list[float], list[float]] = ([], []),
    *,
    adamw_b2: float = 0.95,
    weight_decay: float = 0.1,
    update_interval: int = 10,
    refresh_at_start: bool = True,
    bias_correction: bool = False,
) -> list[Setting]:
    """The runs: AdamW over its lrs, Sophia-G/H over (lr, γ) grids."""
    settings = [
        Setting("AdamW", "adamw", lr, {"weight_decay": weight_decay, "b2": adamw_b2})
        for lr in adamw_lrs
    ]
    for family, estimator, (lrs, gammas) in (("Sophia-G", "gnb", sophia_g),
                                            ("Sophia-H", "hutchinson", sophia_h)):
        for lr in lrs:
            for gamma in gammas:
                settings.append(Setting(family, "sophia", lr, {
                    "weight_decay": weight_decay, "estimator": estimator, "gamma": gamma,
                    "update_interval": update_interval, "refresh_at_start": refresh_at_start,
                    "bias_correction": bias_correction, "track_win_rate": True}))
    return settings


def _mean(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and math.isfinite(v)]
    return sum(values) / len(values) if values else None


def win_rate_by_param(opt_state: Any, gamma: float, eps: float = 1e-12,
                      clip_threshold: float = 1.0) -> dict[str, float]:
    """Fraction of unclipped coordinates, |m/max(γh, ε)| < ρ, per parameter tensor.

    Read from a Sophia state (its ``mu`` = m and ``nu`` = h); the fused attention
    projection ``qkv`` is split into its query, key and value columns.
    """
    mu = optax.tree_utils.tree_get(opt_state, "mu")
    nu = optax.tree_utils.tree_get(opt_state, "nu")
    out = {}
    for (path, m), h in zip(jax.tree_util.tree_leaves_with_path(mu), jax.tree.leaves(nu),
                            strict=True):
        name = "/".join(str(getattr(k, "key", k)) for k in path)
        won = np.abs(np.asarray(m, np.float64)) < clip_threshold * np.maximum(
            gamma * np.asarray(h, np.float64), eps)
        if name.endswith("qkv/kernel") and won.shape[-1] % 3 == 0:
            for part, cols in zip("qkv", np.split(won, 3, axis=-1), strict=True):
                out[name.replace("qkv/kernel", f"qkv/kernel[{part}]")] = float(cols.mean())
        else:
            out[name] = float(won.mean())
    return out


def run_sweep(base: ml_collections.ConfigDict, settings: list[Setting], target: float,
              workdir: str) -> dict[str, Any]:
    """Trains every setting from ``base`` under ``workdir``; returns the per-run rows and
    each family's best."""
    rows, histories = [], {}
    for i, s in enumerate(settings):
        print(f"[{i + 1}/{len(settings)}] {s.name}", flush=True)
        cfg = trainer.replace(base, optimizer=s.optimizer, run_name=s.name,
                              learning_rate=s.learning_rate, opt_kwargs=dict(s.opt_kwargs))
        result = trainer.train_and_evaluate(cfg, workdir)
        history = result["history"]
        histories[s.name] = history
        val = [r["val_loss"] for r in history if "val_loss" in r]
        wins = [r["win_rate"] for r in history if "win_rate" in r]
        row = {
            "name": s.name, "family": s.family, "learning_rate": s.learning_rate,
            "gamma": s.gamma, "opt_kwargs": s.opt_kwargs,
            "steps_to_target": report.steps_to_target(history, target),
            "final_val_loss": result["final_val_loss"],
            "best_val_loss": min(val) if val else None,
            "mean_win_rate": _mean(wins),
            "final_win_rate": wins[-1] if wins else None,
            "time_per_step_s": result["time_per_step"],
            "num_params": result["num_params"],
            "final_win_rate_by_param": (
                win_rate_by_param(result["opt_state"], s.gamma) if s.gamma is not None else None),
        }
        rows.append(row)
        steps = row["steps_to_target"]
        print(f"    steps to {target:g}: {steps if steps is not None else 'not reached'}, "
              f"final val {row['final_val_loss']:.4f}"
              + (f", mean win rate {row['mean_win_rate']:.3f}" if wins else ""), flush=True)

    def rank(row):
        steps = row["steps_to_target"]
        final = row["final_val_loss"]
        return (steps if steps is not None else math.inf,
                final if math.isfinite(final) else math.inf)

    best = {}
    for row in rows:
        if row["family"] not in best or rank(row) < rank(best[row["family"]]):
            best[row["family"]] = row
    return {"target_val_loss": target, "runs": rows, "best": best, "histories": histories}


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "–" if x is None else format(x, spec)


def tables(summary: dict[str, Any]) -> tuple[str, str]:
    """Markdown: every run of the sweep, and each family's best run."""
    target = summary["target_val_loss"]
    base = summary["best"].get("AdamW") or summary["runs"][0]
    head = (f"| optimizer | lr | γ | steps to val ≤ {target:g} | final val loss | "
            "mean win rate | time/step vs best AdamW |\n|---|---|---|---|---|---|---|")

    def line(r):
        steps = r["steps_to_target"]
        return (f"| {r['family']} | {r['learning_rate']:g} | "
                f"{_fmt(r['gamma'], 'g')} | {steps if steps is not None else 'not reached'} | "
                f"{r['final_val_loss']:.3f} | {_fmt(r['mean_win_rate'])} | "
                f"{r['time_per_step_s'] / base['time_per_step_s']:.2f}× |")

    sweep = "\n".join([head] + [line(r) for r in summary["runs"]])
    best = "\n".join([head] + [line(r) for r in summary["best"].values()])
    return sweep, best


def plot_best(summary: dict[str, Any], path: str) -> str:
    runs = {}
    for r in summary["best"].values():
        gamma = f", γ {r['gamma']:g}" if r["gamma"] is not None else ""
        runs[f"{r['family']} (lr {r['learning_rate']:g}{gamma})"] = summary["histories"][r["name"]]
    title = f"best run of each sweep; target val loss {summary['target_val_loss']:g}"
    return report.plot_runs(runs, path, title)


def write_outputs(summary: dict[str, Any], workdir: str) -> str:
    """``sweep.jsonl``, ``summary.json`` and the plot ``sophia.png`` in ``workdir``."""
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "sweep.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in summary["runs"])
    report.write_json(os.path.join(workdir, "summary.json"),
                      {k: v for k, v in summary.items() if k != "histories"})
    return plot_best(summary, os.path.join(workdir, "sophia.png"))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Runs the sweep of ``config`` (:mod:`examples.sophia.configs.default`) under
    ``workdir``; returns the summary of :func:`run_sweep` with the markdown ``tables``
    (sweep, best) and the ``plot`` path, after writing :func:`write_outputs`."""
    trainer.validate(config)
    for name in ("adamw_lrs", "sophia_g_lrs", "sophia_g_gammas", "sophia_h_lrs",
                 "sophia_h_gammas"):
        values = {f"{name}[{i}]": v for i, v in enumerate(config[name])}
        config_checks.check_learning_rates(values, *values)
    config_checks.check_positive_ints(config, "update_interval")
    settings = sweep_settings(
        list(config.adamw_lrs), (list(config.sophia_g_lrs), list(config.sophia_g_gammas)),
        (list(config.sophia_h_lrs), list(config.sophia_h_gammas)),
        adamw_b2=config.adamw_b2, weight_decay=config.weight_decay,
        update_interval=config.update_interval, refresh_at_start=config.refresh_at_start,
        bias_correction=config.bias_correction)
    summary = run_sweep(config, settings, config.target_val_loss, workdir)
    summary["plot"] = write_outputs(summary, workdir)
    summary["tables"] = tables(summary)
    return summary
