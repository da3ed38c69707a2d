# SPDX-License-Identifier: Apache-2.0
"""The shared trainer of the LM examples: ``train_and_evaluate(config, workdir)`` for one run.

A byte-level GPT (:mod:`gradkit.models.transformer`) on a local text file or the
generated PCFG corpus (:mod:`examples.lm.input_pipeline`), trained with any gradkit or
optax alias chosen by name, on one device, under ``jax.pmap`` or under ``jax.jit`` over a
``Mesh`` spanning every process (:mod:`examples.lm.parallel_train`), with metrics JSONL,
orbax checkpoints and exact resume. This is the example of chaining gradkit into Flax
code: the optimizer is an ordinary ``optax.GradientTransformation`` and every step hands it
the keyword extra args that curvature methods need (``obj_fn``, ``logits_fn``); others
ignore them. ``config`` is the ``ml_collections.ConfigDict`` of
:mod:`examples.lm.configs.default` (an example may add fields of its own; this module reads
only those). Every LM example (lm, compare, memory, muon_lm, schedules, sophia) imports this
module by name.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from absl import logging as absl_logging

import gradkit
from examples import config_checks
from examples.lm import input_pipeline
from examples.lm import parallel_train
from gradkit.data import text
from gradkit.models import transformer

Config = ml_collections.ConfigDict

# Output-head bias initialisations (config.head_bias_init).
HEAD_BIAS_INITS = ("unigram", "zeros")
# Learning-rate schedules by name (config.schedule; a callable is also accepted).
SCHEDULES = ("cosine", "constant", "wsd", "wsd_s")
PARALLEL_MODES = ("none", "pmap", "mesh")


def decay_mask(params: Any) -> Any:
    """Weight decay on matrices (kernels, embeddings) only, not on biases and norms."""
    return jax.tree.map(lambda x: x.ndim >= 2, params)


# Per-optimizer defaults used when the config leaves them unset (keys: optimizer names,
# values: factory kwargs). AdamW 3e-3 (the best neighbourhood of notebooks/lm.ipynb's sweep
# at this size); Lion the 10× larger weight decay its paper advises; Sophia-H with lr 3e-3
# and γ 10 (docs/sophia.md); weight decay on matrices only (``decay_mask``). Measured
# results: docs/lm.md, docs/sophia.md. Other optimizers get only ``config.opt_kwargs``.
OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "adamw": {"learning_rate": 3e-3, "weight_decay": 0.1, "mask": decay_mask},
    "lion": {"learning_rate": 3e-3, "weight_decay": 1.0, "mask": decay_mask},
    "spam": {"learning_rate": 3e-3, "weight_decay": 0.1, "mask": decay_mask},
    "adamw_8bit": {"learning_rate": 3e-3, "weight_decay": 0.1, "mask": decay_mask},
    "sophia": {"learning_rate": 3e-3, "weight_decay": 0.1, "mask": decay_mask,
               "estimator": "hutchinson", "gamma": 10.0, "track_win_rate": True},
}
# Optimizers whose statistics average over the devices under pmap: they get
# ``axis_name=parallel_train.DATA_AXIS`` there (Sophia's Hessian estimate).
CROSS_DEVICE_OPTIMIZERS = frozenset({"sophia"})
FALLBACK_LEARNING_RATE = 1e-3

# Diagnostics looked up by name in the optimizer state and logged when present.
STATE_DIAGNOSTICS = ("num_clipped", "win_rate")

# Config fields a resumed run may change: they do not change the trained trajectory.
RESUMABLE_FIELDS = frozenset({"run_name", "stop_after", "resume", "progress", "log_interval",
                              "eval_interval", "eval_batches", "checkpoint_interval",
                              "parallel"})


def replace(config: Config, **changes: Any) -> Config:
    """A copy of ``config`` with ``changes`` (which may change a field's type, e.g. a
    callable ``schedule``)."""
    return ml_collections.ConfigDict({**config.to_dict(), **changes})


def run_name(config: Config) -> str:
    """The run's directory name: ``config.run_name``, else the optimizer name."""
    return config.run_name or config.optimizer


def validate(config: Config) -> None:
    """Raises ``ValueError`` naming the first invalid field of an LM ``config``."""
    config_checks.check_positive_ints(config, "num_steps", "batch_size", "seq_len",
                                      "log_interval", "eval_interval", "eval_batches")
    config_checks.check_learning_rates(config, "learning_rate", optional=True)
    if config.checkpoint_interval < 0:
        raise ValueError("config.checkpoint_interval must be ≥ 0 (0: no checkpoints), got "
                         f"{config.checkpoint_interval!r}.")
    if config.parallel not in PARALLEL_MODES:
        raise ValueError(
            f"config.parallel must be one of {PARALLEL_MODES}, got {config.parallel!r}.")


