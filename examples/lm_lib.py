"""Training logic of the language-model examples (``lm.py``, ``compare.py``), importable.

A byte-level GPT (:mod:`gradkit.models.transformer`) on a local text file or the
generated PCFG corpus (:mod:`gradkit.data.text`), trained with any gradkit or optax
alias chosen by name, on one device, under ``jax.pmap`` or under ``jax.jit`` over a
``Mesh`` (:mod:`gradkit.parallel`), with metrics JSONL, orbax checkpoints and exact
resume. This file is the example of chaining gradkit into Flax code: the optimizer is
an ordinary ``optax.GradientTransformation`` and every step hands it the keyword extra
args that curvature methods need (``obj_fn``, ``logits_fn``); others ignore them.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import shutil
import statistics
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from absl import flags

import gradkit
from gradkit import parallel
from gradkit.data import text
from gradkit.models import transformer

# Per-optimizer defaults used when a flag leaves them unset (keys: optimizer names,
# values: factory kwargs). AdamW: 3e-3 (the best of {1e-3, 3e-3, 1e-2} neighbourhood in
# notebooks/lm.ipynb's sweep for this size). Lion: the 10x larger weight decay its paper
# advises at AdamW's learning rate (val loss 0.703 in the main demo, below AdamW's 0.724).
# Sophia: Sophia-H with lr 3e-3 and γ 10 (docs/sophia.md; 0.778 in the main demo). The Lion
# and Sophia numbers need the unigram head-bias init (docs/lm.md): with a zero bias they
# ended the demo at 2.21 and 1.70.
OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "adamw": {"learning_rate": 3e-3, "weight_decay": 0.1},
    "lion": {"learning_rate": 3e-3, "weight_decay": 1.0},
    "spam": {"learning_rate": 3e-3, "weight_decay": 0.1},
    "sophia": {"learning_rate": 3e-3, "weight_decay": 0.1, "estimator": "hutchinson",
               "gamma": 10.0},
}
FALLBACK_LEARNING_RATE = 1e-3

# Output-head bias initialisations (Config.head_bias_init).
HEAD_BIAS_INITS = ("unigram", "zeros")

# Diagnostics looked up by name in the optimizer state and logged when present.
STATE_DIAGNOSTICS = ("num_clipped", "win_rate")


@dataclasses.dataclass
class Config:
    """Everything a run needs (mirrors the absl flags of ``lm.py``)."""

    workdir: str = "/tmp/gradkit_lm"
    run_name: str | None = None  # default: the optimizer name
    # Optimizer.
    optimizer: str = "adamw"
    learning_rate: float | None = None  # None: OPTIMIZER_DEFAULTS or 1e-3
    opt_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    # "cosine" (warm-up then cosine to 10%), "constant", "wsd", "wsd_s" (gradkit.schedules,
    # warm-up = warmup_steps, other arguments from schedule_kwargs), or any optax schedule.
    schedule: Any = "cosine"
    schedule_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    warmup_steps: int = 50
    grad_clip: float = 0.0  # global-norm clipping before the optimizer; 0 disables
    # Model.
    d_model: int = 64
    num_layers: int = 2
    num_heads: int = 4
    mlp_ratio: int = 4
    norm: str = "pre"
    qk_layernorm: bool = False
    z_loss: float = 0.0
    # Output-head bias at init: "unigram" = the training data's centred log unigram
    # frequencies (docs/lm.md: a zero bias stalls bounded-step optimizers), "zeros" = Flax.
    head_bias_init: str = "unigram"
    # Data.
    data_path: str | None = None
    corpus_bytes: int = 2_000_000
    val_fraction: float = 0.05
    batch_size: int = 32
    seq_len: int = 64
    seed: int = 0
    # Loop.
    num_steps: int = 600
    stop_after: int | None = None  # stop early at this step (simulates an interruption)
    log_every: int = 10
    eval_every: int = 50
    eval_batches: int = 4
    checkpoint_every: int = 0  # 0: no checkpoints
    resume: bool = False
    parallel: str = "none"  # "none" | "pmap" | "mesh"
    progress: bool = True

    @property
    def name(self) -> str:
        return self.run_name or self.optimizer

    @property
    def run_dir(self) -> str:
        return os.path.abspath(os.path.join(self.workdir, self.name))


# ----------------------------------------------------------------------------- flags


def define_flags() -> None:
    """Defines the absl flags shared by ``lm.py`` and ``compare.py``."""
    d = Config()
    flags.DEFINE_string("workdir", d.workdir, "Output directory (metrics, checkpoints, plots).")
    flags.DEFINE_float("learning_rate", None, "Peak learning rate (default: per optimizer).")
    flags.DEFINE_string(
        "opt_kwargs", "{}", "JSON dict of extra optimizer kwargs, e.g. '{\"b2\": 0.95}'."
    )
    flags.DEFINE_enum("schedule", d.schedule, list(SCHEDULES), "Learning-rate schedule.")
    flags.DEFINE_string(
        "schedule_kwargs", "{}", "JSON dict for wsd/wsd_s, e.g. '{\"decay_steps\": 120}'."
    )
    flags.DEFINE_integer("warmup_steps", d.warmup_steps, "Linear warm-up steps.")
    flags.DEFINE_float("grad_clip", d.grad_clip, "Global-norm gradient clipping (0 = off).")
    flags.DEFINE_integer("d_model", d.d_model, "Model width.")
    flags.DEFINE_integer("num_layers", d.num_layers, "Transformer blocks.")
    flags.DEFINE_integer("num_heads", d.num_heads, "Attention heads.")
    flags.DEFINE_integer("mlp_ratio", d.mlp_ratio, "MLP width multiplier.")
    flags.DEFINE_enum("norm", d.norm, ["pre", "peri"], "LayerNorm placement.")
    flags.DEFINE_bool("qk_layernorm", d.qk_layernorm, "LayerNorm on queries and keys.")
    flags.DEFINE_float("z_loss", d.z_loss, "Output-logit z-loss coefficient (1e-4 typical).")
    flags.DEFINE_enum(
        "head_bias_init", d.head_bias_init, list(HEAD_BIAS_INITS),
        "Output-head bias at init: the data's log unigram prior, or Flax's zeros.",
    )
    flags.DEFINE_string("data_path", None, "Local text file or directory (default: generated).")
    flags.DEFINE_integer("corpus_bytes", d.corpus_bytes, "Size of the generated corpus.")
    flags.DEFINE_float("val_fraction", d.val_fraction, "Validation fraction (tail of the text).")
    flags.DEFINE_integer("batch_size", d.batch_size, "Global batch size (sequences).")
    flags.DEFINE_integer("seq_len", d.seq_len, "Sequence length (bytes).")
    flags.DEFINE_integer("seed", d.seed, "Seed of init, data order and generated corpus.")
    flags.DEFINE_integer("num_steps", d.num_steps, "Training steps (sets the schedule).")
    flags.DEFINE_integer("stop_after", None, "Stop at this step (then --resume continues).")
    flags.DEFINE_integer("log_every", d.log_every, "Train-metrics logging interval.")
    flags.DEFINE_integer("eval_every", d.eval_every, "Validation interval.")
    flags.DEFINE_integer("eval_batches", d.eval_batches, "Validation batches per evaluation.")
    flags.DEFINE_integer("checkpoint_every", d.checkpoint_every, "Checkpoint interval (0 = off).")
    flags.DEFINE_bool("resume", d.resume, "Resume from the latest checkpoint of the run.")
    flags.DEFINE_enum("parallel", d.parallel, ["none", "pmap", "mesh"], "Data parallelism.")
    flags.DEFINE_bool("progress", d.progress, "Show a tqdm progress bar.")


def config_from_flags(flag_values: flags.FlagValues, **overrides: Any) -> Config:
    """A :class:`Config` from the flags defined by :func:`define_flags`."""
    names = [f.name for f in dataclasses.fields(Config)]
    kwargs = {n: flag_values[n].value for n in names if n in flag_values}
    for key in ("opt_kwargs", "schedule_kwargs"):
        if isinstance(kwargs.get(key), str):
            kwargs[key] = json.loads(kwargs[key])
    kwargs.update(overrides)
    return Config(**kwargs)


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


def _decay_mask(params: Any) -> Any:
    """Weight decay on matrices (kernels, embeddings) only, not on biases and norms."""
    return jax.tree.map(lambda x: x.ndim >= 2, params)


SCHEDULES = ("cosine", "constant", "wsd", "wsd_s")


def make_schedule(cfg: Config, peak: float) -> optax.Schedule:
    """The learning-rate schedule of ``cfg`` with peak ``peak``.

    ``cosine``: linear warm-up over ``warmup_steps``, cosine to 10% at ``num_steps``;
    ``constant``: ``peak`` throughout; ``wsd`` / ``wsd_s``: :func:`gradkit.wsd_schedule`
    (warm-up ``warmup_steps``, ``schedule_kwargs`` e.g. ``decay_steps``, ``decay_shape``,
    ``final_fraction``) / :func:`gradkit.wsd_s_schedule` (warm-up ``warmup_steps``,
    ``schedule_kwargs`` e.g. ``cycles``, ``decay``); a callable is used as it is.
    """
    if callable(cfg.schedule):
        return cfg.schedule
    warmup = min(cfg.warmup_steps, cfg.num_steps - 1)
    if cfg.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, cfg.num_steps, peak * 0.1)
    if cfg.schedule == "constant":
        return optax.constant_schedule(peak)
    if cfg.schedule == "wsd":
        kw = {"decay_steps": 0, **cfg.schedule_kwargs}
        return gradkit.wsd_schedule(peak, cfg.num_steps, warmup_steps=warmup, **kw)
    if cfg.schedule == "wsd_s":
        kw = {"cycles": 1, **cfg.schedule_kwargs}
        return gradkit.wsd_s_schedule(peak, cfg.num_steps, warmup=warmup, **kw)
    raise ValueError(f"`schedule` must be one of {SCHEDULES} or a callable, got {cfg.schedule!r}.")


def make_optimizer(
    cfg: Config, axis_name: str | None = None
) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """Builds ``cfg.optimizer`` with its hyperparameters and schedule.

    Resolution: :func:`resolve_optimizer`; kwargs are ``OPTIMIZER_DEFAULTS[name]``
    updated by ``cfg.opt_kwargs`` and ``cfg.learning_rate``. The learning rate becomes a
    schedule. If the factory takes ``mask`` and none is given, weight decay is masked to
    matrices; if it takes ``axis_name`` and ``axis_name`` is given (pmap), it is passed.
    """
    factory = resolve_optimizer(cfg.optimizer)
    kwargs = dict(OPTIMIZER_DEFAULTS.get(cfg.optimizer, {}))
    kwargs.update(cfg.opt_kwargs)
    peak = cfg.learning_rate if cfg.learning_rate is not None else kwargs.get("learning_rate")
    peak = FALLBACK_LEARNING_RATE if peak is None else float(peak)
    schedule = make_schedule(cfg, peak)
    kwargs["learning_rate"] = schedule
    params = inspect.signature(factory).parameters
    if "mask" in params and "mask" not in kwargs and "weight_decay" in kwargs:
        kwargs["mask"] = _decay_mask
    if axis_name is not None and "axis_name" in params:
        kwargs["axis_name"] = axis_name
    opt = factory(**kwargs)
    if cfg.grad_clip > 0:
        opt = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), opt)
    return opt, schedule


def state_diagnostics(opt_state: Any) -> dict[str, float]:
    """Values of :data:`STATE_DIAGNOSTICS` found in an optimizer state (mean if several)."""
    out = {}
    for key in STATE_DIAGNOSTICS:
        found = optax.tree_utils.tree_get_all_with_path(opt_state, key)
        if found:
            out[key] = float(np.mean([np.asarray(v, np.float64).mean() for _, v in found]))
    return out


# ----------------------------------------------------------------------------- model


def model_config(cfg: Config, train_tokens: np.ndarray) -> transformer.TransformerConfig:
    """The model of ``cfg``; ``train_tokens`` give the unigram prior of the head bias."""
    if cfg.head_bias_init not in HEAD_BIAS_INITS:
        raise ValueError(
            f"`head_bias_init` must be one of {HEAD_BIAS_INITS}, got {cfg.head_bias_init!r}."
        )
    head_bias = None
    if cfg.head_bias_init == "unigram":
        head_bias = tuple(text.unigram_log_prior(train_tokens, text.VOCAB_SIZE).tolist())
    return transformer.TransformerConfig(
        vocab_size=text.VOCAB_SIZE,
        max_len=cfg.seq_len,
        d_model=cfg.d_model,
        num_layers=cfg.num_layers,
        num_heads=cfg.num_heads,
        mlp_ratio=cfg.mlp_ratio,
        norm=cfg.norm,
        qk_layernorm=cfg.qk_layernorm,
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


# ------------------------------------------------------------------------ checkpoint


def _checkpoint_manager(cfg: Config) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(
        os.path.join(cfg.run_dir, "checkpoints"),
        options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True),
    )


def _restore(manager: ocp.CheckpointManager, template: dict[str, Any]) -> tuple[int, Any]:
    step = manager.latest_step()
    if step is None:
        return 0, template
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
    restored = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    state = jax.tree.unflatten(jax.tree.structure(template), jax.tree.leaves(restored))
    return int(step), state


# ----------------------------------------------------------------------------- train


def _read_jsonl(path: str) -> list[dict[str, Any]]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def train(cfg: Config) -> dict[str, Any]:
    """Trains one run; returns a summary with the final params and the metrics history.

    Writes ``<workdir>/<run>/metrics.jsonl`` (one JSON record per logged step: ``loss``,
    ``ce``, ``log_z``, ``grad_norm``, ``lr``, optimizer diagnostics such as
    ``num_clipped``/``win_rate`` when the state has them; at evaluation steps ``val_loss``
    and ``residual_common_share``, the :func:`transformer.common_direction_share` of the
    residual stream on the validation batches) and, with ``checkpoint_every``, orbax
    checkpoints of ``{params, opt_state}``.
    Batches are a pure function of ``(seed, step)``, so ``resume`` continues exactly.
    """
    if cfg.parallel not in ("none", "pmap", "mesh"):
        raise ValueError(f"`parallel` must be none|pmap|mesh, got {cfg.parallel!r}.")
    data = text.load_text(
        cfg.data_path, num_bytes=cfg.corpus_bytes, seed=cfg.seed, val_fraction=cfg.val_fraction
    )
    model = transformer.Transformer(model_config(cfg, data.train))
    params = model.init(jax.random.key(cfg.seed), jnp.zeros((1, cfg.seq_len), jnp.int32))
    num_params = sum(x.size for x in jax.tree.leaves(params))
    axis_name = parallel.DATA_AXIS if cfg.parallel == "pmap" else None
    opt, schedule = make_optimizer(cfg, axis_name=axis_name)
    opt_state = opt.init(params)
    loss_fn, extra_args_fn = make_loss_fns(model, cfg.z_loss)

    os.makedirs(cfg.run_dir, exist_ok=True)
    metrics_path = os.path.join(cfg.run_dir, "metrics.jsonl")
    manager = _checkpoint_manager(cfg) if (cfg.checkpoint_every or cfg.resume) else None
    start = 0
    if cfg.resume and manager is not None:
        start, restored = _restore(manager, {"params": params, "opt_state": opt_state})
        params, opt_state = restored["params"], restored["opt_state"]
    if start == 0:  # fresh run: forget older metrics and checkpoints of this run
        if manager is not None:
            manager.close()
            shutil.rmtree(os.path.join(cfg.run_dir, "checkpoints"), ignore_errors=True)
            manager = _checkpoint_manager(cfg) if cfg.checkpoint_every else None
        history: list[dict[str, Any]] = []
    else:  # drop records logged after the checkpoint by the interrupted run
        history = [r for r in _read_jsonl(metrics_path) if r["step"] <= start]
    with open(metrics_path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in history)

    # Placement and the step function for the chosen parallelism.
    if cfg.parallel == "pmap":
        n = jax.local_device_count()
        step_fn = parallel.pmap_train_step(
            loss_fn, opt, axis_name=parallel.DATA_AXIS, extra_args_fn=extra_args_fn
        )
        params, opt_state = parallel.replicate(params), parallel.replicate(opt_state)

        def put_batch(b):
            return parallel.split_for_pmap(b, n)

        def host(tree):
            return parallel.unreplicate(tree)
    elif cfg.parallel == "mesh":
        mesh = parallel.make_data_mesh()
        step_fn = parallel.mesh_train_step(loss_fn, opt, mesh, extra_args_fn=extra_args_fn)
        params = parallel.replicate_on_mesh(params, mesh)
        opt_state = parallel.replicate_on_mesh(opt_state, mesh)

        def put_batch(b):
            return parallel.shard_batch(b, mesh)

        def host(tree):
            return tree
    else:
        step_fn = jax.jit(
            parallel.data_parallel_train_step(loss_fn, opt, extra_args_fn=extra_args_fn)
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

    val_sets = list(text.eval_batches(data.val, cfg.batch_size, cfg.seq_len, cfg.eval_batches))

    def evaluate(p) -> dict[str, float]:
        ces, shares = zip(*(eval_step(p, b) for b in val_sets), strict=True)
        return {"val_loss": float(np.mean(ces)), "residual_common_share": float(np.mean(shares))}

    end = cfg.num_steps if cfg.stop_after is None else min(cfg.stop_after, cfg.num_steps)
    step_times: list[float] = []
    progress = _progress_bar(cfg, start, end)
    with open(metrics_path, "a") as log:
        for step in range(start + 1, end + 1):
            batch = text.train_batch(
                data.train,
                step,
                cfg.batch_size,
                cfg.seq_len,
                cfg.seed,
                shard=jax.process_index(),
                num_shards=jax.process_count(),
            )
            t0 = time.perf_counter()
            params, opt_state, metrics = step_fn(params, opt_state, put_batch(batch))
            jax.block_until_ready(metrics)
            step_times.append(time.perf_counter() - t0)
            is_eval = step % cfg.eval_every == 0 or step == end
            if step % cfg.log_every == 0 or is_eval:
                record = {"step": step, "lr": float(schedule(step - 1))}
                record.update({k: float(np.mean(v)) for k, v in metrics.items()})
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
            if manager is not None and (step % cfg.checkpoint_every == 0 or step == end):
                manager.save(
                    step,
                    args=ocp.args.StandardSave(
                        {"params": host(params), "opt_state": host(opt_state)}
                    ),
                    force=True,
                )
    if progress is not None:
        progress.close()
    if manager is not None:
        manager.wait_until_finished()
        manager.close()

    val = [r for r in history if "val_loss" in r]
    # Median wall time of a step, skipping the first two (compilation).
    timed = step_times[2:] or step_times
    return {
        "name": cfg.name,
        "optimizer": cfg.optimizer,
        "num_params": int(num_params),
        "params": jax.device_get(host(params)),
        "opt_state": jax.device_get(host(opt_state)),
        "history": history,
        "final_val_loss": val[-1]["val_loss"] if val else float("nan"),
        "time_per_step": statistics.median(timed) if timed else float("nan"),
        "last_step": end,
    }


def _progress_bar(cfg: Config, start: int, end: int):
    if not cfg.progress:
        return None
    from tqdm import tqdm

    return tqdm(total=end, initial=start, desc=cfg.name, dynamic_ncols=True, mininterval=1.0)


def steps_to_target(history: list[dict[str, Any]], target: float) -> int | None:
    """First evaluation step whose validation loss is ≤ ``target`` (``None`` if never)."""
    for r in history:
        if "val_loss" in r and r["val_loss"] <= target:
            return int(r["step"])
    return None


# ----------------------------------------------------------------------------- plots


def plot_runs(runs: dict[str, list[dict[str, Any]]], path: str, title: str = "") -> str:
    """Train (thin) and validation (thick, markers) loss vs step for several runs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (name, history) in enumerate(runs.items()):
        color = f"C{i}"
        tr = [(r["step"], r["loss"]) for r in history if "loss" in r]
        va = [(r["step"], r["val_loss"]) for r in history if "val_loss" in r]
        if tr:
            ax.plot(*zip(*tr, strict=True), color=color, alpha=0.35, lw=1)
        if va:
            ax.plot(
                *zip(*va, strict=True), color=color, lw=2, marker="o", ms=3, label=f"{name} (val)"
            )
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats / byte)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def runs_in_workdir(workdir: str) -> dict[str, list[dict[str, Any]]]:
    """Metrics histories of every run directory under ``workdir`` (sorted by name)."""
    runs = {}
    if os.path.isdir(workdir):
        for name in sorted(os.listdir(workdir)):
            history = _read_jsonl(os.path.join(workdir, name, "metrics.jsonl"))
            if history:
                runs[name] = history
    return runs


