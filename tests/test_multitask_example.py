# SPDX-License-Identifier: Apache-2.0
"""examples/multitask at tiny size: every experiment runs, writes its outputs, and the
robust parts of each claim hold (full-size numbers: docs/multitask.md)."""

from __future__ import annotations

import json

import pytest

from tests.helpers import read_jsonl

pytestmark = pytest.mark.slow  # end-to-end runs

TINY = dict(
    experiments=("pcgrad_toy", "gcond_toy", "adadagrad", "sven"),
    # A 3x larger Adam step makes the toy's escape happen within 15k steps.
    toy_steps=15000, toy_starts=((9.0, 9.0),), learning_rate_toy=3e-3,
    gcond_steps=10, gcond_seeds=1, log_interval=5, gcond_hidden=8,
    ada_steps=8, ada_num_samples=256, ada_max_batch=32, ada_hidden=8,
    ada_eval_interval=4, ada_target_loss=100.0,
    sven_epochs=2, sven_num_train=256, sven_batch_size=32, sven_k=16,
)


def test_multitask_example_tiny(tmp_path):
    from examples.multitask import train
    from examples.multitask.configs import default

    config = default.get_config()
    config.update(TINY)
    train.train_and_evaluate(config, str(tmp_path))
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert {r["experiment"] for r in rows} == {"pcgrad_toy", "gcond_toy", "adadagrad", "sven"}
    for name in ("pcgrad_toy", "gcond_toy", "adadagrad", "sven"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0
    summary = {name: json.loads((tmp_path / f"{name}_summary.json").read_text())
               for name in ("pcgrad_toy", "gcond_toy", "adadagrad", "sven")}
    # PCGrad leaves the valley in which Adam on the summed loss stalls (from (9, 9)).
    runs = {r["method"]: r for r in summary["pcgrad_toy"]["runs"]}
    assert runs["pcgrad"]["final_loss_sum"] < runs["adam"]["final_loss_sum"] - 10
    # GCond's stochastic accumulation uses half the gradient evaluations.
    gc = summary["gcond_toy"]
    assert gc["stochastic"]["grad_evals"] * 2 == gc["classical"]["grad_evals"]
    # AdAdaGrad: the batch never shrinks and grows from its initial size.
    ada = summary["adadagrad"]
    assert ada["adaptive"]["monotone"] and ada["adaptive"]["final_batch"] > 8
    assert ada["fixed"]["final_batch"] == 8
    # Sven: at this size (16 steps) it is still shrinking the error of its large first
    # steps geometrically (full size: below Adam's 100-epoch MSE after 5 epochs).
    sven = [r for r in rows if r["experiment"] == "sven" and r["method"] == "sven"]
    assert sven[2]["val_mse"] < 0.7 * sven[1]["val_mse"]
    assert summary["sven"]["adam"]["val_mse"] < sven[0]["val_mse"]