# ------------------------------------------------------------------------- optimizer


def resolve_optimizer(name: str) -> Callable[..., optax.GradientTransformation]:
    """The factory called ``name``: ``gradkit.<name>`` first, then ``optax.<name>``
    (dotted names reach submodules, e.g. ``contrib.muon`` is ``optax.contrib.muon``)."""
    for module in (gradkit, optax):
        factory = module
        for part in name.split("."):
            factory = getattr(factory, part, None)
        if callable(factory):
            return factory
    raise ValueError(f"`optimizer`: neither gradkit nor optax has an alias named {name!r}.")


def make_schedule(config: Config, peak: float) -> optax.Schedule:
    """The learning-rate schedule of ``config`` with peak ``peak``.

    ``cosine``: linear warm-up over ``warmup_steps``, cosine to 10% at ``num_steps``;
    ``constant``: ``peak`` throughout; ``wsd`` / ``wsd_s``: :func:`gradkit.wsd_schedule`
    (warm-up ``warmup_steps``, ``schedule_kwargs`` e.g. ``decay_steps``, ``decay_shape``,
    ``final_fraction``) / :func:`gradkit.wsd_s_schedule` (warm-up ``warmup_steps``,
    ``schedule_kwargs`` e.g. ``cycles``, ``decay``); a callable is used as it is.
    """
    if callable(config.schedule):
        return config.schedule
    warmup = min(config.warmup_steps, config.num_steps - 1)
    if config.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, config.num_steps,
                                                  peak * 0.1)
    if config.schedule == "constant":
        return optax.constant_schedule(peak)
    if config.schedule == "wsd":
        kw = {"decay_steps": 0, **_plain(config.schedule_kwargs)}
        return gradkit.wsd_schedule(peak, config.num_steps, warmup_steps=warmup, **kw)
    if config.schedule == "wsd_s":
        kw = {"cycles": 1, **_plain(config.schedule_kwargs)}
        return gradkit.wsd_s_schedule(peak, config.num_steps, warmup=warmup, **kw)
    raise ValueError(
        f"`schedule` must be one of {SCHEDULES} or a callable, got {config.schedule!r}.")


