# SPDX-License-Identifier: Apache-2.0
r"""Backprop-free byte-level language modelling with EGGROLL (toy scale).

The logic of ``python -m examples.eggroll_lm.main`` (configuration: ``configs/default.py``):
:func:`train_and_evaluate`. A minGRU byte model (``gradkit.models.mingru``, vocabulary
256) is trained without gradients: each step, N members (low-rank perturbations of every
Dense/Embed matrix) score the same batch of text; fitness is −(mean cross-entropy);
``scale_by_eggroll`` + Adam update the model. This is the paper's backprop-free LM
pretraining at toy scale. The text comes from :mod:`gradkit.data.text`: its generated
English-like PCFG corpus by default (no downloads), or a local file/directory
(``data_path``); the training batch of step i is a pure function of ``(seed, i)`` and the
held-out text is the tail.

Writes ``metrics.jsonl``, ``final.json`` and ``loss.png`` (bits per character, i.e. per
byte, of the mean model on held-out text) to the workdir.
"""

from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from ml_collections import ConfigDict as Config
from tqdm import tqdm

import gradkit
from examples import config_checks
from gradkit.data import text
from gradkit.models.mingru import MinGRULM

# Held-out windows (evenly spaced over the validation tail) scored at each evaluation.
HELD_OUT_WINDOWS = 64


def validate(config) -> None:
    """Raises ``ValueError`` naming the first invalid field of ``config``."""
    config_checks.check_positive_ints(config, "steps", "population", "rank", "features", "depth",
                                      "batch", "seq_len", "eval_interval")
    config_checks.check_learning_rates(config, "learning_rate", "sigma")


def train_and_evaluate(config: Config, workdir: str) -> dict:
    """Trains; writes metrics.jsonl, final.json and loss.png to ``workdir``; returns the
    final result (held-out bits per character, uniform and unigram baselines, wall time)."""
    validate(config)
    progress = config.progress
    cfg = config
    os.makedirs(workdir, exist_ok=True)
    data = text.load_text(cfg.data_path, num_bytes=cfg.corpus_bytes, key=cfg.seed)
    head_bias = None
    if cfg.head_bias_init == "unigram":
        head_bias = tuple(text.unigram_log_prior(data.train).tolist())
    model = MinGRULM(text.VOCAB_SIZE, cfg.features, cfg.depth, head_bias_init=head_bias)
    n, sigma, rank, t = cfg.population, cfg.sigma, cfg.rank, cfg.seq_len
    params = model.init(jax.random.key(cfg.seed), jnp.zeros((1, t), jnp.int32))["params"]
    opt = optax.chain(gradkit.scale_by_eggroll(sigma, rank=rank, key=cfg.seed),
                      optax.adam(cfg.learning_rate))
    opt_state = opt.init(params)

    def xent(logits, targets):
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, targets))

    @jax.jit
    def step(params, opt_state, inputs, targets):
        key = gradkit.eggroll_current_key(opt_state)
        logits = gradkit.eggroll_population_apply(model, params, key, inputs,
                                                  population_size=n)
        losses = jax.vmap(lambda lg: xent(lg, targets))(logits)
        updates, opt_state = opt.update(params, opt_state, params, fitness=-losses)
        return optax.apply_updates(params, updates), opt_state, jnp.mean(losses)

    @jax.jit
    def evaluate(params, batch):
        return xent(model.apply({"params": params}, batch["inputs"]), batch["targets"])

    held_batch = next(text.eval_batches(data.val, HELD_OUT_WINDOWS, t, 1))
    history, start = [], time.time()
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as log:
        for i in tqdm(range(cfg.steps), desc="EGGROLL minGRU LM", disable=not progress):
            batch = text.train_batch(data.train, i + 1, cfg.batch, t, cfg.seed)
            params, opt_state, pop_loss = step(params, opt_state, batch["inputs"],
                                               batch["targets"])
            row = {"step": i + 1, "population_loss_nats": float(pop_loss),
                   "wall_s": time.time() - start}
            if (i + 1) % cfg.eval_interval == 0 or i + 1 == cfg.steps or i == 0:
                row["heldout_bits_per_char"] = float(evaluate(params, held_batch)) / np.log(2)
            history.append(row)
            log.write(json.dumps(row) + "\n")
    result = {"steps": cfg.steps, "population": n, "sigma": sigma, "rank": rank,
              "vocab_size": text.VOCAB_SIZE, "seed": cfg.seed, "data": data.source,
              "uniform_bits_per_char": float(np.log2(text.VOCAB_SIZE)),
              "unigram_bits_per_char": text.unigram_entropy(data.train) / np.log(2),
              "final_heldout_bits_per_char": history[-1]["heldout_bits_per_char"],
              "wall_s": time.time() - start}
    with open(os.path.join(workdir, "final.json"), "w") as f:
        json.dump(result, f, indent=2)
    _plot(history, result, n, rank, os.path.join(workdir, "loss.png"))
    return result


def _plot(history, result, n, rank, path):
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ev = [(r["step"], r["heldout_bits_per_char"]) for r in history
          if "heldout_bits_per_char" in r]
    ax.plot(*zip(*ev, strict=True), "o-", label="held-out (mean model)")
    ax.axhline(result["uniform_bits_per_char"], ls="--", c="gray", label="uniform")
    ax.axhline(result["unigram_bits_per_char"], ls=":", c="gray", label="unigram entropy")
    ax.set_xlabel("ES step")
    ax.set_ylabel("bits per character")
    ax.set_title(f"EGGROLL minGRU byte LM (N={n}, r={rank})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
