# SPDX-License-Identifier: Apache-2.0
"""AdamW vs 8-bit AdamW vs FRUGAL vs Fira on the reference byte-level LM: importable logic of
``python -m examples.memory.main``.

Protocol (fixed before any run): every method trains the same model from the same init on
the same batches (``examples/lm/trainer.py``: warm-up + cosine schedule, the demo's 600 steps)
and is measured by its final validation loss, the bytes of its optimizer state per
parameter (summed over the actual state pytree after training) and steps per second.
AdamW uses the LM example's defaults (peak 3e-3, weight decay 0.1 on matrices); 8-bit AdamW the
same hyperparameters. FRUGAL (ρ = 0.25, T = 200, blockwise in descending order, the
official pre-training setting) and Fira (rank d/4, α = 0.25, T = 200, γ = 1.01, the
papers' ratios) act on the attention and MLP kernels of the blocks only; embeddings,
norms, biases and the head take AdamW inside the same alias, as in the official code.
FRUGAL runs at AdamW's learning rate (the paper uses the Adam baseline's rate); Fira at
AdamW's rate and at its paper's 0.01, both reported.
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import ml_collections

import gradkit
from examples.lm import report
from examples.lm import trainer

ADAMW_PEAK = 3e-3

# name -> (optimizer alias, peak lr, kwargs); fixed before the runs.
METHODS: dict[str, tuple[str, float, dict[str, Any]]] = {
    "adamw": ("adamw", ADAMW_PEAK, {}),
    "adamw_8bit": ("adamw_8bit", ADAMW_PEAK, {}),
    "frugal": ("frugal", ADAMW_PEAK, {"rho": 0.25, "update_interval": 200}),
    "fira": ("fira", ADAMW_PEAK, {"update_interval": 200, "scale": 0.25}),
    "fira_lr1e-2": ("fira", 1e-2, {"update_interval": 200, "scale": 0.25}),
}

# Diagnostics added after the first table (docs/memory.md, "Results"), run on request only:
# with T = 200 a 600-step run sees three subspaces, so under the descending order two of the
# eight kernels never get Adam; T = 50 gives every kernel Adam periods, closer to the
# paper's regime (T = 200 over 10⁵ steps). Also the SVD projection at the default T.
DIAGNOSTICS: dict[str, tuple[str, float, dict[str, Any]]] = {
    "frugal_T50": ("frugal", ADAMW_PEAK, {"rho": 0.25, "update_interval": 50}),
    "frugal_svd": ("frugal", ADAMW_PEAK, {"rho": 0.25, "update_interval": 200,
                                          "projection": "svd"}),
    "fira_lr1e-2_T50": ("fira", 1e-2, {"update_interval": 50, "scale": 0.25}),
}
ALL_METHODS = {**METHODS, **DIAGNOSTICS}


def _keys(path) -> list[str]:
    keys = [str(getattr(k, "key", k)) for k in path]
    return keys[1:] if keys and keys[0] == "params" else keys


def body_kernel_mask(params: Any) -> Any:
    """True for the attention/MLP kernels of the blocks (the official projected weights)."""
    return jax.tree_util.tree_map_with_path(
        lambda p, x: _keys(p)[0].startswith("block_") and _keys(p)[-1] == "kernel"
        and x.ndim == 2, params)


def method_config(method: str, base: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    optimizer, lr, kwargs = ALL_METHODS[method]
    kwargs = dict(kwargs)
    kwargs["weight_decay"] = trainer.OPTIMIZER_DEFAULTS["adamw"]["weight_decay"]
    kwargs["mask"] = trainer.decay_mask
    if optimizer == "frugal":
        kwargs["frugal_mask"] = body_kernel_mask
    if optimizer == "fira":
        kwargs["fira_mask"] = body_kernel_mask
        kwargs["rank"] = max(1, base.d_model // 4)
    return trainer.replace(base, optimizer=optimizer, run_name=method, learning_rate=lr,
                           opt_kwargs=kwargs)


def run_comparison(methods: list[str], base: ml_collections.ConfigDict,
                   workdir: str) -> list[dict]:
    """Trains each method; appends one row per run to ``<workdir>/memory.jsonl``."""
    os.makedirs(workdir, exist_ok=True)
    out_path = os.path.join(workdir, "memory.jsonl")
    rows = []
    for method in methods:
        cfg = method_config(method, base)
        result = trainer.train_and_evaluate(cfg, workdir)
        state_bytes = gradkit.memory.state_bytes(result["opt_state"])
        row = {"method": method, "optimizer": cfg.optimizer, "lr": cfg.learning_rate,
               "final_val_loss": result["final_val_loss"],
               "state_bytes_per_param": state_bytes / result["num_params"],
               "steps_per_s": 1.0 / result["time_per_step"],
               "num_params": result["num_params"], "num_steps": cfg.num_steps,
               "seed": cfg.seed}
        rows.append(row)
        with open(out_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), flush=True)
    return rows


def summary_table(rows: list[dict], baseline: str = "adamw") -> str:
    base = next((r for r in rows if r["method"] == baseline), rows[0])
    lines = [f"| method | lr | final val loss | vs {base['method']} | state B/param | steps/s |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        rel = r["final_val_loss"] / base["final_val_loss"] - 1.0
        lines.append(f"| {r['method']} | {r['lr']:g} | {r['final_val_loss']:.4f} | "
                     f"{100 * rel:+.1f}% | {r['state_bytes_per_param']:.2f} | "
                     f"{r['steps_per_s']:.1f} |")
    return "\n".join(lines)


def plot(workdir: str, rows: list[dict]) -> str:
    runs = report.runs_in_workdir(workdir)
    runs = {r["method"]: runs[r["method"]] for r in rows if r["method"] in runs}
    n = rows[0]["num_params"] if rows else 0
    return report.plot_runs(runs, os.path.join(workdir, "memory.png"),
                            f"byte-level LM, {n:,} params")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains ``config.methods`` on the LM of ``config``; returns the rows, the markdown
    table and the path of the plot."""
    trainer.validate(config)
    unknown = [m for m in config.methods if m not in ALL_METHODS]
    if unknown:
        raise ValueError(f"config.methods: unknown {unknown}; choose among {list(ALL_METHODS)}.")
    rows = run_comparison(list(config.methods), config, workdir)
    return {"rows": rows, "table": summary_table(rows), "plot": plot(workdir, rows)}
