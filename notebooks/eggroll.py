# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # EGGROLL: low-rank evolution strategies, backprop-free
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradkit/gradkit/blob/main/notebooks/eggroll.ipynb)
#
# Sarkar et al., *Evolution Strategies at the Hyperscale* (2025,
# [arXiv 2511.16652](https://arxiv.org/abs/2511.16652)), Algorithm 1. Member i of the
# population is evaluated at W + σ·A_iB_iᵀ/√r for every weight matrix W (A_i, B_i Gaussian
# with r columns; vectors get dense Gaussian noise), so a whole population runs as one
# shared GEMM per layer plus cheap rank-r corrections. `gradkit.scale_by_eggroll` turns the
# members' fitness into the ES update −(1/(Nσ))·Σ f̃_i E_i, which any optax optimizer then
# applies (Adam here). No gradient is ever computed.
#
# Both runs below are the repository's examples called in-process with their README
# settings (`examples/eggroll_rl`, `examples/eggroll_lm`):
#
# 1. **CartPole-v1** (gymnax) with an MLP 64-64 policy, population 64, rank 1: the paper's
#    claim is that EGGROLL matches full-rank ES on RL tasks; CartPole counts as solved at a
#    mean return ≥ 475 over 100 episodes.
# 2. **A byte-level minGRU language model** trained by ES alone on the generated corpus of
#    `gradkit.data.text`, population 64, rank 1 (the paper pretrains an integer minGRU LM
#    the same way; ours is a small float32 one).
#
# Set `TINY = True` in the parameters cell to run it in seconds (the test suite does).

# %%
import pathlib
import sys

REPOSITORY = "https://github.com/gradkit/gradkit"
if "google.colab" in sys.modules:  # Colab: install gradkit, fetch the examples it imports
    # %pip install -q "gradkit[examples] @ git+https://github.com/gradkit/gradkit"
    # !test -d /content/gradkit || git clone -q --depth=1 {REPOSITORY} /content/gradkit
    sys.path.insert(0, "/content/gradkit")
elif pathlib.Path.cwd().name == "notebooks":  # a checkout's notebooks/ folder
    sys.path.insert(0, str(pathlib.Path.cwd().parent))

# %% tags=["parameters"]
TINY = False  # True: a test-size run in seconds (the test suite sets it)

# %%
import json
import os
import pathlib
import tempfile

import jax
import matplotlib.pyplot as plt

# The example code is the repository's `examples` package (the first cell makes it importable).
from examples.eggroll_lm import train as lm
from examples.eggroll_lm.configs import default as lm_default
from examples.eggroll_rl import train as rl
from examples.eggroll_rl.configs import default as rl_default

# %matplotlib inline

rl_cfg = rl_default.get_config()  # the README's run: 60 generations, population 64
lm_cfg = lm_default.get_config()
lm_cfg.steps = 150  # the README's run
if TINY:
    rl_cfg.update(generations=2, population=8, max_steps=20, eval_interval=1,
                  eval_episodes=4, hidden=(8,))
    lm_cfg.update(steps=2, population=4, features=8, depth=1, batch=2, seq_len=8,
                  eval_interval=1, corpus_bytes=20_000)
rl_cfg.progress = lm_cfg.progress = False
workdir = pathlib.Path(os.environ.get("GRADKIT_EGGROLL_WORKDIR") or tempfile.mkdtemp())
print(jax.devices(), "tiny" if TINY else "full size", workdir)


def read_rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


# %% [markdown]
# ## 1. CartPole-v1
#
# Every generation the 64 members play one episode each (antithetic pairs play the same
# episode), their returns are z-scored and become the fitness. The mean policy is evaluated
# every few generations on 100 fresh episodes.

# %%
rl_result = rl.train_and_evaluate(rl_cfg, str(workdir / "cartpole"))
rl_rows = read_rows(workdir / "cartpole" / "metrics.jsonl")
print(f"final mean return over {rl_result['eval_episodes']} episodes: "
      f"{rl_result['final_mean_return']:.1f} (min {rl_result['final_min_return']:.0f}), "
      f"{rl_result['train_wall_s']:.1f} s of training")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot([r["generation"] for r in rl_rows], [r["fitness_mean"] for r in rl_rows],
        label="population mean return")
evals = [r for r in rl_rows if "eval_return" in r]
ax.plot([r["generation"] for r in evals], [r["eval_return"] for r in evals], "o-",
        label=f"mean policy, {rl_cfg.eval_episodes} episodes")
ax.axhline(475, color="gray", ls=":", label="solved (475)")
ax.set_xlabel("generation")
ax.set_ylabel("return")
ax.set_title(f"EGGROLL on {rl_cfg.env}: population {rl_cfg.population}, rank {rl_cfg.rank}")
ax.legend()
plt.show()

# %% [markdown]
# ## 2. A minGRU byte-level language model, trained by ES alone
#
# 64 members score the same batch of 16 × 64 bytes; the fitness is minus each member's
# cross-entropy. The output bias starts at the log unigram prior of the training bytes
# (with a zero bias the same run ends at 3.59 bits/byte instead of 3.11); the reference
# points are the uniform code (8 bits) and the unigram entropy of the corpus.

# %%
lm_result = lm.train_and_evaluate(lm_cfg, str(workdir / "mingru"))
lm_rows = read_rows(workdir / "mingru" / "metrics.jsonl")
print(f"held-out bits/byte after {lm_result['steps']} steps: "
      f"{lm_result['final_heldout_bits_per_char']:.2f} (uniform "
      f"{lm_result['uniform_bits_per_char']:.1f}, unigram "
      f"{lm_result['unigram_bits_per_char']:.2f}), {lm_result['wall_s']:.0f} s")

# %%
held = [r for r in lm_rows if "heldout_bits_per_char" in r]
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot([r["step"] for r in held], [r["heldout_bits_per_char"] for r in held], "o-",
        label="held out")
ax.axhline(lm_result["unigram_bits_per_char"], color="gray", ls=":", label="unigram entropy")
ax.set_xlabel("ES step")
ax.set_ylabel("bits per byte")
ax.set_title(f"EGGROLL minGRU LM: population {lm_cfg.population}, rank {lm_cfg.rank}")
ax.legend()
plt.show()

# %% [markdown]
# ## Where the numbers go
#
# The README's EGGROLL table holds both results with the commands that reproduce them.
# Population throughput against plain batched inference and against naive full-rank ES (the
# paper's 91% / 69% / 0.41% figure) is measured by `python -m benchmarks.eggroll`; the
# numbers, and why the noise drawn inside the jitted forward is kept in memory, are in
# `docs/evolution.md`.
