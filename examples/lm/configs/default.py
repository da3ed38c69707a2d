"""Default configuration of the reference LM run (``examples/lm/main.py``).

A frozen dataclass stands in for Flax's ``ml_collections.ConfigDict`` (not a gradkit
dependency): ``get_config()`` returns the defaults, ``dataclasses.replace(config, ...)``
(or ``get_config(num_steps=...)``) derives variants, and the absl flags of
:mod:`examples.lm.cli` mirror the fields one to one.
"""

from __future__ import annotations

import dataclasses
from typing import Any

# Output-head bias initialisations (Config.head_bias_init).
HEAD_BIAS_INITS = ("unigram", "zeros")
# Learning-rate schedules by name (Config.schedule; a callable is also accepted).
SCHEDULES = ("cosine", "constant", "wsd", "wsd_s")
PARALLEL_MODES = ("none", "pmap", "mesh")


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything a run needs except where it writes (``train_and_evaluate``'s workdir)."""

    run_name: str | None = None  # run directory under workdir; default: the optimizer name
    # Optimizer.
    optimizer: str = "adamw"  # gradkit alias first, then optax (dotted: "contrib.muon")
    learning_rate: float | None = None  # peak; None: train.OPTIMIZER_DEFAULTS or 1e-3
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
    stable_embedding: bool = False  # Xavier-uniform embedding + LayerNorm (8-bit recipe)
    z_loss: float = 0.0
    # Output-head bias at init: "unigram" = the training data's centred log unigram
    # frequencies (docs/lm.md: a zero bias stalls bounded-step optimizers), "zeros" = Flax.
    head_bias_init: str = "unigram"
    # Data.
    data_path: str | None = None  # local text file or directory; None: generated corpus
    corpus_bytes: int = 2_000_000
    val_fraction: float = 0.05
    batch_size: int = 32  # global batch (all devices, all processes)
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


def get_config(**overrides: Any) -> Config:
    """The default configuration, with ``overrides`` applied."""
    return dataclasses.replace(Config(), **overrides)
