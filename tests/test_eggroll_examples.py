# SPDX-License-Identifier: Apache-2.0
"""The EGGROLL examples at tiny size (in-process, CPU) and the notebook that runs both."""

from __future__ import annotations

import json

import pytest

from tests.helpers import read_jsonl
from tests.helpers import run_notebook


@pytest.mark.slow
def test_eggroll_rl_runs(tmp_path):
    from examples.eggroll_rl import train
    from examples.eggroll_rl.configs import default

    config = default.get_config()
    config.update(generations=2, population=8, max_steps=20, eval_interval=1, eval_episodes=4,
                  hidden=(8,), progress=False)
    result = train.train_and_evaluate(config, str(tmp_path))
    rows = read_jsonl(tmp_path / "metrics.jsonl")
    assert len(rows) == 2 and "eval_return" in rows[-1]
    assert result == json.loads((tmp_path / "final.json").read_text())
    assert 0 < result["final_mean_return"] <= 20 and result["seed"] == 0
    assert result["hidden"] == [8]
    assert (tmp_path / "learning_curve.png").stat().st_size > 0


@pytest.mark.slow
def test_eggroll_lm_runs_on_a_local_text_file(tmp_path):
    from examples.eggroll_lm import train
    from examples.eggroll_lm.configs import default

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The quick brown fox jumps over the lazy dog. " * 60)
    workdir = tmp_path / "run"
    config = default.get_config()
    config.update(data_path=str(corpus), steps=2, population=4, features=8, depth=1, batch=2,
                  seq_len=8, eval_interval=1, progress=False)
    final = train.train_and_evaluate(config, str(workdir))
    rows = read_jsonl(workdir / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2] and "heldout_bits_per_char" in rows[-1]
    assert final == json.loads((workdir / "final.json").read_text())
    assert final["data"] == str(corpus) and final["vocab_size"] == 256
    assert 0 < final["final_heldout_bits_per_char"] < 2 * final["uniform_bits_per_char"]
    assert 0 < final["unigram_bits_per_char"] < final["uniform_bits_per_char"]
    assert (workdir / "loss.png").stat().st_size > 0


@pytest.mark.slow
def test_eggroll_notebook_executes_at_tiny_size():
    outputs = run_notebook("eggroll.ipynb")
    assert "final mean return over 4 episodes" in outputs
    assert "held-out bits/byte after 2 steps" in outputs
