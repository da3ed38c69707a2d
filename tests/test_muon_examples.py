"""The Muon-family examples run at tiny size and write their outputs."""

from __future__ import annotations

import json

import pytest

from tests.helpers import run_example


@pytest.mark.slow
def test_drop_muon_cnn_example_tiny(tmp_path):
    out = run_example("drop_muon_cnn/main.py", f"--workdir={tmp_path}", "--channels=2,4",
                      "--num_train=64", "--batch_size=16", "--num_steps=6", "--log_every=3",
                      "--noprogress")
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert sum(summary["drop_muon"]["start_layer_counts"]) == 6
    assert summary["muon"]["start_layer_counts"] == [6, 0, 0]
    assert (tmp_path / "drop_muon_cnn.png").exists() and "step_time_ratio" in out


@pytest.mark.slow
def test_muon_lm_example_tiny(tmp_path):
    out = run_example("muon_lm/main.py", f"--workdir={tmp_path}",
                      "--methods=auon,frob_nesterov", "--grid_override=0.05",
                      "--num_steps=4", "--eval_every=2", "--d_model=8", "--num_layers=1",
                      "--num_heads=2", "--batch_size=2", "--seq_len=8", "--corpus_bytes=4000",
                      "--warmup_steps=1", "--noprogress")
    rows = [json.loads(line) for line in (tmp_path / "muon_lm.jsonl").read_text().splitlines()]
    assert [r["method"] for r in rows] == ["auon", "frob_nesterov"]
    assert "| auon | 0.05 |" in out and (tmp_path / "muon_lm.png").exists()


def test_lm_train_resolves_dotted_optax_names():
    import optax

    from examples.lm import train

    assert train.resolve_optimizer("contrib.muon") is optax.contrib.muon