# ------------------------------------------------------------------------ comparison


def comparison_table(
    results: dict[str, dict[str, Any]], target: float, baseline: str = "adamw"
) -> tuple[str, list[dict[str, Any]]]:
    """Markdown table + rows: steps to ``target`` val loss, final val loss, time ratio.

    Time per step is each run's median step time divided by ``baseline``'s (or by the
    first run's when ``baseline`` did not run).
    """
    base = results.get(baseline) or next(iter(results.values()))
    rows = []
    for name, r in results.items():
        rows.append(
            {
                "optimizer": name,
                "steps_to_target": steps_to_target(r["history"], target),
                "final_val_loss": r["final_val_loss"],
                "time_per_step_s": r["time_per_step"],
                "time_vs_baseline": r["time_per_step"] / base["time_per_step"],
            }
        )
    lines = [
        f"| optimizer | steps to val loss ≤ {target:g} | final val loss | "
        f"time/step vs {base['name']} |",
        "|---|---|---|---|",
    ]
    for row in rows:
        steps = row["steps_to_target"]
        lines.append(
            f"| {row['optimizer']} | {steps if steps is not None else 'not reached'} | "
            f"{row['final_val_loss']:.4f} | {row['time_vs_baseline']:.2f}× |"
        )
    return "\n".join(lines), rows


def write_json(path: str, obj: Any) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
