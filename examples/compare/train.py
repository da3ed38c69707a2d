# SPDX-License-Identifier: Apache-2.0
"""Importable logic of gradkit's main demo (``python -m examples.compare.main``).

Every optimizer of ``config.optimizers`` trains the reference LM of
:mod:`examples.lm.trainer` from the same init on the same batches;
:func:`train_and_evaluate` returns the runs, a markdown table (steps to the target
validation loss, final validation loss, median time per step relative to AdamW) and writes
``<workdir>/compare.png`` and ``<workdir>/compare.json``.
"""

from __future__ import annotations

import os
from typing import Any

import ml_collections

from examples.lm import report
from examples.lm import trainer


def validate(config: ml_collections.ConfigDict) -> None:
    """Raises ``ValueError`` naming the first invalid field of ``config``."""
    trainer.validate(config)
    if not config.optimizers:
        raise ValueError("config.optimizers must name at least one optimizer.")
    for name, lr in config.learning_rates.items():
        if name not in config.optimizers:
            raise ValueError(f"config.learning_rates: {name!r} is not one of "
                             f"config.optimizers {tuple(config.optimizers)}.")
        trainer.validate(trainer.replace(config, learning_rate=lr))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains ``config`` once per optimizer name (run directory = the name).

    ``config.learning_rates`` maps names to peak rates (others: ``config.learning_rate`` or
    ``trainer.OPTIMIZER_DEFAULTS``). Returns ``{"results", "table", "rows", "plot"}``.
    """
    validate(config)
    results = {}
    for name in config.optimizers:
        lr = config.learning_rates.get(name, config.learning_rate)
        cfg = trainer.replace(config, optimizer=name, run_name=name, learning_rate=lr)
        results[name] = trainer.train_and_evaluate(cfg, workdir)
    table, rows = report.comparison_table(results, config.target_val_loss)
    num_params = next(iter(results.values()))["num_params"]
    plot = report.plot_runs({n: r["history"] for n, r in results.items()},
                            os.path.join(workdir, "compare.png"),
                            f"byte-level LM, {num_params:,} params",
                            target=config.target_val_loss)
    report.write_json(os.path.join(workdir, "compare.json"), rows)
    return {"results": results, "table": table, "rows": rows, "plot": plot}
