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
# # Orthogonalised momentum: AuON, Drop-Muon, and diffGrad
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradkit/gradkit/blob/main/notebooks/muon.ipynb)
#
# Three claims from `docs/muon.md`, each checked at CPU size (set `TINY = True` (the parameters
# cell) to run in
# seconds, as the test suite does):
#
# 1. **diffGrad** (Dubey et al. 2020, arXiv 1909.11015): on the official 1-D toy, diffGrad
#    finds the global minimum −0.3 where Adam at the same lr overshoots into 0.2 — and Adam
#    at half the lr finds −0.3 too.
# 2. **AuON** (Maity 2025, arXiv 2509.24320): its cosh-RMS brake r satisfies
#    r − 1 ≤ sinh²(1)/(2N), so for real matrices AuON is Frobenius-normalised Nesterov SGD.
# 3. **Drop-Muon** (Gruntkowska et al. 2025, arXiv 2510.02239): updating only layers s..L
#    with a truncated backward pass; wall clock against Muon on a small CNN.

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
import math
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

# The example code is the repository's `examples` package (the first cell makes it importable).
from examples.drop_muon_cnn import train as cnn
from examples.drop_muon_cnn.configs import default as cnn_default

# %matplotlib inline
print("tiny" if TINY else "full size")


# %% [markdown]
# ## 1. diffGrad on the 1-D toy
# f′(x) = 2x + 0.6 for x ≤ 0, 2x − 0.4 otherwise; x₀ = −1, 299 updates, β₁ = 0.95.

# %%
def toy_grad(x):
    return jnp.where(x <= 0, 2 * x + 0.6, 2 * x - 0.4)

def trajectory(opt, steps=299):
    def body(carry, _):
        x, state = carry
        updates, state = opt.update(toy_grad(x), state, x)
        return (x + updates, state), x + updates
    x0 = jnp.asarray(-1.0)
    _, xs = jax.lax.scan(body, (x0, opt.init(x0)), length=steps)
    return np.concatenate([[-1.0], np.asarray(xs)])

runs = {"diffGrad lr 0.1": gradkit.diffgrad(0.1, b1=0.95),
        "Adam lr 0.1": optax.adam(0.1, b1=0.95),
        "Adam lr 0.05": optax.adam(0.05, b1=0.95)}
toy = {k: trajectory(v) for k, v in runs.items()}
for k, xs in toy.items():
    print(f"| {k} | final x = {xs[-1]:+.4f} |")
for k, xs in toy.items():
    plt.plot(xs, label=k)
plt.axhline(-0.3, ls=":", c="k")
plt.axhline(0.2, ls=":", c="gray")
plt.xlabel("iteration")
plt.ylabel("x")
plt.legend()
plt.show()

# %% [markdown]
# ## 2. AuON's cosh brake is ≈ 1
# r = √mean(cosh²(X)) for ‖X‖_F = 1 against the bound 1 + sinh²(1)/(2N), for Gaussian and
# heavy-tailed matrices and the extremal one-hot.

# %%
print("| N | Gaussian r−1 | Cauchy r−1 | one-hot r−1 | bound sinh²(1)/(2N) |")
print("|---|---|---|---|---|")
rng = np.random.default_rng(0)
for shape in [(2, 2), (8, 8), (64, 64), (256, 256)]:
    n = math.prod(shape)
    one_hot = np.zeros(shape)
    one_hot[0, 0] = 1
    vals = []
    for x in (rng.normal(size=shape), rng.standard_cauchy(size=shape), one_hot):
        x = x / np.linalg.norm(x)
        vals.append(float(np.sqrt(np.mean(np.cosh(x) ** 2))) - 1)
    print(f"| {n} | {vals[0]:.2e} | {vals[1]:.2e} | {vals[2]:.2e} | "
          f"{math.sinh(1) ** 2 / (2 * n):.2e} |")

# %% [markdown]
# ## 3. Drop-Muon vs Muon on a small CNN (generated image-like data)
# `examples/drop_muon_cnn/train.py`: both optimizers from the same init and batches, steps
# interleaved, each timed on its own; Drop-Muon's backward pass stops at the sampled layer.

# %%
cfg = cnn_default.get_config()  # the example's size: channels 16/32/64, 300 steps
cfg.progress = False
if TINY:
    cfg.update(channels=(2, 4, 4), num_train=128, batch_size=16, num_steps=8, log_interval=2)
workdir = tempfile.mkdtemp()
summary = cnn.train_and_evaluate(cfg, workdir)
print("| method | steps to target | s to target | median ms/step | final acc (EMA) |")
print("|---|---|---|---|---|")
for name in ("muon", "drop_muon"):
    s = summary[name]
    sec = f"{s['seconds_to_target']:.1f}" if s["seconds_to_target"] else "not reached"
    print(f"| {name} | {s['steps_to_target']} | {sec} | "
          f"{1e3 * s['median_step_seconds']:.1f} | {s['final_acc_ema']:.3f} |")
print(f"step-time ratio muon / drop_muon: {summary['step_time_ratio']:.2f}")
rows = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
for name in ("muon", "drop_muon"):
    plt.plot([r[name]["clock"] for r in rows], [r[name]["acc_ema"] for r in rows], label=name)
plt.xlabel("seconds (own steps)")
plt.ylabel("train accuracy (EMA)")
plt.legend()
plt.show()
