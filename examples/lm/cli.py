"""The absl flags of the reference LM, shared by every main built on it.

A main calls :func:`define_flags` (optionally after changing defaults with
``FLAGS.set_default``), declares them its own with ``flags.adopt_module_key_flags(cli)``
so that ``--help`` lists them, and turns the parsed flags into a
:class:`~examples.lm.configs.default.Config` with :func:`config_from_flags`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from typing import Any

from absl import flags

from examples.lm.configs import default
from examples.lm.configs.default import Config


class JsonDictParser(flags.ArgumentParser):
    """Parses a flag holding a JSON object into a ``dict`` (absl names the flag on error)."""

    syntactic_help = "a JSON object, e.g. '{\"b2\": 0.95}'"

    def parse(self, argument: Any) -> dict[str, Any]:
        if isinstance(argument, dict):
            return argument
        try:
            value = json.loads(argument)
        except json.JSONDecodeError as e:
            raise ValueError(f"not valid JSON ({e.msg} at character {e.pos}): {argument!r}; "
                             f"expected {self.syntactic_help}") from None
        if not isinstance(value, dict):
            raise ValueError(f"expected {self.syntactic_help}, got {type(value).__name__} "
                             f"{argument!r}")
        return value

    def flag_type(self) -> str:
        return "JSON object"


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines ``--workdir`` and one absl flag per :class:`Config` field in ``flag_values``."""
    d = default.get_config()
    string = functools.partial(flags.DEFINE_string, flag_values=flag_values)
    integer = functools.partial(flags.DEFINE_integer, flag_values=flag_values)
    real = functools.partial(flags.DEFINE_float, flag_values=flag_values)
    boolean = functools.partial(flags.DEFINE_bool, flag_values=flag_values)
    enum = functools.partial(flags.DEFINE_enum, flag_values=flag_values)

    def _define_json_dict(name: str, help_text: str) -> None:
        flags.DEFINE(JsonDictParser(), name, "{}", help_text,
                     serializer=flags.ArgumentSerializer(), flag_values=flag_values)

    string("workdir", "/tmp/gradkit_lm",
           "Output directory (runs, metrics, checkpoints, plots).")
    string("run_name", None, "Run directory under workdir (default: optimizer).")
    string("optimizer", d.optimizer,
           "gradkit or optax alias name (gradkit first; dotted: contrib.muon).")
    real("learning_rate", None, "Peak learning rate (default: per optimizer).")
    _define_json_dict("opt_kwargs", "Extra optimizer kwargs as a JSON object, "
                      "e.g. '{\"b2\": 0.95}'.")
    enum("schedule", d.schedule, list(default.SCHEDULES), "Learning-rate schedule.")
    _define_json_dict("schedule_kwargs", "JSON object for wsd/wsd_s, "
                      "e.g. '{\"decay_steps\": 120}'.")
    integer("warmup_steps", d.warmup_steps, "Linear warm-up steps.")
    real("grad_clip", d.grad_clip, "Global-norm gradient clipping (0 = off).")
    integer("d_model", d.d_model, "Model width.")
    integer("num_layers", d.num_layers, "Transformer blocks.")
    integer("num_heads", d.num_heads, "Attention heads.")
    integer("mlp_ratio", d.mlp_ratio, "MLP width multiplier.")
    enum("norm", d.norm, ["pre", "peri"], "LayerNorm placement.")
    boolean("qk_layernorm", d.qk_layernorm, "LayerNorm on queries and keys.")
    boolean("stable_embedding", d.stable_embedding,
            "Stable embedding (Dettmers et al. 2022): Xavier-uniform token embedding + "
            "LayerNorm; with an 8-bit optimizer keep its state 32-bit: "
            "--opt_kwargs='{\"keep_32bit\": [\"tok_embed\"]}'.")
    real("z_loss", d.z_loss, "Output-logit z-loss coefficient (1e-4 typical).")
    enum("head_bias_init", d.head_bias_init, list(default.HEAD_BIAS_INITS),
         "Output-head bias at init: the data's log unigram prior, or Flax's zeros.")
    string("data_path", None, "Local text file or directory (default: generated).")
    integer("corpus_bytes", d.corpus_bytes, "Size of the generated corpus.")
    real("val_fraction", d.val_fraction, "Validation fraction (tail of the text).")
    integer("batch_size", d.batch_size, "Global batch size (sequences).")
    integer("seq_len", d.seq_len, "Sequence length (bytes).")
    integer("seed", d.seed, "Seed of init, data order and generated corpus.")
    integer("num_steps", d.num_steps, "Training steps (sets the schedule).")
    integer("stop_after", None, "Stop at this step (then --resume continues).")
    integer("log_every", d.log_every, "Train-metrics logging interval.")
    integer("eval_every", d.eval_every, "Validation interval.")
    integer("eval_batches", d.eval_batches, "Validation batches per evaluation.")
    integer("checkpoint_every", d.checkpoint_every, "Checkpoint interval (0 = off).")
    boolean("resume", d.resume, "Resume from the latest checkpoint of the run "
            "(refused if the run's config differs, e.g. another --num_steps).")
    enum("parallel", d.parallel, list(default.PARALLEL_MODES), "Data parallelism.")
    boolean("progress", d.progress, "Show a tqdm progress bar.")


def config_from_flags(flag_values: flags.FlagValues, **overrides: Any) -> Config:
    """A :class:`Config` from the flags of :func:`define_flags`, then ``overrides``."""
    names = [f.name for f in dataclasses.fields(Config)]
    kwargs = {n: flag_values[n].value for n in names if n in flag_values}
    kwargs.update(overrides)
    return Config(**kwargs)


SINGLE_THREAD_FLAG = "--xla_cpu_multi_thread_eigen=false"


def define_one_cpu_thread_flag(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines ``--one_cpu_thread``; a main calls :func:`use_one_cpu_thread` when it is set."""
    flags.DEFINE_bool("one_cpu_thread", False, "Compute on one CPU thread, so that the "
                      "results do not depend on the machine's core count (slower; "
                      "docs/lm.md).", flag_values=flag_values)


def use_one_cpu_thread() -> None:
    """Makes XLA compute on one CPU thread: call it before JAX is imported.

    XLA's CPU backend splits matrix products and reductions over as many threads as the
    process may use, so the float summation order, hence the trained model, depends on the
    machine's core count (docs/lm.md, "Reproducibility"). Restricting the process to one CPU
    (``os.sched_setaffinity``, Linux) and Eigen to one thread gives every machine the
    single-thread result, at the cost of using one core.
    """
    if "jax" in sys.modules:
        raise RuntimeError("use_one_cpu_thread() must run before JAX is imported.")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    xla_flags = os.environ.get("XLA_FLAGS", "")
    if SINGLE_THREAD_FLAG not in xla_flags:
        os.environ["XLA_FLAGS"] = f"{xla_flags} {SINGLE_THREAD_FLAG}".strip()
