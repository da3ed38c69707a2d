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
# # Layer-level gradient rules: TrAct and ReSTE
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradkit/gradkit/blob/main/notebooks/layers.ipynb)
#
# Two methods that change the gradient of **one layer** rather than the optimizer, as
# `jax.custom_vjp` rules wrapped in Flax modules (`gradkit.layers`, linen and NNX):
#
# * **TrAct** (Petersen, Borgelt, Ermon, NeurIPS 2024,
#   [arXiv 2410.23970](https://arxiv.org/abs/2410.23970)): the first layer's weight gradient
#   becomes Gᵀ X (XᵀX/b + λI)⁻¹, so the step acts on the pre-activations: its effect no longer
#   scales with the input's magnitude. λ = 0.1.
# * **ReSTE** (Wu, Zheng, Liu, Zheng, ICCV 2023,
#   [arXiv 2308.06689](https://arxiv.org/abs/2308.06689)): sign forward, backward the
#   rectified derivative of f_o(x) = sign(x)|x|^{1/o} (clipped at t = 1.5, constant on
#   |x| ≤ 0.1), with o annealed from 1 (the clipped STE) to 3.
#
# The training runs reuse `examples/layers/train.py` on generated image-like data (no
# downloads). Set `TINY = True` (the parameters cell) to run in seconds (the test suite does).

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
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import gradkit

# The example code is the repository's `examples` package (the first cell makes it importable).
from examples.layers import train
from examples.layers.configs import default

# %matplotlib inline

cfg = default.get_config()  # the example's full size
if TINY:
    cfg.update(seeds=1, num_train=256, num_test=128, batch_size=64, width=8, tract_epochs=2,
               tract_optimizers=("sgd:0.08",), tract_input_scales=(1.0,), reste_epochs=2,
               reste_hidden=16, reste_fixed_o=(3.0,))
print(jax.devices(), "tiny" if TINY else "full")

# %% [markdown]
# ## TrAct: the gradient and its invariance
#
# On a random first layer we compare the TrAct kernel gradient with the closed form (explicit
# inverse, float64), then check the derived property: the pre-activation change
# ΔZ = −η X ∇W is (for λ → 0) the same for inputs X and cX, and equals −η·b·G when b ≤ n;
# plain SGD's ΔZ = −η XXᵀG scales with c².

# %%
b, n, m = 6, 16, 3
x = jax.random.normal(jax.random.key(0), (b, n))
g = jax.random.normal(jax.random.key(1), (b, m))
kernel = jnp.zeros((n, m))


def tract_grad(x, lam=0.1):
    return jax.grad(lambda k: jnp.sum(gradkit.tract_dense(x, k, lam=lam) * g))(kernel)


X, G = np.asarray(x, np.float64), np.asarray(g, np.float64)
closed = np.linalg.inv(X.T @ X / b + 0.1 * np.eye(n)) @ X.T @ G
print("max |TrAct − closed form| =", float(np.abs(tract_grad(x) - closed).max()))
for c in (0.1, 1.0, 10.0):
    dz_tract = -0.01 * (c * x) @ tract_grad(c * x, lam=1e-4)
    dz_sgd = -0.01 * (c * x) @ (c * x).T @ g
    print(f"c = {c:5.1f}:  |ΔZ_TrAct| = {float(jnp.linalg.norm(dz_tract)):.4f}  "
          f"(−η·b·G: {float(jnp.linalg.norm(0.01 * b * g)):.4f}),  "
          f"|ΔZ_SGD| = {float(jnp.linalg.norm(dz_sgd)):.4f}")

# %% [markdown]
# ## TrAct vs a plain first layer: epochs to a target accuracy
#
# A patch-embedding CNN (4×4/4 first conv, plain or `TrActConv`, same initialisation and
# batches) on generated oriented gratings (10 orientation classes), for SGD with momentum and
# Adam, at the standardised input scale and at 0.1× contrast. The table gives the epoch at
# which the test accuracy first reaches the target (∞: never within the budget).

# %%
rows = []
data = {seed: train.make_dataset(cfg, seed) for seed in range(cfg.seeds)}
for scale in cfg.tract_input_scales:
    for opt in cfg.tract_optimizers:
        for method in ("plain", "tract"):
            for seed in range(cfg.seeds):
                rows += train.train_tract(cfg, method, opt, seed, data[seed], lambda r: None,
                                          input_scale=scale)
summary = train.summarize(rows, cfg)["tract"]
print(f"target test accuracy {summary['target']}")
print("| optimizer | input scale | plain: epochs | TrAct: epochs | plain final acc "
      "| TrAct final acc |")
