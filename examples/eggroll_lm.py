r"""Backprop-free character language modelling with EGGROLL (toy scale).

A minGRU char model (``gradkit.models.mingru``) is trained without gradients: each
step, N members (low-rank perturbations of every Dense/Embed matrix) score the same
batch of generated text; fitness is −(mean cross-entropy); ``scale_by_eggroll`` +
Adam update the model. This is the paper's backprop-free LM pretraining at toy
scale, on a small synthetic corpus generated here (no downloads).

    PYTHONPATH=. python examples/eggroll_lm.py --workdir=/tmp/eggroll_lm

Writes ``metrics.jsonl``, ``final.json`` and ``loss.png`` (bits per character of the
mean model on held-out text) to ``--workdir``.
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
flags.DEFINE_integer("seq_len", 64, "Characters per sequence.")
flags.DEFINE_integer("eval_every", 25, "Held-out evaluation period (steps).")
flags.DEFINE_integer("seed", 0, "Seed.")
FLAGS = flags.FLAGS


def synthetic_corpus(num_chars: int, seed: int = 0) -> str:
    """Sentences from a tiny random grammar: learnable structure, no download."""
    rng = np.random.default_rng(seed)
    subjects = ["the cat", "a dog", "my friend", "the old man", "she", "we"]
    verbs = ["sees", "likes", "eats", "finds", "wants", "makes"]
    objects = ["the ball", "a red apple", "some bread", "the small house", "it", "water"]
    endings = [".", "!", " today.", " again."]
    parts = []
    total = 0
    while total < num_chars:
        s = (f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}"
             f"{rng.choice(endings)} ")
        parts.append(s)
        total += len(s)
    return "".join(parts)[:num_chars]


def main(argv):
    del argv
    os.makedirs(FLAGS.workdir, exist_ok=True)
    text = synthetic_corpus(200_000, FLAGS.seed)
    vocab = sorted(set(text))
    data = np.asarray([vocab.index(c) for c in text], np.int32)
    split = int(0.9 * len(data))
    train, held = data[:split], data[split:]
    model = MinGRULM(len(vocab), FLAGS.features, FLAGS.depth)
    n, sigma, rank, t = FLAGS.population, FLAGS.sigma, FLAGS.rank, FLAGS.seq_len
    params = model.init(jax.random.key(FLAGS.seed), jnp.zeros((1, t), jnp.int32))["params"]
    opt = optax.chain(gradkit.scale_by_eggroll(sigma, rank, seed=FLAGS.seed),
                      optax.adam(FLAGS.learning_rate))
    opt_state = opt.init(params)

    def xent(logits, targets):
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, targets))

    @jax.jit
    def step(params, opt_state, batch):
        inputs, targets = batch[:, :-1], batch[:, 1:]
        key = gradkit.eggroll_current_key(opt_state)
        logits = gradkit.eggroll_population_apply(model, params, key, inputs,
                                                  population_size=n, sigma=sigma, rank=rank)
        losses = jax.vmap(lambda lg: xent(lg, targets))(logits)
        updates, opt_state = opt.update(params, opt_state, params, fitness=-losses)
        return optax.apply_updates(params, updates), opt_state, jnp.mean(losses)

    @jax.jit
    def evaluate(params, batch):
        return xent(model.apply({"params": params}, batch[:, :-1]), batch[:, 1:])

    def sample(source, rng, count):
        starts = rng.integers(0, len(source) - t - 1, count)
        return jnp.asarray(np.stack([source[s:s + t + 1] for s in starts]))

    rng = np.random.default_rng(FLAGS.seed)
    held_batch = sample(held, np.random.default_rng(FLAGS.seed + 1), 64)
    history, start = [], time.time()
    with open(os.path.join(FLAGS.workdir, "metrics.jsonl"), "w") as log:
        for i in tqdm(range(FLAGS.steps), desc="EGGROLL minGRU LM"):
            params, opt_state, pop_loss = step(params, opt_state,
                                               sample(train, rng, FLAGS.batch))
            row = {"step": i + 1, "population_loss_nats": float(pop_loss),
                   "wall_s": time.time() - start}
            if (i + 1) % FLAGS.eval_every == 0 or i + 1 == FLAGS.steps or i == 0:
                row["heldout_bits_per_char"] = float(evaluate(params, held_batch)) / np.log(2)
            history.append(row)
            log.write(json.dumps(row) + "\n")
    result = {"steps": FLAGS.steps, "population": n, "sigma": sigma, "rank": rank,
              "vocab_size": len(vocab), "seed": FLAGS.seed,
              "uniform_bits_per_char": float(np.log2(len(vocab))),
              "final_heldout_bits_per_char": history[-1]["heldout_bits_per_char"],
              "wall_s": time.time() - start}
    with open(os.path.join(FLAGS.workdir, "final.json"), "w") as f:
        json.dump(result, f, indent=2)
    fig, ax = plt.subplots(figsize=(6, 4))
    ev = [(r["step"], r["heldout_bits_per_char"]) for r in history
          if "heldout_bits_per_char" in r]
    ax.plot(*zip(*ev, strict=True), "o-", label="held-out (mean model)")
    ax.axhline(result["uniform_bits_per_char"], ls="--", c="gray", label="uniform")
    ax.set_xlabel("ES step")
    ax.set_ylabel("bits per character")
    ax.set_title(f"EGGROLL minGRU char LM (N={n}, r={rank})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(FLAGS.workdir, "loss.png"), dpi=120)
    plt.close(fig)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    app.run(main)
