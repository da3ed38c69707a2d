# SPDX-License-Identifier: Apache-2.0
"""The Muon-family examples run at tiny size and write their outputs."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_example


@pytest.mark.slow
def test_drop_muon_cnn_example_tiny(tmp_path):
    from examples.drop_muon_cnn import train
    from examples.drop_muon_cnn.configs import default

    config = default.get_config()
    config.update(channels=(2, 4), num_train=64, batch_size=16, num_steps=6, log_interval=3,
                  progress=False)
    out = train.train_and_evaluate(config, str(tmp_path))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert sum(summary["drop_muon"]["start_layer_counts"]) == 6
    assert summary["muon"]["start_layer_counts"] == [6, 0, 0]
    assert (tmp_path / "drop_muon_cnn.png").exists() and "step_time_ratio" in out
    assert out["step_time_ratio"] == summary["step_time_ratio"]


@pytest.mark.slow
def test_muon_lm_example_tiny(tmp_path):
    out = run_example("muon_lm", f"--workdir={tmp_path}",
                      '--config.methods=("auon", "frob_nesterov")',
                      "--config.grid_override=(0.05,)", "--config.num_steps=4",
                      "--config.eval_interval=2", "--config.d_model=8", "--config.num_layers=1",
                      "--config.num_heads=2", "--config.batch_size=2", "--config.seq_len=8",
                      "--config.corpus_bytes=4000", "--config.warmup_steps=1",
                      "--config.progress=False")
    rows = [json.loads(line) for line in (tmp_path / "muon_lm.jsonl").read_text().splitlines()]
    assert [r["method"] for r in rows] == ["auon", "frob_nesterov"]
    assert "| auon | 0.05 |" in out and (tmp_path / "muon_lm.png").exists()


def test_lm_train_resolves_dotted_optax_names():
    import optax

    from examples.lm import trainer

    assert trainer.resolve_optimizer("contrib.muon") is optax.contrib.muon
