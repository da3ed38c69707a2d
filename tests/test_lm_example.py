# SPDX-License-Identifier: Apache-2.0
"""The LM examples (examples/lm, examples/compare): optimizer resolution, the config and its
flags, exact checkpoint resume and its config check, quiet logs, the plot, end-to-end runs."""

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
from ml_collections import config_flags

import gradkit
from examples.compare import train as compare_train
from examples.compare.configs import default as compare_default
from examples.lm import cpu
from examples.lm import report
from examples.lm import trainer as train
from examples.lm.configs import default
from gradkit.data import text
from tests.helpers import ROOT
from tests.helpers import run_example


def Config(**fields):  # named like the configuration it returns
    """The LM's default configuration with ``fields`` changed."""
    return train.replace(default.get_config(), **fields)


TINY = dict(
    d_model=16,
    num_layers=1,
    num_heads=2,
    seq_len=8,
    batch_size=8,
    corpus_bytes=6000,
    eval_interval=3,
    eval_batches=1,
    log_interval=1,
    warmup_steps=2,
    progress=False,
)
TINY_FLAGS = [f"--config.{k}={v}" for k, v in TINY.items()]


def test_resolve_optimizer_prefers_gradkit_then_optax():
    assert train.resolve_optimizer("lion") is gradkit.lion
    assert train.resolve_optimizer("adamw") is optax.adamw
    with pytest.raises(ValueError, match="optimizer"):
        train.resolve_optimizer("no_such_optimizer")


def test_make_optimizer_passes_the_kwargs_as_given(monkeypatch):
    seen = {}

    def fake(**kwargs):
        seen.clear()
        seen.update(kwargs)
        return optax.sgd(kwargs["learning_rate"])

    monkeypatch.setattr(gradkit, "fake_opt", fake, raising=False)
    cfg = Config(optimizer="fake_opt", learning_rate=0.5, opt_kwargs={"weight_decay": 0.3},
                 num_steps=10, warmup_steps=2)
    train.make_optimizer(cfg, axis_name="batch")
    # An optimizer without defaults gets its config's kwargs and the schedule, nothing else.
    assert set(seen) == {"learning_rate", "weight_decay"} and seen["weight_decay"] == 0.3
    # Warm-up from 0 to the peak, cosine down to 10% of it.
    lrs = [float(seen["learning_rate"](t)) for t in (0, 1, 2, 10)]
    assert lrs == pytest.approx([0, 0.25, 0.5, 0.05])
    # Sophia: its defaults (weight decay on matrices only) and, under pmap, the axis name.
    monkeypatch.setattr(gradkit, "sophia", fake)
    train.make_optimizer(Config(optimizer="sophia", opt_kwargs={"gamma": 1.0}),
                         axis_name="batch")
    assert seen["axis_name"] == "batch" and seen["gamma"] == 1.0
    assert seen["estimator"] == "hutchinson" and seen["mask"] is train.decay_mask
    params = {"w": np.zeros((2, 2)), "b": np.zeros(2)}
    assert seen["mask"](params) == {"w": True, "b": False}
    train.make_optimizer(Config(optimizer="sophia"))  # no axis name outside pmap
    assert "axis_name" not in seen
    _, schedule = train.make_optimizer(
        Config(optimizer="adamw", schedule="constant"), axis_name="batch")
    assert float(schedule(0)) == train.OPTIMIZER_DEFAULTS["adamw"]["learning_rate"]


@pytest.mark.parametrize("field, value", [("num_steps", 0), ("batch_size", -1),
                                          ("eval_interval", 0), ("log_interval", 1.5),
                                          ("learning_rate", -1e-3),
                                          ("learning_rate", float("nan")),
                                          ("checkpoint_interval", -1), ("parallel", "gpu")])
def test_bad_config_values_are_refused_by_name(field, value, tmp_path):
    with pytest.raises(ValueError, match=f"config.{field}"):
        train.train_and_evaluate(Config(**{field: value}), str(tmp_path))
    assert not os.listdir(tmp_path)  # refused before anything is written


def test_compare_refuses_a_learning_rate_of_an_optimizer_it_does_not_run(tmp_path):
    config = compare_default.get_config()
    config.learning_rates = {"lion": 3e-4}
    config.optimizers = ("adamw",)
    with pytest.raises(ValueError, match=r"config\.learning_rates"):
        compare_train.train_and_evaluate(config, str(tmp_path))


