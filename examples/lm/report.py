# SPDX-License-Identifier: Apache-2.0
"""Plots and tables of LM runs: loss curves, steps to a target loss, comparison tables."""

from __future__ import annotations

import json
import os
from typing import Any

from examples.lm.trainer import read_jsonl

# One style per run, so runs whose curves coincide stay visible: the dashes and hollow
# markers of the run drawn on top let the one below show through.
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def steps_to_target(history: list[dict[str, Any]], target: float) -> int | None:
    """First evaluation step whose validation loss is ≤ ``target`` (``None`` if never)."""
    for r in history:
        if "val_loss" in r and r["val_loss"] <= target:
            return int(r["step"])
    return None


def draw_runs(ax, runs: dict[str, list[dict[str, Any]]], target: float | None = None) -> None:
    """Draws train (thin, faint) and validation (thick, markers) loss vs step on ``ax``.

    Each run has its own colour, line style and marker (hollow, so coinciding curves stay
    visible: AdamW and SPAM nearly coincide in the demo); the legend names both curves of
    every run; ``target`` draws a horizontal line at that validation loss.
    """
    for i, (name, history) in enumerate(runs.items()):
        style = dict(color=f"C{i}", ls=LINESTYLES[i % len(LINESTYLES)])
        tr = [(r["step"], r["loss"]) for r in history if "loss" in r]
        va = [(r["step"], r["val_loss"]) for r in history if "val_loss" in r]
        if tr:
            ax.plot(*zip(*tr, strict=True), **style, alpha=0.35, lw=1, label=f"{name} train")
        if va:
            ax.plot(*zip(*va, strict=True), **style, lw=2, alpha=0.85,
                    marker=MARKERS[i % len(MARKERS)], ms=7 - (i % 3), mfc="none", mew=1.3,
                    label=f"{name} validation")
    if target is not None:
        ax.axhline(target, color="k", ls=":", lw=1.2, label=f"target val loss {target:g}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats / byte)")
    ax.grid(alpha=0.3)
    ax.legend(ncol=2, fontsize=8)


def plot_runs(runs: dict[str, list[dict[str, Any]]], path: str, title: str = "",
              target: float | None = None) -> str:
    """:func:`draw_runs` saved as a PNG at ``path``; returns ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    draw_runs(ax, runs, target)
    ax.set_title(title)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def runs_in_workdir(workdir: str) -> dict[str, list[dict[str, Any]]]:
    """Metrics histories of every run directory under ``workdir`` (sorted by name)."""
    runs = {}
    if os.path.isdir(workdir):
        for name in sorted(os.listdir(workdir)):
            history = read_jsonl(os.path.join(workdir, name, "metrics.jsonl"))
            if history:
                runs[name] = history
    return runs


def comparison_table(
    results: dict[str, dict[str, Any]], target: float, baseline: str = "adamw"
) -> tuple[str, list[dict[str, Any]]]:
    """Markdown table + rows: steps to ``target`` val loss, final val loss, time ratio.

    Time per step is each run's median step time divided by ``baseline``'s (or by the
    first run's when ``baseline`` did not run).
    """
    base = results.get(baseline) or next(iter(results.values()))
    rows = []
    for name, r in results.items():
        rows.append(
            {
                "optimizer": name,
                "steps_to_target": steps_to_target(r["history"], target),
                "final_val_loss": r["final_val_loss"],
                "time_per_step_s": r["time_per_step"],
                "time_vs_baseline": r["time_per_step"] / base["time_per_step"],
            }
        )
    lines = [
        f"| optimizer | steps to val loss ≤ {target:g} | final val loss | "
        f"time/step vs {base['name']} |",
        "|---|---|---|---|",
    ]
    for row in rows:
        steps = row["steps_to_target"]
        lines.append(
            f"| {row['optimizer']} | {steps if steps is not None else 'not reached'} | "
            f"{row['final_val_loss']:.4f} | {row['time_vs_baseline']:.2f}× |"
        )
    return "\n".join(lines), rows


def write_json(path: str, obj: Any) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
