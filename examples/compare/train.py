"""Importable logic of gradkit's main demo (``examples/compare/main.py``).

Every optimizer trains the reference LM of :mod:`examples.lm.train` from the same init on
the same batches; :func:`compare` returns the runs, a markdown table (steps to the target
validation loss, final validation loss, median time per step relative to AdamW) and writes
``<workdir>/compare.png`` and ``<workdir>/compare.json``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from examples.lm import report
from examples.lm import train
from examples.lm.configs.default import Config

DEFAULT_OPTIMIZERS = ("adamw", "lion", "spam", "sophia")
TARGET_VAL_LOSS = 0.8


def parse_learning_rates(pairs: list[str]) -> dict[str, float]:
    """``["lion=3e-4", ...]`` → ``{"lion": 3e-4, ...}``."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"`learning_rates` entries must be name=value, got {pair!r}.")
        out[name.strip()] = float(value)
    return out


def compare(config: Config, workdir: str, optimizers=DEFAULT_OPTIMIZERS,
            learning_rates: dict[str, float] | None = None,
            target: float = TARGET_VAL_LOSS) -> dict[str, Any]:
    """Trains ``config`` once per optimizer name (run directory = the name).

    ``learning_rates`` maps names to peak rates (others: ``config.learning_rate`` or
    ``train.OPTIMIZER_DEFAULTS``). Returns ``{"results", "table", "rows", "plot"}``.
    """
    learning_rates = learning_rates or {}
    results = {}
    for name in optimizers:
        cfg = dataclasses.replace(config, optimizer=name, run_name=name,
                                  learning_rate=learning_rates.get(name, config.learning_rate))
        results[name] = train.train_and_evaluate(cfg, workdir)
    table, rows = report.comparison_table(results, target)
    num_params = next(iter(results.values()))["num_params"]
    plot = report.plot_runs({n: r["history"] for n, r in results.items()},
                            os.path.join(workdir, "compare.png"),
                            f"byte-level LM, {num_params:,} params", target=target)
    report.write_json(os.path.join(workdir, "compare.json"), rows)
    return {"results": results, "table": table, "rows": rows, "plot": plot}
