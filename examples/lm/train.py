# SPDX-License-Identifier: Apache-2.0
"""The reference LM example: one run of :mod:`examples.lm.trainer` plus the loss plot.

``train_and_evaluate(config, workdir)`` trains ``config`` (:mod:`examples.lm.configs.default`)
in ``<workdir>/<run name>`` and, on process 0, draws ``<workdir>/loss.png`` with the loss
curves of every run found in ``workdir`` (so runs with different ``run_name`` end up in one
plot).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import ml_collections

from examples.lm import report
from examples.lm import trainer


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains one run (see :func:`examples.lm.trainer.train_and_evaluate`); returns its
    summary with ``plot``, the path of the loss plot (``None`` off process 0)."""
    result = trainer.train_and_evaluate(config, workdir)
    result["plot"] = None
    if jax.process_index() == 0:
        result["plot"] = report.plot_runs(report.runs_in_workdir(workdir),
                                          os.path.join(workdir, "loss.png"), "byte-level LM")
    return result
