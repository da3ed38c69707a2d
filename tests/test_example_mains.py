# SPDX-License-Identifier: Apache-2.0
"""Every example in the Flax layout: ``python -m examples.<task>.main`` with an
``ml_collections`` config file, ``train_and_evaluate(config, workdir)`` that refuses a bad
config by name before it writes anything; one subprocess runs a main end to end. The runs
themselves are tested in-process in each example's test module."""

from __future__ import annotations

import ast
import importlib

import ml_collections
import pytest

from tests.helpers import ROOT
from tests.helpers import read_jsonl
from tests.helpers import run_example

EXAMPLES = sorted(p.parent.name for p in (ROOT / "examples").glob("*/main.py"))

# A field of each example's config and a value its train_and_evaluate must refuse.
BAD_VALUES = {
    "compare": ("num_steps", 0),
    "drop_muon_cnn": ("batch_size", 0),
    "eggroll_lm": ("eval_interval", 0),
    "eggroll_rl": ("learning_rate", -0.1),
    "grokking": ("epochs", -1),
    "layers": ("seeds", 0),
    "lion_vs_adamw": ("lion_lr", float("nan")),
    "lm": ("log_interval", 0),
    "memory": ("batch_size", 0),
    "multitask": ("ada_eval_interval", 0),
    "muon_lm": ("num_steps", -5),
    "schedules": ("learning_rate", float("inf")),
    "sophia": ("eval_interval", 0),
    "spikes": ("log_interval", 0),
}


def test_every_example_is_listed():
    assert set(EXAMPLES) == set(BAD_VALUES) | {"spectrum"}


@pytest.mark.parametrize("task", EXAMPLES)
def test_main_reads_flags_from_the_config_file_only(task):
    source = (ROOT / "examples" / task / "main.py").read_text()
    tree = ast.parse(source)
    defined = {node.args[0].value for node in ast.walk(tree)
               if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
               and node.func.attr.startswith("DEFINE_")}
    assert {"config", "workdir"} <= defined
    assert defined <= {"config", "workdir", "coordinator_address", "num_processes",
                       "process_id"}
    assert "sys.path" not in source and "DEFINE_config_file" in source


@pytest.mark.parametrize("task", EXAMPLES)
def test_config_and_train_and_evaluate(task):
    config = importlib.import_module(f"examples.{task}.configs.default").get_config()
    assert isinstance(config, ml_collections.ConfigDict)
    train = importlib.import_module(f"examples.{task}.train")
    assert callable(train.train_and_evaluate)


@pytest.mark.parametrize("task", sorted(BAD_VALUES))
def test_bad_config_is_refused_by_name_before_anything_is_written(task, tmp_path):
    config = importlib.import_module(f"examples.{task}.configs.default").get_config()
    field, value = BAD_VALUES[task]
    config[field] = value
    train = importlib.import_module(f"examples.{task}.train")
    with pytest.raises(ValueError, match=rf"config\.{field}"):
        train.train_and_evaluate(config, str(tmp_path))
    assert not list(tmp_path.iterdir())


def test_spectrum_refuses_an_unknown_experiment_and_bad_sub_configs(tmp_path):
    from examples.spectrum import train
    from examples.spectrum.configs import default

    config = default.get_config()
    config.experiment = "hessian"
    with pytest.raises(ValueError, match=r"config\.experiment"):
        train.train_and_evaluate(config, str(tmp_path))
    config = default.get_config()
    config.eos.sharpness_interval = 0
    with pytest.raises(ValueError, match=r"config\.eos\.sharpness_interval"):
        train.train_and_evaluate(config, str(tmp_path))


@pytest.mark.slow
def test_a_main_runs_as_a_module_with_config_overrides(tmp_path):
    out = run_example("lion_vs_adamw", f"--workdir={tmp_path}", "--config.steps=4",
                      "--config.eval_interval=2", "--config.num_test=32", "--config.width=8",
                      "--config.batch_size=8", "--config.progress=False")
    assert "| lion |" in out and "| adamw |" in out
    assert [r["step"] for r in read_jsonl(tmp_path / "metrics.jsonl")] == [2, 4, 2, 4]