print("|---|---|---|---|---|---|")
for e in summary["table"]:
    print(f"| {e['optimizer']} | {e['input_scale']:g} | {e['plain_epochs']} | "
          f"{e['tract_epochs']} | "
          f"{e['plain_final_accuracy']:.3f} | {e['tract_final_accuracy']:.3f} |")

# %%
fig, ax = plt.subplots(figsize=(7, 4))
settings = [(o, c) for c in cfg.tract_input_scales for o in cfg.tract_optimizers]
for i, (opt, scale) in enumerate(settings):
    for method, style in (("plain", "--"), ("tract", "-")):
        sel = [r for r in rows if r["method"] == method and r["optimizer"] == opt
               and r["input_scale"] == scale]
        epochs = sorted({r["epoch"] for r in sel})
        acc = [np.mean([r["test_accuracy"] for r in sel if r["epoch"] == e]) for e in epochs]
        ax.plot(epochs, acc, style, color=f"C{i}", label=f"{method} {opt} ×{scale:g}")
ax.axhline(cfg.tract_target, color="k", lw=0.5)
ax.set(xlabel="epoch", ylabel="test accuracy")
ax.legend(fontsize=7)
plt.show()

# %% [markdown]
# ## ReSTE: the rectified backward over o
#
# The backward coefficient of `reste_sign(x, o)`: o = 1 is the clipped STE 1{|x| ≤ 1.5};
# larger o follows sign more closely (smaller fitting error ‖f_o(w) − sign(w)‖) but has a
# larger, more uneven gradient near 0 (larger Var|∂L/∂w|): the paper's equilibrium.

# %%
xs = jnp.linspace(-2.0, 2.0, 801)
w = jax.random.uniform(jax.random.key(0), (4096,), minval=-1.5, maxval=1.5)
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(11, 3.6))
print("| o | fitting error ‖f_o(w) − sign(w)‖ | Var of the backward coefficient |")
print("|---|---|---|")
for o in (1.0, 1.5, 2.0, 3.0, 5.0):
    slope = jax.grad(lambda x, o=o: jnp.sum(gradkit.reste_sign(x, o)))(xs)
    ax0.plot(xs, slope, label=f"o={o:g}")
    ax1.plot(xs, gradkit.reste_power(xs, o), label=f"f_o, o={o:g}")
    s_w = jax.grad(lambda x, o=o: jnp.sum(gradkit.reste_sign(x, o)))(w)
    print(f"| {o:g} | {float(gradkit.reste_fitting_error(w, o)):.2f} | "
          f"{float(gradkit.reste_gradient_instability(s_w)):.3f} |")
ax0.set(xlabel="x", ylabel="∂sign/∂x (ReSTE)", ylim=(0, 3.5))
ax1.plot(xs, jnp.sign(xs), "k", lw=0.8)
ax1.set(xlabel="x", ylabel="f_o(x)")
ax0.legend(fontsize=7)
ax1.legend(fontsize=7)
plt.show()

# %% [markdown]
# ## A binarised MLP: STE vs ReSTE, and the indicators during training
#
# `train.BinaryMLP`: a full-precision first layer, two 1-bit `BinaryDense` layers (weights
# sign(W)·mean|W|, activations sign) with BatchNorm, a full-precision head; the official
# recipe (SGD momentum 0.9, cosine learning rate, weight decay 1e-4). Data: noisy copies of
# smooth random class templates. Runs: the clipped STE (|x| ≤ 1), ReSTE with o annealed
# 1 → 3, and ReSTE at fixed o (for the indicators, averaged over the second half of
# training on the last batch of each epoch, as the official code logs them).

# %%
reste_rows = []
for seed in range(cfg.seeds):
    tdata = train.make_dataset(cfg, seed, "templates")
    for method in ("ste", "reste"):
        reste_rows += train.train_reste(cfg, method, seed, tdata, lambda r: None)
    for o in cfg.reste_fixed_o:
        reste_rows += train.train_reste(cfg, "reste_fixed", seed, tdata, lambda r: None,
                                        fixed_o=o)
table = train.summarize(reste_rows, cfg)["reste"]
print("| run | o | final test acc | fitting error | gradient instability |")
print("|---|---|---|---|---|")
for e in table:
    print(f"| {e['method']} | {e['o']} | {e['final_test_accuracy']:.3f} ± "
          f"{e['final_test_accuracy_std']:.3f} | {e['fitting_error']:.2f} | "
          f"{e['gradient_instability']:.3e} |")

# %% [markdown]
# The measured numbers at full size and their discussion are in `docs/layers.md`.
