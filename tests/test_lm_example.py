"""The LM examples (examples/lm, examples/compare): optimizer resolution, flags, exact
checkpoint resume and its config check, quiet logs, the plot, end-to-end runs."""

import dataclasses
import json
import logging
import os
import subprocess
import sys

import jax
import numpy as np
import optax
import pytest
from absl import flags
from absl import logging as absl_logging

import gradkit
from examples.lm import cli
from examples.lm import report
from examples.lm import train
from examples.lm.configs.default import Config
from gradkit.data import text
from tests.helpers import ROOT
from tests.helpers import run_example

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
    assert train.resolve_optimizer("lion") is gradkit.lion
    assert train.resolve_optimizer("adamw") is optax.adamw
    with pytest.raises(ValueError, match="optimizer"):
        train.resolve_optimizer("no_such_optimizer")


def test_make_optimizer_passes_axis_name_and_mask_when_the_factory_takes_them(monkeypatch):
    seen = {}

    def fake(learning_rate, weight_decay=0.0, mask=None, axis_name=None):
        seen.update(lr=learning_rate, wd=weight_decay, mask=mask, axis_name=axis_name)
        return optax.sgd(learning_rate)

    monkeypatch.setattr(gradkit, "fake_opt", fake, raising=False)
    cfg = Config(
        optimizer="fake_opt",
        learning_rate=0.5,
        opt_kwargs={"weight_decay": 0.3},
        num_steps=10,
        warmup_steps=2,
    )
    train.make_optimizer(cfg, axis_name="batch")
    assert seen["axis_name"] == "batch" and seen["wd"] == 0.3
    # Warm-up from 0 to the peak, cosine down to 10% of it.
    assert [float(seen["lr"](t)) for t in (0, 1, 2, 10)] == pytest.approx([0, 0.25, 0.5, 0.05])
    params = {"w": np.zeros((2, 2)), "b": np.zeros(2)}
    assert seen["mask"](params) == {"w": True, "b": False}
    train.make_optimizer(cfg)  # no axis name outside pmap
    assert seen["axis_name"] is None
    # optax.adamw has no axis_name parameter: nothing is passed, nothing breaks.
    _, schedule = train.make_optimizer(
        Config(optimizer="adamw", schedule="constant"), axis_name="batch"
    )
    assert float(schedule(0)) == train.OPTIMIZER_DEFAULTS["adamw"]["learning_rate"]


def test_state_diagnostics_finds_named_fields():
    state = (
        optax.ScaleByAdamState(count=np.int32(1), mu={}, nu={}),
        {"inner": {"num_clipped": np.int32(7)}},
        {"win_rate": np.float32(0.25)},
    )
    assert train.state_diagnostics(state) == {"num_clipped": 7.0, "win_rate": 0.25}
    assert train.state_diagnostics(optax.adam(1e-3).init({"x": np.zeros(2)})) == {}
    # -1: switched off (spam's count_every=0, sophia's track_win_rate=False): not logged.
    off = ({"num_clipped": np.int32(-1)}, {"win_rate": np.float32(-1.0)})
    assert train.state_diagnostics(off) == {}


def test_head_bias_init_option():
    tokens = np.frombuffer(b"abracadabra", np.uint8)
    unigram = train.model_config(Config(), tokens)
    np.testing.assert_allclose(unigram.head_bias_init, text.unigram_log_prior(tokens))
    assert train.model_config(Config(head_bias_init="zeros"), tokens).head_bias_init is None
    with pytest.raises(ValueError, match="head_bias_init"):
        train.model_config(Config(head_bias_init="log_prior"), tokens)


def test_stable_embedding_option_reaches_the_model():
    tokens = np.frombuffer(b"abracadabra", np.uint8)
    assert not train.model_config(Config(), tokens).stable_embedding
    assert train.model_config(Config(stable_embedding=True), tokens).stable_embedding


def test_flags_mirror_the_config_and_a_bad_opt_kwargs_names_the_flag():
    fv = flags.FlagValues()
    cli.define_flags(fv)
    fv(["prog", '--opt_kwargs={"b2": 0.95}', "--num_steps=7", "--noqk_layernorm"])
    config = cli.config_from_flags(fv, run_name="r")
    assert config == dataclasses.replace(Config(), opt_kwargs={"b2": 0.95}, num_steps=7,
                                         run_name="r")
    # Every Config field has its flag.
    assert {f.name for f in dataclasses.fields(Config)} <= set(fv)
    for bad, why in (("{b2: 0.95}", "not valid JSON"), ("[1, 2]", "expected a JSON object")):
        fv = flags.FlagValues()
        cli.define_flags(fv)
        with pytest.raises(flags.IllegalFlagValueError, match=f"--opt_kwargs.*{why}"):
            fv(["prog", f"--opt_kwargs={bad}"])


def test_help_lists_the_examples_own_flags():
    # Not only the two flags main.py defines itself: the LM's flags too (adopted key flags).
    for script, own in (("lm/main.py", "--coordinator_address"),
                        ("compare/main.py", "--target_val_loss")):
        out = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--help"],
                             capture_output=True, text=True, check=False, cwd=ROOT).stdout
        for name in (own, "--num_steps", "--opt_kwargs", "--optimizer", "--workdir",
                     "--parallel"):
            assert name in out, (script, name)


