"""Writes notebooks/memory.ipynb (run: python notebooks/build_memory.py). Edit the cells here."""

from _builder import Builder

nb = Builder()  # starts with the Colab install cell
md, code = nb.md, nb.code

md(r"""
# Memory-efficient optimizer state: 8-bit AdamW, FRUGAL and Fira

Adam keeps two float32 moments: 8 bytes of state per parameter. Three ways to cut that,
each an ordinary `optax` transformation in gradkit (details and measurements in
`docs/memory.md`):

* **8-bit AdamW** (Dettmers et al. 2022, arXiv 2110.02861): both moments stored as uint8
  codes of a dynamic map with one float32 scale per block — about 2 B/param.
* **FRUGAL** (Zmushko et al. 2025, arXiv 2411.07837): Adam on a state-full fraction ρ of
  the attention/MLP weights (whole tensors, chosen every T steps, moments reset), signSGD
  on the rest — about 2ρ·4 B/param on those weights.
* **Fira** (Chen et al. 2024, arXiv 2410.01623): Adam on the rank-r GaLore projection of
  each weight's gradient plus the full-rank residual scaled per row/column by the Adam
  gain of its low-rank part, with a norm-growth limiter (γ = 1.01).

Below: the state bytes of each on a GPT-like parameter tree, then all four training the
reference byte-level LM from the same init on the same batches (set `GRADKIT_TINY=1` to
run in seconds, as the test suite does).
""")

code(r"""
import importlib.util
import json
import os
import pathlib
import sys
import tempfile

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import gradkit

# The example code is the repository's `examples` package (the set-up cell put the checkout on
# sys.path).
from examples.lm import report
from examples.lm.configs.default import Config
from examples.memory import train as memory

%matplotlib inline
TINY = os.environ.get("GRADKIT_TINY") == "1"
print("tiny" if TINY else "full size")
""")

md(r"""
## 1. State bytes per parameter on a GPT-like tree
d = 512, 8 blocks, byte vocabulary (256): the blocks' kernels dominate, as in the papers'
LLaMA models. FRUGAL and Fira act on the blocks' kernels only; embeddings, head, norms
and biases keep AdamW. Bytes are summed over the actual `opt.init` state pytree.
""")

code(r"""
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
""")

md(r"""
## 2. Quality on the reference LM
`examples/memory/train.py`: AdamW (the LM example's defaults: peak 3e-3, weight decay 0.1, warm-up +
cosine), 8-bit AdamW with the same hyperparameters, FRUGAL (ρ = 0.25, T = 200, blocks in
descending order) at AdamW's rate, and Fira (rank d/4, α = 0.25, T = 200) at AdamW's rate
and at its paper's 0.01. The state bytes here include the embeddings and head, which are
a large share of this small model.
""")

code(r"""
base = Config(progress=False)
if TINY:
    base = Config(progress=False, num_steps=6, d_model=16, num_layers=1, num_heads=2,
                         batch_size=4, seq_len=16, corpus_bytes=20_000, eval_every=3,
                         log_every=2, eval_batches=1, warmup_steps=2)
# GRADKIT_MEMORY_RESULTS: the --workdir of a finished `python examples/memory/main.py` run
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
""")

code(r"""
runs = report.runs_in_workdir(workdir)
fig, ax = plt.subplots(figsize=(7, 4.5))
for i, r in enumerate(rows):
    hist = runs[r["method"]]
    va = [(h["step"], h["val_loss"]) for h in hist if "val_loss" in h]
    tr = [(h["step"], h["loss"]) for h in hist if "loss" in h]
    ax.plot(*zip(*tr), color=f"C{i}", alpha=0.3, lw=1)
    ax.plot(*zip(*va), color=f"C{i}", marker="o", ms=3, lw=2,
            label=f"{r['method']} ({r['state_bytes_per_param']:.1f} B/param)")
ax.set_xlabel("step"); ax.set_ylabel("loss (nats / byte)"); ax.legend(); ax.grid(alpha=0.3)
plt.show()
""")

md(r"""
## 3. The norm-growth limiter on its own
`gradkit.limit_norm_growth(γ)` after any optimizer: an update may shrink freely but its
norm grows by at most γ per step, so a gradient spike (here ×1000 at step 20) is spread
over many steps instead of landing at once.
""")

code(r"""
opt = optax.chain(optax.sgd(1.0), gradkit.limit_norm_growth(1.01))
state = opt.init({"w": jnp.zeros(4)})
norms_in, norms_out = [], []
for step in range(40):
    g = {"w": jnp.ones(4) * (1000.0 if step == 20 else 1.0)}
    u, state = opt.update(g, state)
    norms_in.append(float(jnp.linalg.norm(g["w"])))
    norms_out.append(float(jnp.linalg.norm(u["w"])))
print(f"spike step: gradient norm {norms_in[20]:.0f}, update norm {norms_out[20]:.4f}")
plt.semilogy(norms_in, label="‖g‖"); plt.semilogy(norms_out, label="‖update‖ (limited)")
plt.xlabel("step"); plt.legend(); plt.show()
""")

nb.write("memory.ipynb")
