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
# # Memory-efficient optimizer state: 8-bit AdamW, FRUGAL and Fira
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradkit/gradkit/blob/main/notebooks/memory.ipynb)
#
# Adam keeps two float32 moments: 8 bytes of state per parameter. Three ways to cut that,
# each an ordinary `optax` transformation in gradkit (details and measurements in
# `docs/memory.md`):
#
# * **8-bit AdamW** (Dettmers et al. 2022, arXiv 2110.02861): both moments stored as uint8
#   codes of a dynamic map with one float32 scale per block — about 2 B/param.
# * **FRUGAL** (Zmushko et al. 2025, arXiv 2411.07837): Adam on a state-full fraction ρ of
#   the attention/MLP weights (whole tensors, chosen every T steps, moments reset), signSGD
#   on the rest — about 2ρ·4 B/param on those weights.
# * **Fira** (Chen et al. 2024, arXiv 2410.01623): Adam on the rank-r GaLore projection of
#   each weight's gradient plus the full-rank residual scaled per row/column by the Adam
#   gain of its low-rank part, with a norm-growth limiter (γ = 1.01).
#
# Below: the state bytes of each on a GPT-like parameter tree, then all four training the
# reference byte-level LM from the same init on the same batches (set `TINY = True` (the parameters
# cell) to
# run in seconds, as the test suite does).

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
import sys
import tempfile

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import optax

import gradkit

# The example code is the repository's `examples` package (the first cell makes it importable).
from examples.lm import report
from examples.lm import trainer
from examples.lm.configs import default as lm_default
from examples.memory import train as memory


def Config(**fields):  # named like the configuration it returns
    """The reference LM's default configuration with ``fields`` changed."""
    return trainer.replace(lm_default.get_config(), **fields)

# %matplotlib inline
print("tiny" if TINY else "full size")


# %% [markdown]
# ## 1. State bytes per parameter on a GPT-like tree
# d = 512, 8 blocks, byte vocabulary (256): the blocks' kernels dominate, as in the papers'
# LLaMA models. FRUGAL and Fira act on the blocks' kernels only; embeddings, head, norms
# and biases keep AdamW. Bytes are summed over the actual `opt.init` state pytree.

# %%
def gpt_like(d, layers, vocab=256, seq=256):
    p = {"tok_embed": jnp.zeros((vocab, d)), "pos_embed": jnp.zeros((seq, d)),
         "head": {"kernel": jnp.zeros((d, vocab)), "bias": jnp.zeros(vocab)}}
    for i in range(layers):
        p[f"block_{i}"] = {"attn": {"qkv": {"kernel": jnp.zeros((d, 3 * d))},
                                    "out": {"kernel": jnp.zeros((d, d))}},
                           "mlp": {"fc": {"kernel": jnp.zeros((d, 4 * d))},
                                   "proj": {"kernel": jnp.zeros((4 * d, d))}},
                           "norm": {"scale": jnp.zeros(d)}}
    return p

d, layers = (64, 2) if TINY else (512, 8)
params = gpt_like(d, layers)
n = sum(x.size for x in jax.tree.leaves(params))
body = memory.body_kernel_mask
optimizers = {
    "adamw": optax.adamw(1e-3),
    "adamw_8bit": gradkit.adamw_8bit(1e-3),
    "frugal ρ=0.25 (blocks)": gradkit.frugal(1e-3, rho=0.25, frugal_mask=body),
    "frugal ρ=0.25 (svd)": gradkit.frugal(1e-3, rho=0.25, projection="svd", frugal_mask=body),
    "frugal ρ=0.25 (columns)": gradkit.frugal(1e-3, rho=0.25, projection="columns",
                                              frugal_mask=body),
    f"fira rank {d // 4}": gradkit.fira(1e-2, rank=d // 4, fira_mask=body),
}
print(f"{n:,} parameters")
print("| optimizer | state B/param |")
print("|---|---|")
for name, opt in optimizers.items():
    print(f"| {name} | {gradkit.memory.state_bytes(opt.init(params)) / n:.2f} |")

# %% [markdown]
# ## 2. Quality on the reference LM
# `examples/memory/train.py`: AdamW (the LM example's defaults: peak 3e-3, weight decay 0.1,
# warm-up +
# cosine), 8-bit AdamW with the same hyperparameters, FRUGAL (ρ = 0.25, T = 200, blocks in
# descending order) at AdamW's rate, and Fira (rank d/4, α = 0.25, T = 200) at AdamW's rate
# and at its paper's 0.01. The state bytes here include the embeddings and head, which are
# a large share of this small model.

# %%
base = Config(progress=False)
if TINY:
    base = Config(progress=False, num_steps=6, d_model=16, num_layers=1, num_heads=2,
                         batch_size=4, seq_len=16, corpus_bytes=20_000, eval_interval=3,
                         log_interval=2, eval_batches=1, warmup_steps=2)
# GRADKIT_MEMORY_RESULTS: the --workdir of a finished `python -m examples.memory.main` run
# (the same protocol); its rows and curves are shown instead of training again.
cached = os.environ.get("GRADKIT_MEMORY_RESULTS")
if cached and not TINY:
    workdir = cached
    rows = [json.loads(line) for line in open(os.path.join(workdir, "memory.jsonl"))]
    print(f"results of examples/memory/main.py loaded from {workdir}")
else:
    workdir = tempfile.mkdtemp()
    rows = memory.run_comparison(list(memory.METHODS), base, workdir)
print(memory.summary_table(rows))

# %%
runs = report.runs_in_workdir(workdir)
fig, ax = plt.subplots(figsize=(7, 4.5))
for i, r in enumerate(rows):
    hist = runs[r["method"]]
    va = [(h["step"], h["val_loss"]) for h in hist if "val_loss" in h]
    tr = [(h["step"], h["loss"]) for h in hist if "loss" in h]
    ax.plot(*zip(*tr, strict=True), color=f"C{i}", alpha=0.3, lw=1)
    ax.plot(*zip(*va, strict=True), color=f"C{i}", marker="o", ms=3, lw=2,
            label=f"{r['method']} ({r['state_bytes_per_param']:.1f} B/param)")
ax.set_xlabel("step")
ax.set_ylabel("loss (nats / byte)")
ax.legend()
ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# ## 3. The norm-growth limiter on its own
# `gradkit.limit_norm_growth(γ)` after any optimizer: an update may shrink freely but its
# norm grows by at most γ per step, so a gradient spike (here ×1000 at step 20) is spread
# over many steps instead of landing at once.

# %%
opt = optax.chain(optax.sgd(1.0), gradkit.limit_norm_growth(1.01))
state = opt.init({"w": jnp.zeros(4)})
norms_in, norms_out = [], []
for step in range(40):
    g = {"w": jnp.ones(4) * (1000.0 if step == 20 else 1.0)}
    u, state = opt.update(g, state)
    norms_in.append(float(jnp.linalg.norm(g["w"])))
    norms_out.append(float(jnp.linalg.norm(u["w"])))
print(f"spike step: gradient norm {norms_in[20]:.0f}, update norm {norms_out[20]:.4f}")
plt.semilogy(norms_in, label="‖g‖")
plt.semilogy(norms_out, label="‖update‖ (limited)")
plt.xlabel("step")
plt.legend()
plt.show()
