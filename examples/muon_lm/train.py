# SPDX-License-Identifier: Apache-2.0
"""AuON vs Frobenius-normalised Nesterov SGD vs optax Muon vs AdamW (and Drop-Muon) on the
reference byte-level LM: importable logic of ``python -m examples.muon_lm.main``.

Protocol (fixed before any run): every method trains the same model from the same init on
the same batches (``examples/lm/trainer.py``, warm-up + cosine schedule) at each learning rate
of its own 3-point grid (×3 apart, centred on the method's reference value); the table
reports the best final validation loss of each method and the whole grid. The Muon-like
methods orthogonalise / normalise the attention and MLP kernels of the blocks only; the
embeddings, the head, biases and norms take AdamW at the AdamW default peak rate 3e-3 on the
same schedule (as optax's Muon routes non-matrix leaves to Adam, and as the AuON reference
keeps the token embedding on AdamW). AdamW uses the LM example's default weight decay 0.1 on
matrices; the others no weight decay (optax Muon's and the AuON paper's default).
"""

from __future__ import annotations

import json
import os
from typing import Any

import jax
import ml_collections
import optax
from optax import contrib as optax_contrib

from examples import config_checks
from examples.lm import report
from examples.lm import trainer

ADAM_PEAK = 3e-3

# name -> (optimizer alias, learning-rate grid, extra kwargs); grids fixed in advance.
GRIDS: dict[str, tuple[float, ...]] = {
    "adamw": (1e-3, 3e-3, 1e-2),
    "contrib.muon": (0.007, 0.02, 0.06),
    "auon": (0.055, 0.16, 0.5),
    "frob_nesterov": (0.055, 0.16, 0.5),
    "hybrid_auon": (0.055, 0.16, 0.5),
    "drop_muon": (0.007, 0.02, 0.06),
}


def _keys(path) -> list[str]:
    """Path entries as strings, without Flax's leading "params" collection."""
    keys = [str(getattr(k, "key", k)) for k in path]
    return keys[1:] if keys and keys[0] == "params" else keys


def is_body_kernel(path) -> bool:
    keys = _keys(path)
    return keys[0].startswith("block_") and keys[-1] == "kernel"


def body_kernel_mask(params: Any) -> Any:
    return jax.tree_util.tree_map_with_path(lambda p, x: is_body_kernel(p) and x.ndim == 2,
                                        params)


def muon_dims(params: Any) -> Any:
    return jax.tree_util.tree_map_with_path(
        lambda p, x: optax_contrib.MuonDimensionNumbers() if is_body_kernel(p) else None,
        params)


def transformer_layers(params: Any) -> Any:
    """Drop-Muon layer order of the reference GPT: embeddings, block_0..L−1, final norm + head."""
    inner = params["params"] if "params" in params else params
    blocks = sorted(k for k in inner if k.startswith("block_"))
    order = {"tok_embed": 0, "pos_embed": 0, "embed_norm": 0, "final_norm": len(blocks) + 1,
             "head": len(blocks) + 1}
    order.update({b: i + 1 for i, b in enumerate(blocks)})
    return jax.tree_util.tree_map_with_path(lambda p, _: order[_keys(p)[0]], params)


def method_config(method: str, lr: float,
                  base: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, ADAM_PEAK, min(base.warmup_steps, base.num_steps - 1), base.num_steps,
        ADAM_PEAK * 0.1)
    run = f"{method}_lr{lr:g}"
    if method == "adamw":
        return trainer.replace(base, optimizer="adamw", run_name=run, learning_rate=lr,
                               opt_kwargs={})
    if method == "contrib.muon":
        kw = {"adam_learning_rate": schedule, "muon_weight_dimension_numbers": muon_dims}
        return trainer.replace(base, optimizer="contrib.muon", run_name=run,
                               learning_rate=lr, opt_kwargs=kw)
    if method == "drop_muon":
        kw = {"layers": transformer_layers, "muon_mask": body_kernel_mask,
              "adam_learning_rate": schedule}
        return trainer.replace(base, optimizer="drop_muon", run_name=run,
                               learning_rate=lr, opt_kwargs=kw)
    kw = {"adam_learning_rate": schedule, "auon_mask": body_kernel_mask}
    if method == "frob_nesterov":
        kw["rms_scaling"] = False
    if method == "hybrid_auon":
        kw["hybrid"] = True
    return trainer.replace(base, optimizer="auon", run_name=run, learning_rate=lr,
                           opt_kwargs=kw)


def run_grid(methods: list[str], base: ml_collections.ConfigDict, workdir: str,
             grids: dict[str, tuple[float, ...]] | None = None,
             target: float = 2.0) -> list[dict[str, Any]]:
    """Trains every (method, lr) of the grids; writes ``<workdir>/muon_lm.jsonl``."""
    grids = grids or GRIDS
    os.makedirs(workdir, exist_ok=True)
    out_path = os.path.join(workdir, "muon_lm.jsonl")
    rows = []
    for method in methods:
        for lr in grids[method]:
            cfg = method_config(method, lr, base)
            result = trainer.train_and_evaluate(cfg, workdir)
            row = {"method": method, "lr": lr, "final_val_loss": result["final_val_loss"],
                   "steps_to_target": report.steps_to_target(result["history"], target),
                   "time_per_step": result["time_per_step"], "num_steps": cfg.num_steps,
                   "seed": cfg.seed}
            rows.append(row)
            with open(out_path, "a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    return rows


def summary_table(rows: list[dict[str, Any]], target: float) -> str:
    by_method: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_method.setdefault(r["method"], []).append(r)
    lines = [f"| method | lr grid | best lr | final val loss (best) | steps to val ≤ {target:g} "
             f"| all final val losses | s/step |", "|---|---|---|---|---|---|---|"]
    for method, rs in by_method.items():
        best = min(rs, key=lambda r: r["final_val_loss"])
        grid = ", ".join(f"{r['lr']:g}" for r in rs)
        losses = ", ".join(f"{r['final_val_loss']:.3f}" for r in rs)
        reach = best["steps_to_target"] if best["steps_to_target"] is not None else "—"
        lines.append(f"| {method} | {grid} | {best['lr']:g} | {best['final_val_loss']:.3f} | "
                     f"{reach} | {losses} | {best['time_per_step']:.3f} |")
    return "\n".join(lines)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains every (method, learning rate) of ``config``; returns the rows, the markdown
    table and the path of the plot of every run in ``workdir``."""
    trainer.validate(config)
    unknown = [m for m in config.methods if m not in GRIDS]
    if unknown:
        raise ValueError(f"config.methods: unknown {unknown}; choose among {sorted(GRIDS)}.")
    grids = dict(GRIDS)
    if config.grid_override:
        config_checks.check_learning_rates({"grid_override": min(config.grid_override)},
                                           "grid_override")
        grids = {m: tuple(float(x) for x in config.grid_override) for m in grids}
    rows = run_grid(list(config.methods), config, workdir, grids, config.target_val_loss)
    plot = report.plot_runs(report.runs_in_workdir(workdir),
                            os.path.join(workdir, "muon_lm.png"), "byte-level LM")
    return {"rows": rows, "table": summary_table(rows, config.target_val_loss), "plot": plot}