def make_optimizer(
    config: Config, axis_name: str | None = None
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Builds ``config.optimizer`` with its hyperparameters and schedule.

    Resolution: :func:`resolve_optimizer`; kwargs are ``OPTIMIZER_DEFAULTS[name]``
    updated by ``config.opt_kwargs`` and ``config.learning_rate``, passed as they are. The
    learning rate becomes a schedule. ``axis_name`` (pmap) is passed to the
    :data:`CROSS_DEVICE_OPTIMIZERS`.
    """
    factory = resolve_optimizer(config.optimizer)
    kwargs = dict(OPTIMIZER_DEFAULTS.get(config.optimizer, {}))
    kwargs.update(_plain(config.opt_kwargs))
    peak = config.learning_rate if config.learning_rate is not None else kwargs.get(
        "learning_rate")
    peak = FALLBACK_LEARNING_RATE if peak is None else float(peak)
    schedule = make_schedule(config, peak)
    kwargs["learning_rate"] = schedule
    if axis_name is not None and config.optimizer in CROSS_DEVICE_OPTIMIZERS:
        kwargs["axis_name"] = axis_name
    opt = factory(**kwargs)
    if config.grad_clip > 0:
        opt = optax.chain(optax.clip_by_global_norm(config.grad_clip), opt)
    return opt, schedule


def _plain(x: Any) -> dict[str, Any]:
    """A config's dict field (a ``ConfigDict``) as a plain ``dict``."""
    return x.to_dict() if isinstance(x, ml_collections.ConfigDict) else dict(x)


def _local_value(x: Any) -> np.ndarray:
    """A replicated array's value on this host (also for arrays spanning processes)."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return np.asarray(x.addressable_data(0))
    return np.asarray(x)


def state_diagnostics(opt_state: Any) -> dict[str, float]:
    """Values of :data:`STATE_DIAGNOSTICS` found in an optimizer state (mean if several);
    a diagnostic that is switched off is absent from the state and not logged."""
    out = {}
    for key in STATE_DIAGNOSTICS:
        found = optax.tree_utils.tree_get_all_with_path(opt_state, key)
        # An optional state field that is off holds None (spam's count_interval=None).
        values = [_local_value(v).astype(np.float64) for _, v in found if v is not None]
        values = [v.mean() for v in values]
        if values:
            out[key] = float(np.mean(values))
    return out


# ----------------------------------------------------------------------------- model


def model_config(config: Config, train_tokens: np.ndarray) -> transformer.TransformerConfig:
    """The model of ``config``; ``train_tokens`` give the unigram prior of the head bias."""
    if config.head_bias_init not in HEAD_BIAS_INITS:
        raise ValueError(
            f"`head_bias_init` must be one of {HEAD_BIAS_INITS}, got {config.head_bias_init!r}."
        )
    head_bias = None
    if config.head_bias_init == "unigram":
        head_bias = tuple(text.unigram_log_prior(train_tokens, text.VOCAB_SIZE).tolist())
    return transformer.TransformerConfig(
        vocab_size=text.VOCAB_SIZE,
        max_len=config.seq_len,
        d_model=config.d_model,
        num_layers=config.num_layers,
        num_heads=config.num_heads,
        mlp_ratio=config.mlp_ratio,
        norm=config.norm,
        qk_layernorm=config.qk_layernorm,
        stable_embedding=config.stable_embedding,
        head_bias_init=head_bias,
    )


def make_loss_fns(model: transformer.Transformer, z_loss: float):
    """``loss_fn(params, batch) -> (loss, aux)`` and the optimizer's extra args."""

    def loss_fn(params, batch):
        logits = model.apply(params, batch["inputs"])
        return transformer.lm_loss(logits, batch["targets"], z_loss=z_loss)

    def extra_args_fn(params, batch):
        del params
        return {
            "obj_fn": lambda p: loss_fn(p, batch)[0],
            "logits_fn": lambda p: model.apply(p, batch["inputs"]),
        }

    return loss_fn, extra_args_fn


# ------------------------------------------------------------ checkpoints and config


class _QuietOrbaxInfo(logging.Filter):
    """Drops orbax's INFO/DEBUG records (~70 per checkpointing run) unless absl's
    verbosity asks for debug output (``--verbosity=1``); its warnings still pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or absl_logging.get_verbosity() >= 1:
            return True
        return f"{os.sep}orbax{os.sep}" not in record.pathname


_ORBAX_FILTER = _QuietOrbaxInfo()


def quiet_orbax_logs() -> None:
    """Installs the filter of orbax's INFO logs on absl's logger (idempotent)."""
    logger = absl_logging.get_absl_logger()
    if _ORBAX_FILTER not in logger.filters:
        logger.addFilter(_ORBAX_FILTER)


def run_dir(config: Config, workdir: str) -> str:
    """Where a run writes: ``<workdir>/<run_name(config)>``."""
    return os.path.abspath(os.path.join(workdir, run_name(config)))


def _checkpoint_manager(directory: str, writer: bool = True) -> ocp.CheckpointManager:
    """Orbax manager of ``<directory>/checkpoints``. In a multi-process run each process
    has its own, over itself only: process 0 saves host copies of the replicated state,
    the others only restore (``writer=False`` creates nothing)."""
    path = os.path.join(directory, "checkpoints")
    if writer:
        os.makedirs(path, exist_ok=True)
    options = {"max_to_keep": 2, "create": False}
    if jax.process_count() > 1:
        me = jax.process_index()
        options["multiprocessing_options"] = ocp.options.MultiprocessingOptions(
            primary_host=me, active_processes={me}, barrier_sync_key_prefix=f"process_{me}")
    return ocp.CheckpointManager(path, options=ocp.CheckpointManagerOptions(**options))


def _restore(manager: ocp.CheckpointManager, template: dict[str, Any]) -> tuple[int, Any]:
    step = manager.latest_step()
    if step is None:
        return 0, template
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    restored = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    state = jax.tree.unflatten(jax.tree.structure(template), jax.tree.leaves(restored))
    return int(step), state


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if x is None or isinstance(x, bool | int | float | str):
        return x
    if callable(x):  # schedules, masks: compared by name (a closure's values are not seen)
        return f"<callable {getattr(x, '__module__', '?')}.{getattr(x, '__qualname__', '?')}>"
    return repr(x)


def config_record(config: Config) -> dict[str, Any]:
    """The JSON-able fields of ``config`` (callables by name), as stored with a run."""
    return {name: _jsonable(value) for name, value in config.items()}


def check_resumable(saved: dict[str, Any], config: Config) -> None:
    """Raises ``ValueError`` if ``config`` differs from the run's ``saved`` config in a field
    that changes the trajectory (``num_steps`` sets the learning-rate schedule, ...)."""
    now = config_record(config)
    diffs = [f"{k}={saved[k]!r} (this run: {now[k]!r})" for k in sorted(now)
             if k not in RESUMABLE_FIELDS and k in saved and saved[k] != now[k]]
    if diffs:
        raise ValueError(
            f"config.resume: run {run_name(config)!r} was checkpointed with a different config: "
            f"{'; '.join(diffs)}. These fields change the training trajectory (num_steps, "
            f"warmup_steps and schedule set the learning-rate schedule). Resume with the "
            f"run's values, or start a new run (another run_name or workdir, or no resume).")


# ----------------------------------------------------------------------------- train


def read_jsonl(path: str) -> list[dict[str, Any]]:
    """Records of a JSONL file (``[]`` if it does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def train_and_evaluate(config: Config, workdir: str) -> dict[str, Any]:
    """Trains one run in ``<workdir>/<run_name(config)>``; returns its summary (final params,
    history).

    Writes ``metrics.jsonl`` (one JSON record per logged step: ``loss``, ``ce``, ``log_z``,
    ``grad_norm``, ``grad_norm_l1``, ``lr``, optimizer diagnostics such as
    ``num_clipped``/``win_rate`` when the state has them; at evaluation steps ``val_loss``
    and ``residual_common_share``, the :func:`transformer.common_direction_share` of the
    residual stream on the validation batches), ``config.json`` and, with
    ``checkpoint_interval``, orbax checkpoints of ``{params, opt_state}``. Batches are a pure
    function of ``(seed, step)``, so ``resume`` continues exactly; it refuses a config that
    differs from the checkpointed run's in a field outside :data:`RESUMABLE_FIELDS`. In a
    multi-process run (``jax.distributed.initialize`` first, ``parallel="mesh"``) every
    process trains and only process 0 writes metrics, config and checkpoints (host copies
    of the replicated state); the others read the checkpoint to resume.
    """
    validate(config)
    if jax.process_count() > 1 and config.parallel != "mesh":
        raise ValueError("a multi-process run needs `parallel='mesh'` (pmap and 'none' train "
                         f"on this process's devices only), got {config.parallel!r}.")
    quiet_orbax_logs()
    is_writer = jax.process_index() == 0
    directory = run_dir(config, workdir)
    metrics_path = os.path.join(directory, "metrics.jsonl")
    config_path = os.path.join(directory, "config.json")
    checkpoints = os.path.join(directory, "checkpoints")
    has_checkpoint = os.path.isdir(checkpoints) and any(
        name.isdigit() for name in os.listdir(checkpoints))
    if config.resume and has_checkpoint and os.path.exists(config_path):  # refuse early
        with open(config_path) as f:
            check_resumable(json.load(f), config)
    data = input_pipeline.load_dataset(config)
    model = transformer.Transformer(model_config(config, data.train))
    params = model.init(jax.random.key(config.seed), jnp.zeros((1, config.seq_len), jnp.int32))
    num_params = sum(x.size for x in jax.tree.leaves(params))
    axis_name = parallel_train.DATA_AXIS if config.parallel == "pmap" else None
    opt, schedule = make_optimizer(config, axis_name=axis_name)
    opt_state = opt.init(params)
    loss_fn, extra_args_fn = make_loss_fns(model, config.z_loss)

    if is_writer:
        os.makedirs(directory, exist_ok=True)
    use_manager = bool(config.checkpoint_interval or config.resume)
    manager = _checkpoint_manager(directory, writer=is_writer) if use_manager else None
    start = 0
    if config.resume and manager is not None and manager.latest_step() is not None:
        start, restored = _restore(manager, {"params": params, "opt_state": opt_state})
        params, opt_state = restored["params"], restored["opt_state"]
    if start == 0:  # fresh run: forget older metrics and checkpoints of this run
        if manager is not None:
            manager.close()
            if is_writer:
                shutil.rmtree(checkpoints, ignore_errors=True)
            manager = _checkpoint_manager(directory) if (
                config.checkpoint_interval and is_writer) else None
        history: list[dict[str, Any]] = []
    else:  # drop records logged after the checkpoint by the interrupted run
        history = [r for r in read_jsonl(metrics_path) if r["step"] <= start]
    if is_writer:
        with open(config_path, "w") as f:
            json.dump(config_record(config), f, indent=1)
        with open(metrics_path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in history)

    # Placement and the step function for the chosen parallelism.
    if config.parallel == "pmap":
        n = jax.local_device_count()
        step_fn = parallel_train.pmap_train_step(
            loss_fn, opt, axis_name=parallel_train.DATA_AXIS, extra_args_fn=extra_args_fn
        )
        params = parallel_train.replicate(params)
        opt_state = parallel_train.replicate(opt_state)

        def put_batch(b):
            return parallel_train.split_for_pmap(b, n)

        def host(tree):
            return parallel_train.unreplicate(tree)
    elif config.parallel == "mesh":
        mesh = parallel_train.make_data_mesh()
        step_fn = parallel_train.mesh_train_step(loss_fn, opt, mesh, extra_args_fn=extra_args_fn)
        params = parallel_train.replicate_on_mesh(params, mesh)
        opt_state = parallel_train.replicate_on_mesh(opt_state, mesh)

        def put_batch(b):
            return parallel_train.shard_batch(b, mesh)

        def host(tree):
            return tree
    else:
        step_fn = jax.jit(
            parallel_train.data_parallel_train_step(loss_fn, opt, extra_args_fn=extra_args_fn)
        )

        def put_batch(b):
            return b

        def host(tree):
            return tree

    @jax.jit
    def eval_step(params, batch):
        logits, inter = model.apply(params, batch["inputs"], mutable=["intermediates"])
        ce = transformer.lm_loss(logits, batch["targets"])[1]["ce"]
        share = transformer.common_direction_share(inter["intermediates"]["residual"][0])
        return ce, share

    val_sets = input_pipeline.eval_batches(data, config)

    def evaluate(p) -> dict[str, float]:
        p = jax.tree.map(_local_value, p) if jax.process_count() > 1 else p
        ces, shares = zip(*(eval_step(p, b) for b in val_sets), strict=True)
        return {"val_loss": float(np.mean(ces)), "residual_common_share": float(np.mean(shares))}

    end = config.num_steps if config.stop_after is None else min(config.stop_after,
                                                                 config.num_steps)
    step_times: list[float] = []
    progress = _progress_bar(config, start, end) if is_writer else None
    with open(metrics_path if is_writer else os.devnull, "a") as log:
        for step in range(start + 1, end + 1):
            batch = input_pipeline.train_batch(data, step, config)
            t0 = time.perf_counter()
            params, opt_state, metrics = step_fn(params, opt_state, put_batch(batch))
            jax.block_until_ready(metrics)
            step_times.append(time.perf_counter() - t0)
            is_eval = step % config.eval_interval == 0 or step == end
            if step % config.log_interval == 0 or is_eval:
                record = {"step": step, "lr": float(schedule(step - 1))}
                record.update({k: float(np.mean(_local_value(v))) for k, v in metrics.items()})
                record.update(state_diagnostics(host(opt_state)))
                if is_eval:
                    record.update(evaluate(host(params)))
                history.append(record)
                log.write(json.dumps(record) + "\n")
                log.flush()
                if progress is not None:
                    progress.set_postfix(
                        {k: f"{record[k]:.3f}" for k in ("loss", "val_loss") if k in record}
                    )
            if progress is not None:
                progress.update(1)
            if (is_writer and manager is not None and config.checkpoint_interval
                    and (step % config.checkpoint_interval == 0 or step == end)):
                state = {"params": host(params), "opt_state": host(opt_state)}
                if jax.process_count() > 1:  # this host's copy: saved by process 0 alone
                    state = jax.tree.map(_local_value, state)
                manager.save(step, args=ocp.args.StandardSave(state), force=True)
    if progress is not None:
        progress.close()
    if manager is not None:
        manager.wait_until_finished()
        manager.close()

    val = [r for r in history if "val_loss" in r]
    # Median wall time of a step, skipping the first two (compilation).
    timed = step_times[2:] or step_times
    return {
        "name": run_name(config),
        "optimizer": config.optimizer,
        "num_params": int(num_params),
        "params": jax.tree.map(_local_value, host(params)),
        "opt_state": jax.tree.map(_local_value, host(opt_state)),
        "history": history,
        "final_val_loss": val[-1]["val_loss"] if val else float("nan"),
        "time_per_step": statistics.median(timed) if timed else float("nan"),
        "last_step": end,
    }


def _progress_bar(config: Config, start: int, end: int):
    if not config.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=end, initial=start, desc=run_name(config), dynamic_ncols=True,
                mininterval=1.0)