def test_plot_styles_every_run_and_draws_the_target():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    history = [{"step": s, "loss": 3.0 / s, "val_loss": 3.1 / s} for s in (1, 2, 3)]
    runs = {name: history for name in ("adamw", "lion", "spam", "sophia")}  # coinciding
    fig, ax = plt.subplots()
    report.draw_runs(ax, runs, target=0.8)
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels[:2] == ["adamw train", "adamw validation"]
    assert set(labels) >= {f"{n} {k}" for n in runs for k in ("train", "validation")}
    assert "target val loss 0.8" in labels
    target = ax.get_lines()[labels.index("target val loss 0.8")]
    assert list(target.get_ydata()) == [0.8, 0.8]
    val = [line for line in ax.get_lines() if line.get_label().endswith("validation")]
    # Identical curves stay distinguishable: each has its own dash pattern and marker.
    assert len({line.get_linestyle() for line in val}) == len(runs)
    assert len({line.get_marker() for line in val}) == len(runs)
    assert all(line.get_markerfacecolor() == "none" for line in val)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "lion train" in legend and "sophia validation" in legend
    plt.close(fig)


def test_orbax_info_logs_are_filtered_but_not_warnings():
    train.quiet_orbax_logs()
    train.quiet_orbax_logs()  # idempotent
    logger = absl_logging.get_absl_logger()
    assert logger.filters.count(train._ORBAX_FILTER) == 1

    def record(path, level):
        return logging.LogRecord("absl", level, path, 1, "msg", (), None)

    orbax_file = os.path.join("site-packages", "orbax", "checkpoint", "x.py")
    assert not train._ORBAX_FILTER.filter(record(orbax_file, logging.INFO))
    assert train._ORBAX_FILTER.filter(record(orbax_file, logging.WARNING))
    assert train._ORBAX_FILTER.filter(record(os.path.join("examples", "x.py"), logging.INFO))


def _absl_records(caplog):
    return [r for r in caplog.records if r.name == "absl"]


def test_checkpoint_resume_is_bit_identical_and_refuses_another_schedule(tmp_path, caplog):
    base = dict(TINY, optimizer="lion", num_steps=4, seed=3, eval_every=2)
    full = train.train_and_evaluate(Config(**base), str(tmp_path / "a"))
    interrupted = Config(checkpoint_every=2, stop_after=2, **base)
    # Orbax logs ~70 INFO lines per checkpointing run at absl's CLI verbosity (INFO): none
    # of them may come through (the filter of train.quiet_orbax_logs).
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    try:
        with caplog.at_level(logging.INFO):
            absl_logging.info("gradkit test: INFO passes")
            first = train.train_and_evaluate(interrupted, str(tmp_path / "b"))
    finally:
        absl_logging.set_verbosity(verbosity)
    messages = [(r.pathname, r.getMessage()) for r in _absl_records(caplog)]
    assert any("INFO passes" in m for _, m in messages)  # the capture works
    assert not [m for p, m in messages if f"{os.sep}orbax{os.sep}" in p], messages
    assert first["last_step"] == 2
    with open(tmp_path / "b" / "lion" / "config.json") as f:
        assert json.load(f)["num_steps"] == 4
    # Another num_steps (hence another LR schedule) than the checkpoint's: refused.
    for change in ({"num_steps": 6}, {"warmup_steps": 1}, {"schedule": "constant"}):
        with pytest.raises(ValueError, match=f"resume.*{next(iter(change))}="):
            train.train_and_evaluate(
                Config(checkpoint_every=2, resume=True, **{**base, **change}),
                str(tmp_path / "b"))
    # Fields that do not change the trajectory may change (here the logging interval).
    resumed = train.train_and_evaluate(
        Config(checkpoint_every=2, resume=True, **{**base, "log_every": 2}),
        str(tmp_path / "b"))
    assert resumed["last_step"] == 4
    for a, b in zip(
        jax.tree.leaves(full["params"]), jax.tree.leaves(resumed["params"]), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(
        jax.tree.leaves(full["opt_state"]), jax.tree.leaves(resumed["opt_state"]), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    # The resumed run's metrics file has every step once and matches the full run (steps
    # 1-2 logged by the first run, 4 by the resumed one at log_every=2).
    with open(tmp_path / "b" / "lion" / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    assert [r["step"] for r in records] == [1, 2, 4]
    want = {r["step"]: r["loss"] for r in full["history"]}
    assert [r["loss"] for r in records] == [want[r["step"]] for r in records]


def _run(script, args, tmp_path):
    # Two virtual devices are enough to exercise pmap/mesh and compile faster than 8.
    return run_example(script, *args, devices=2, cwd=tmp_path)


@pytest.mark.slow
def test_lm_example_pmap_with_checkpoints(tmp_path):
    # Exact resume itself is tested in-process above; this runs the app end-to-end.
    workdir = tmp_path / "lm"
    out = _run(
        "lm/main.py",
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


@pytest.mark.slow
def test_compare_example_on_a_mesh(tmp_path):
    workdir = tmp_path / "cmp"
    out = _run(
        "compare/main.py",
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


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")
def test_one_cpu_thread_pins_the_process_before_jax():
    # In a fresh interpreter (it must run before JAX is imported; this one has JAX).
    code = ("import os; from examples.lm import cli; cli.use_one_cpu_thread(); "
            "print(len(os.sched_getaffinity(0)), os.environ['XLA_FLAGS'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={**os.environ, "XLA_FLAGS": "--foo"}).stdout
    assert out.split() == ["1", "--foo", "--xla_cpu_multi_thread_eigen=false"]
    with pytest.raises(RuntimeError, match="before JAX"):
        cli.use_one_cpu_thread()
