# SPDX-License-Identifier: Apache-2.0
"""examples/schedules and notebooks/schedules.ipynb at tiny size, the LM example's schedules.

The example runs once (module fixture, XLA's cheaper CPU code generation: compilation is
most of a toy run's time); the notebook then runs the same toy configuration with
``reuse=True`` on the example's workdir, so it only reloads the runs and redraws.
"""

from __future__ import annotations

import json

import numpy as np
import optax
import pytest

import gradkit
from examples.lm import trainer as train
from examples.lm.configs import default
from tests.helpers import read_jsonl
from tests.helpers import run_example
from tests.helpers import run_notebook

# Must match the TINY settings of notebooks/schedules.py (shared cache).
TINY = ["--config.num_steps=8", "--config.d_model=16", "--config.num_layers=1",
        "--config.num_heads=2", "--config.batch_size=4", "--config.seq_len=16",
        "--config.corpus_bytes=20000", "--config.eval_interval=2", "--config.eval_batches=1",
        "--config.warmup_steps=2", "--config.num_budgets=2", "--config.progress=False"]


def Config(**fields):  # named like the configuration it returns
    """The LM's default configuration with ``fields`` changed."""
    return train.replace(default.get_config(), **fields)


@pytest.fixture(scope="module")
def example_run(tmp_path_factory):
    """(workdir, stdout) of one toy run of the example; the workdir ends in ``_tiny``, the
    notebook's toy workdir for GRADKIT_SCHEDULES_WORKDIR = the same path without it."""
    workdir = tmp_path_factory.mktemp("schedules") / "runs_tiny"
    out = run_example("schedules", f"--workdir={workdir}", *TINY, timeout=900)
    return workdir, out


def test_lm_train_builds_gradkit_schedules():
    cfg = Config(num_steps=100, warmup_steps=10, schedule="wsd",
                        schedule_kwargs={"decay_steps": 20, "final_fraction": 0.1})
    sched = train.make_schedule(cfg, 2e-3)
    want = gradkit.wsd_schedule(2e-3, 100, 10, 20, final_fraction=0.1)
    steps = np.arange(0, 101)
    np.testing.assert_allclose(np.asarray(sched(steps)), np.asarray(want(steps)))
    cfg = Config(num_steps=90, warmup_steps=5, schedule="wsd_s",
                        schedule_kwargs={"cycles": [30, 60], "decay": 0.2})
    want = gradkit.wsd_s_schedule(1e-3, 90, [30, 60], warmup=5, decay=0.2)
    np.testing.assert_allclose(np.asarray(train.make_schedule(cfg, 1e-3)(steps)),
                               np.asarray(want(steps)))
    custom = optax.linear_schedule(1.0, 0.0, 10)
    assert train.make_schedule(Config(schedule=custom), 1.0) is custom
    with pytest.raises(ValueError, match="`schedule` must be one of"):
        train.make_schedule(Config(schedule="step"), 1.0)


@pytest.mark.slow
def test_example_runs_end_to_end(example_run):
    tmp_path, out = example_run
    assert "| budget (steps) | WSD-S (one run) |" in out and "Annealing law fit on" in out
    assert "Refined from cosine_8's gradient ℓ1 norms" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert [r["budget"] for r in summary["budgets"]] == [4, 8]
    assert set(summary["law"]["scores"]) == {"cosine_4", "wsd_4", "cosine_8", "wsd_8", "wsd_s",
                                             "cyclic_cosine", "constant", "refined"}
    assert summary["law"]["fit_on"] == ["constant", "wsd_8"]
    for name in ("budgets", "law", "refined"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0
    # Per-step records with the rates of the gradkit schedules and both gradient norms.
    wsd_s = read_jsonl(tmp_path / "wsd_s" / "metrics.jsonl")
    assert [r["step"] for r in wsd_s] == list(range(1, 9))
    want = gradkit.wsd_s_schedule(3e-3, 8, [4], warmup=2, decay=0.2, final_fraction=0.1)
    np.testing.assert_allclose([r["lr"] for r in wsd_s], np.asarray(want(np.arange(8))),
                               rtol=1e-6)
    cosine = read_jsonl(tmp_path / "cosine_8" / "metrics.jsonl")
    assert all(r["grad_norm_l1"] > r["grad_norm"] > 0 for r in cosine)
    refined = read_jsonl(tmp_path / "refined" / "metrics.jsonl")
    norms = [r["grad_norm_l1"] for r in cosine]
    want = gradkit.refined_schedule(norms, 3e-3, "adam", 0.1, warmup_steps=2)
    np.testing.assert_allclose([r["lr"] for r in refined], np.asarray(want(np.arange(8))),
                               rtol=1e-6)
    # WSD-S's loss at budget 4 is the loss of its own record at step 4.
    row = summary["budgets"][0]
    assert row["wsd_s"] == next(r["val_loss"] for r in wsd_s if r["step"] == 4)


@pytest.mark.slow
def test_notebook_executes_at_tiny_size(example_run):
    workdir, _ = example_run
    before = (workdir / "summary.json").read_text()
    env = {"GRADKIT_SCHEDULES_WORKDIR": str(workdir)[: -len("_tiny")]}
    text = run_notebook("schedules.ipynb", timeout=600, env=env)
    assert "refined, constant norms, T=6: [1.  0.8 0.6 0.4 0.2 0. ]" in text
    assert "| budget (steps) | WSD-S (one run) |" in text
    assert "L0=" in text and "| cyclic_cosine | no |" in text
    assert text.count("reusing") == 8  # every toy run reloaded, none retrained
    assert json.loads((workdir / "summary.json").read_text())["budgets"] == json.loads(
        before)["budgets"]
