r"""Backprop-free byte-level language modelling with EGGROLL (toy scale).

A minGRU byte model (``gradkit.models.mingru``, vocabulary 256) is trained without
gradients: each step, N members (low-rank perturbations of every Dense/Embed matrix)
score the same batch of text; fitness is −(mean cross-entropy); ``scale_by_eggroll`` +
Adam update the model. This is the paper's backprop-free LM pretraining at toy scale.
The text comes from :mod:`gradkit.data.text`: its generated English-like PCFG corpus by
default (no downloads), or a local file/directory with ``--data_path``; the training
batch of step i is a pure function of ``(seed, i)`` and the held-out text is the tail.

    PYTHONPATH=. python examples/eggroll_lm.py --workdir=/tmp/eggroll_lm
    PYTHONPATH=. python examples/eggroll_lm.py --data_path=/path/to/text.txt

Writes ``metrics.jsonl``, ``final.json`` and ``loss.png`` (bits per character, i.e. per
byte, of the mean model on held-out text) to ``--workdir``.
"""

from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import optax
from absl import app
from absl import flags
from tqdm import tqdm

import gradkit
from gradkit.data import text
from gradkit.models.mingru import MinGRULM

matplotlib.use("Agg")
import matplotlib.pyplot as plt

flags.DEFINE_string("workdir", "/tmp/eggroll_lm", "Where metrics and plots go.")
flags.DEFINE_integer("steps", 300, "ES steps.")
flags.DEFINE_integer("population", 64, "Population size N (even).")
flags.DEFINE_float("sigma", 0.02, "Perturbation scale σ.")
flags.DEFINE_integer("rank", 1, "Rank r of the matrix perturbations.")
flags.DEFINE_float("learning_rate", 0.01, "Adam learning rate.")
flags.DEFINE_integer("features", 64, "Model width.")
flags.DEFINE_integer("depth", 2, "minGRU layers.")
flags.DEFINE_integer("batch", 16, "Sequences per step (shared by all members).")
flags.DEFINE_integer("seq_len", 64, "Bytes (characters) per sequence.")
flags.DEFINE_integer("eval_every", 25, "Held-out evaluation period (steps).")
flags.DEFINE_integer("seed", 0, "Seed of init, noise, data order and generated corpus.")
flags.DEFINE_string("data_path", None, "Local text file or directory (default: generated).")
flags.DEFINE_integer("corpus_bytes", 200_000, "Size of the generated corpus.")
flags.DEFINE_enum("head_bias_init", "unigram", ["unigram", "zeros"],
                  "Head bias at init: the training data's log unigram prior, or zeros.")
FLAGS = flags.FLAGS


# Held-out windows (evenly spaced over the validation tail) scored at each evaluation.
HELD_OUT_WINDOWS = 64


def main(argv):
    del argv
    os.makedirs(FLAGS.workdir, exist_ok=True)
    data = text.load_text(FLAGS.data_path, num_bytes=FLAGS.corpus_bytes, seed=FLAGS.seed)
    head_bias = None
    if FLAGS.head_bias_init == "unigram":
        head_bias = tuple(text.unigram_log_prior(data.train).tolist())
    model = MinGRULM(text.VOCAB_SIZE, FLAGS.features, FLAGS.depth, head_bias_init=head_bias)
    n, sigma, rank, t = FLAGS.population, FLAGS.sigma, FLAGS.rank, FLAGS.seq_len
    params = model.init(jax.random.key(FLAGS.seed), jnp.zeros((1, t), jnp.int32))["params"]
    opt = optax.chain(gradkit.scale_by_eggroll(sigma, rank, seed=FLAGS.seed),
                      optax.adam(FLAGS.learning_rate))
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
    with open(os.path.join(FLAGS.workdir, "metrics.jsonl"), "w") as log:
        for i in tqdm(range(FLAGS.steps), desc="EGGROLL minGRU LM"):
            batch = text.train_batch(data.train, i + 1, FLAGS.batch, t, FLAGS.seed)
            params, opt_state, pop_loss = step(params, opt_state, batch["inputs"],
                                               batch["targets"])
            row = {"step": i + 1, "population_loss_nats": float(pop_loss),
                   "wall_s": time.time() - start}
            if (i + 1) % FLAGS.eval_every == 0 or i + 1 == FLAGS.steps or i == 0:
                row["heldout_bits_per_char"] = float(evaluate(params, held_batch)) / np.log(2)
            history.append(row)
            log.write(json.dumps(row) + "\n")
    result = {"steps": FLAGS.steps, "population": n, "sigma": sigma, "rank": rank,
              "vocab_size": text.VOCAB_SIZE, "seed": FLAGS.seed, "data": data.source,
              "uniform_bits_per_char": float(np.log2(text.VOCAB_SIZE)),
              "unigram_bits_per_char": text.unigram_entropy(data.train) / np.log(2),
              "final_heldout_bits_per_char": history[-1]["heldout_bits_per_char"],
              "wall_s": time.time() - start}
    with open(os.path.join(FLAGS.workdir, "final.json"), "w") as f:
        json.dump(result, f, indent=2)
    fig, ax = plt.subplots(figsize=(6, 4))
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
    fig.savefig(os.path.join(FLAGS.workdir, "loss.png"), dpi=120)
    plt.close(fig)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(main)
