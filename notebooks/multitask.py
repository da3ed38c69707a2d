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
# # Several gradients at once: PCGrad, GCond, AdAdaGrad, Sven
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradkit/gradkit/blob/main/notebooks/multitask.ipynb)
#
# Four methods that need more than one gradient per step, as optax transforms over
# *stacked* gradients (a leading task or sample axis, from `jax.jacrev` / `jax.vmap(jax.grad)`):
#
# * **PCGrad** (Yu et al. 2020, arXiv 2001.06782): project conflicting task gradients.
# * **GCond** (Limarenko et al. 2025, arXiv 2509.07252): arbitrated, angle-remapped
#   projections with momentum; stochastic accumulation halves the gradient evaluations.
# * **AdAdaGrad** (Lau, Liu, Kolar 2024, arXiv 2402.11215): grow the batch when the
#   per-sample gradients' variance test fails.
# * **Sven** (Bright-Thonney et al. 2026, arXiv 2604.01279): a truncated pseudo-inverse
#   step from the per-sample residuals' Jacobian.
#
# The experiments are those of `examples/multitask/train.py`; `docs/multitask.md` has the
# full-size numbers. Set `TINY = True` (the parameters cell) to run everything in seconds (the test
# suite does).

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
import pathlib
import sys

import jax
import matplotlib.pyplot as plt

# The example code is the repository's `examples` package (the first cell makes it importable).
from examples.multitask import train
from examples.multitask.configs import default

# %matplotlib inline

WORKDIR = "/tmp/gradkit_multitask_notebook"
cfg = default.get_config()
cfg.update(
    seed=0, log_interval=5 if TINY else 25,
    toy_steps=2_000 if TINY else 50_000,
    toy_starts=((9.0, 9.0),) if TINY else ((-8.5, 7.5), (9.0, 9.0), (0.0, 0.0)),
    learning_rate_toy=3e-3 if TINY else 1e-3,
    gcond_steps=4 if TINY else 300, gcond_micro_batches=4, gcond_micro_batch_size=32,
    gcond_hidden=8 if TINY else 32, gcond_learning_rate=3e-3, gcond_seeds=1,
    ada_steps=4 if TINY else 200, ada_num_samples=256 if TINY else 8192,
    ada_initial_batch=8, ada_max_batch=32 if TINY else 2048, ada_hidden=8 if TINY else 64,
    ada_center_scale=0.5, ada_learning_rate=0.1, ada_optimizer="adagrad", ada_test="norm",
    ada_eta=0.5, ada_theta=0.5, ada_nu=1.0, ada_target_loss=1.0, ada_eval_interval=2 if TINY
    else 5,
    sven_methods=("adam", "sven"), sven_epochs=1 if TINY else 3,
    sven_num_train=64 if TINY else 10_000, sven_batch_size=32 if TINY else 128,
    sven_k=16 if TINY else 64, sven_rtol=1e-3, sven_learning_rate=0.1,
    adam_learning_rate=1e-3,
)
print(jax.devices(), "tiny" if TINY else "full")

# %% [markdown]
# ## PCGrad on the 2-D two-task toy
#
# Adam on L₁ + L₂ stalls in a valley; PCGrad → Adam removes the conflicting components and
# leaves it (white paths). The landscape is CAGrad's version of PCGrad's Figure 1 (see the
# docs for why).

# %%
toy = train.run_pcgrad_toy(cfg, WORKDIR)
for run in toy["runs"]:
    print(f"| {run['method']} | start {run['start']} | ΣL = {run['final_loss_sum']:.2f} |")

# %% [markdown]
# ## GCond: classical vs stochastic accumulation
#
# Two regression heads on a shared trunk, 4 micro-batches per step. Stochastic mode gives
# each micro-batch to one task only: half the gradient evaluations.

# %%
gc = train.run_gcond_toy(cfg, WORKDIR)
for mode in ("classical", "stochastic", "sum"):
    print(f"| {mode} | val loss {gc[mode]['val_loss_mean']:.4f} | "
          f"{gc[mode]['grad_evals']} gradient evaluations |")

# %% [markdown]
# ## AdAdaGrad: the norm test grows the batch
#
# AdaGrad on a generated 10-class mixture, batch from 8; the norm test (η = 0.5) asks for
# larger batches as the mean gradient shrinks relative to the per-sample noise.

# %%
ada = train.run_adadagrad(cfg, WORKDIR)
for name in ("fixed", "adaptive"):
    print(f"| {name} | reached {ada[name]['reached']} | final loss "
          f"{ada[name]['final_loss']:.3f} | final batch {ada[name]['final_batch']} | "
          f"monotone {ada[name]['monotone']} |")

# %% [markdown]
# ## Sven on the 1-D regression
#
# f(x) = exp(−10x²)·sin 2x, MLP 1-16-16-16-1 (GELU), Sven (lr 0.1, k = 64) vs Adam 1e-3.
# At tiny size (a few steps) Sven is still recovering from its large first steps; at full
# size (10k points, batch 128) it is below Adam's 100-epoch MSE after 5 epochs.

# %%
sv = train.run_sven(cfg, WORKDIR)
for method in cfg.sven_methods:
    print(f"| {method} | train MSE {sv[method]['train_mse']:.3e} | "
          f"val MSE {sv[method]['val_mse']:.3e} | {sv[method]['wall_s']:.1f} s |")

# %%
fig, axes = plt.subplots(2, 2, figsize=(12, 9))
for ax, name in zip(axes.ravel(), ("pcgrad_toy", "gcond_toy", "adadagrad", "sven"),
                    strict=True):
    ax.imshow(plt.imread(f"{WORKDIR}/{name}.png"))
    ax.set_axis_off()
    ax.set_title(name)
fig.tight_layout()
plt.show()
