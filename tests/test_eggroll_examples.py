"""End-to-end runs of the EGGROLL examples at tiny size (subprocess, CPU)."""

from __future__ import annotations

import json
import pathlib

from tests.helpers import run_example
from tests.helpers import run_notebook


def _run(script: str, workdir: pathlib.Path, *flags: str) -> None:
    run_example(script, f"--workdir={workdir}", *flags)


def test_eggroll_rl_runs(tmp_path):
    _run("eggroll_rl.py", tmp_path, "--generations=2", "--population=8", "--max_steps=20",
         "--eval_every=1", "--eval_episodes=4", "--hidden=8")
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and "eval_return" in rows[-1]
    final = json.loads((tmp_path / "final.json").read_text())
    assert 0 < final["final_mean_return"] <= 20 and final["seed"] == 0
    assert (tmp_path / "learning_curve.png").stat().st_size > 0


def test_eggroll_lm_runs_on_a_local_text_file(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("The quick brown fox jumps over the lazy dog. " * 60)
    workdir = tmp_path / "run"
    _run("eggroll_lm.py", workdir, f"--data_path={corpus}", "--steps=2", "--population=4",
         "--features=8", "--depth=1", "--batch=2", "--seq_len=8", "--eval_every=1")
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and "heldout_bits_per_char" in rows[-1]
    final = json.loads((workdir / "final.json").read_text())
    assert final["data"] == str(corpus) and final["vocab_size"] == 256
    assert 0 < final["final_heldout_bits_per_char"] < 2 * final["uniform_bits_per_char"]
    assert 0 < final["unigram_bits_per_char"] < final["uniform_bits_per_char"]
    assert (workdir / "loss.png").stat().st_size > 0


def test_eggroll_notebook_executes_at_tiny_size():
    outputs = run_notebook("eggroll.ipynb")
    assert "final mean return" in outputs
