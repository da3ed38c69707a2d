"""The LM examples: optimizer resolution, exact checkpoint resume, end-to-end runs."""

import json
import os
import sys

import jax
import numpy as np
import optax
import pytest

import gradkit
from gradkit.data import text
from tests.helpers import run_example

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
sys.path.insert(0, EXAMPLES)

import lm_lib  # noqa: E402

TINY = dict(
    d_model=16,
    num_layers=1,
    num_heads=2,
    seq_len=8,
    batch_size=8,
    corpus_bytes=6000,
    eval_every=3,
    eval_batches=1,
    log_every=1,
    warmup_steps=2,
    progress=False,
)
TINY_FLAGS = [f"--{k}={v}" for k, v in TINY.items() if k != "progress"] + ["--noprogress"]


def test_resolve_optimizer_prefers_gradkit_then_optax():
    assert lm_lib.resolve_optimizer("lion") is gradkit.lion
    assert lm_lib.resolve_optimizer("adamw") is optax.adamw
    with pytest.raises(ValueError, match="optimizer"):
        lm_lib.resolve_optimizer("no_such_optimizer")


def test_make_optimizer_passes_axis_name_and_mask_when_the_factory_takes_them(monkeypatch):
    seen = {}

    def fake(learning_rate, weight_decay=0.0, mask=None, axis_name=None):
        seen.update(lr=learning_rate, wd=weight_decay, mask=mask, axis_name=axis_name)
        return optax.sgd(learning_rate)

    monkeypatch.setattr(gradkit, "fake_opt", fake, raising=False)
    cfg = lm_lib.Config(
        optimizer="fake_opt",
        learning_rate=0.5,
        opt_kwargs={"weight_decay": 0.3},
        num_steps=10,
        warmup_steps=2,
    )
    lm_lib.make_optimizer(cfg, axis_name="batch")
    assert seen["axis_name"] == "batch" and seen["wd"] == 0.3
    # Warm-up from 0 to the peak, cosine down to 10% of it.
    assert [float(seen["lr"](t)) for t in (0, 1, 2, 10)] == pytest.approx([0, 0.25, 0.5, 0.05])
    params = {"w": np.zeros((2, 2)), "b": np.zeros(2)}
    assert seen["mask"](params) == {"w": True, "b": False}
    lm_lib.make_optimizer(cfg)  # no axis name outside pmap
    assert seen["axis_name"] is None
    # optax.adamw has no axis_name parameter: nothing is passed, nothing breaks.
    _, schedule = lm_lib.make_optimizer(
        lm_lib.Config(optimizer="adamw", schedule="constant"), axis_name="batch"
    )
    assert float(schedule(0)) == lm_lib.OPTIMIZER_DEFAULTS["adamw"]["learning_rate"]


def test_state_diagnostics_finds_named_fields():
    state = (
        optax.ScaleByAdamState(count=np.int32(1), mu={}, nu={}),
        {"inner": {"num_clipped": np.int32(7)}},
        {"win_rate": np.float32(0.25)},
    )
    assert lm_lib.state_diagnostics(state) == {"num_clipped": 7.0, "win_rate": 0.25}
    assert lm_lib.state_diagnostics(optax.adam(1e-3).init({"x": np.zeros(2)})) == {}


def test_head_bias_init_option():
    train = np.frombuffer(b"abracadabra", np.uint8)
    unigram = lm_lib.model_config(lm_lib.Config(), train)
    np.testing.assert_allclose(unigram.head_bias_init, text.unigram_log_prior(train))
    assert lm_lib.model_config(lm_lib.Config(head_bias_init="zeros"), train).head_bias_init is None
    with pytest.raises(ValueError, match="head_bias_init"):
        lm_lib.model_config(lm_lib.Config(head_bias_init="log_prior"), train)


def test_checkpoint_resume_is_bit_identical(tmp_path):
    base = dict(TINY, optimizer="lion", num_steps=4, seed=3, eval_every=2)
    full = lm_lib.train(lm_lib.Config(workdir=str(tmp_path / "a"), **base))
    interrupted = lm_lib.Config(
        workdir=str(tmp_path / "b"), checkpoint_every=2, stop_after=2, **base
    )
    first = lm_lib.train(interrupted)
    assert first["last_step"] == 2
    resumed = lm_lib.train(
        lm_lib.Config(workdir=str(tmp_path / "b"), checkpoint_every=2, resume=True, **base)
    )
    assert resumed["last_step"] == 4
    for a, b in zip(
        jax.tree.leaves(full["params"]), jax.tree.leaves(resumed["params"]), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(
        jax.tree.leaves(full["opt_state"]), jax.tree.leaves(resumed["opt_state"]), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    # The resumed run's metrics file has every step once and matches the full run.
    with open(tmp_path / "b" / "lion" / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    assert [r["step"] for r in records] == list(range(1, 5))
    assert [r["loss"] for r in records] == [r["loss"] for r in full["history"]]


def _run(script, args, tmp_path):
    # Two virtual devices are enough to exercise pmap/mesh and compile faster than 8.
    return run_example(script, *args, devices=2, cwd=tmp_path)


def test_lm_example_pmap_with_checkpoints(tmp_path):
    # Exact resume itself is tested in-process above; this runs the app end-to-end.
    workdir = tmp_path / "lm"
    out = _run(
        "lm.py",
        [
            f"--workdir={workdir}",
            "--optimizer=adamw",
            '--opt_kwargs={"b2": 0.95}',
            "--parallel=pmap",
            "--num_steps=4",
            "--checkpoint_every=2",
            "--z_loss=1e-4",
            "--qk_layernorm",
            *TINY_FLAGS,
        ],
        tmp_path,
    )
    assert "final val loss" in out
    with open(workdir / "adamw" / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert {"loss", "grad_norm", "lr", "ce", "log_z"} <= set(records[-1])
    assert "val_loss" in records[2] and "val_loss" in records[3]
    assert 0.0 <= records[3]["residual_common_share"] <= 1.0
    assert all(np.isfinite(r["loss"]) for r in records)
    assert os.path.exists(workdir / "loss.png")
    assert sorted(os.listdir(workdir / "adamw" / "checkpoints")) == ["2", "4"]


def test_compare_example_on_a_mesh(tmp_path):
    workdir = tmp_path / "cmp"
    out = _run(
        "compare.py",
        [
            f"--workdir={workdir}",
            "--optimizers=adamw,lion",
            "--learning_rates=lion=1e-3",
            "--parallel=mesh",
            "--num_steps=3",
            "--target_val_loss=100",
            *TINY_FLAGS,
        ],
        tmp_path,
    )
    assert "| adamw | 3 |" in out and "| lion | 3 |" in out
    assert "1.00×" in out
    with open(workdir / "compare.json") as f:
        rows = json.load(f)
    assert [r["optimizer"] for r in rows] == ["adamw", "lion"]
    assert all(np.isfinite(r["final_val_loss"]) for r in rows)
    assert os.path.exists(workdir / "compare.png")