def test_state_diagnostics_finds_named_fields():
    state = (
        optax.ScaleByAdamState(count=np.int32(1), mu={}, nu={}),
        {"inner": {"num_clipped": np.int32(7)}},
        {"win_rate": np.float32(0.25)},
    )
    assert train.state_diagnostics(state) == {"num_clipped": 7.0, "win_rate": 0.25}
    assert train.state_diagnostics(optax.adam(1e-3).init({"x": np.zeros(2)})) == {}
    # A diagnostic switched off is None in the state (spam's count_interval=None): not
    # logged.
    assert train.state_diagnostics(({"num_clipped": None},)) == {}


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


def test_config_flags_override_fields_and_dicts(monkeypatch):
    argv = ["prog", '--config.opt_kwargs={"b2": 0.95}', "--config.num_steps=7",
            "--config.qk_layernorm=True", "--config.learning_rate=3e-4"]
    monkeypatch.setattr(sys, "argv", argv)  # config_flags reads the overrides from sys.argv
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file("config", str(ROOT / "examples/lm/configs/default.py"),
                                    flag_values=fv, lock_config=True)
    fv(argv)
    config = fv.config
    assert config.opt_kwargs.to_dict() == {"b2": 0.95} and config.num_steps == 7
    assert config.qk_layernorm and config.learning_rate == 3e-4
    assert Config(num_steps=7).num_steps == 7 and default.get_config().num_steps == 600


def test_help_lists_the_mains_flags():
    for module, own in (("examples.lm.main", "--coordinator_address"),
                        ("examples.compare.main", "one_cpu_thread")):
        out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                             text=True, check=False, cwd=ROOT).stdout
        for name in (own, "--config", "--workdir"):
            assert name in out, (module, name)


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
    base = dict(TINY, optimizer="lion", num_steps=4, seed=3, eval_interval=2)
    full = train.train_and_evaluate(Config(**base), str(tmp_path / "a"))
    interrupted = Config(checkpoint_interval=2, stop_after=2, **base)
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
                Config(checkpoint_interval=2, resume=True, **{**base, **change}),
                str(tmp_path / "b"))
    # Fields that do not change the trajectory may change (here the logging interval).
    resumed = train.train_and_evaluate(
        Config(checkpoint_interval=2, resume=True, **{**base, "log_interval": 2}),
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
    # 1-2 logged by the first run, 4 by the resumed one at log_interval=2).
    with open(tmp_path / "b" / "lion" / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    assert [r["step"] for r in records] == [1, 2, 4]
    want = {r["step"]: r["loss"] for r in full["history"]}
    assert [r["loss"] for r in records] == [want[r["step"]] for r in records]


def _run(task, args):
    # Two virtual devices are enough to exercise pmap/mesh and compile faster than 8.
    return run_example(task, *args, devices=2)


@pytest.mark.slow
def test_lm_example_pmap_with_checkpoints(tmp_path):
    # Exact resume itself is tested in-process above; this runs the app end-to-end.
    workdir = tmp_path / "lm"
    out = _run(
        "lm",
        [
            f"--workdir={workdir}",
            "--config.optimizer=adamw",
            '--config.opt_kwargs={"b2": 0.95}',
            "--config.parallel=pmap",
            "--config.num_steps=4",
            "--config.checkpoint_interval=2",
            "--config.z_loss=1e-4",
            "--config.qk_layernorm=True",
            *TINY_FLAGS,
        ],
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
        "compare",
        [
            f"--workdir={workdir}",
            '--config.optimizers=("adamw", "lion")',
            '--config.learning_rates={"lion": 1e-3}',
            "--config.parallel=mesh",
            "--config.num_steps=3",
            "--config.target_val_loss=100",
            *TINY_FLAGS,
        ],
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
    code = ("import os; from examples.lm import cpu; cpu.use_one_cpu_thread(); "
            "print(len(os.sched_getaffinity(0)), os.environ['XLA_FLAGS'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT, env={**os.environ, "XLA_FLAGS": "--foo"}).stdout
    assert out.split() == ["1", "--foo", "--xla_cpu_multi_thread_eigen=false"]
    with pytest.raises(RuntimeError, match="before JAX"):
        cpu.use_one_cpu_thread()
