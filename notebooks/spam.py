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
# # SPAM: gradient-spike fault injection (Adam vs SPAM vs Stable-SPAM)
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradkit/gradkit/blob/main/notebooks/spam.ipynb)
#
# Huang et al., *SPAM: Spike-Aware Adam with Momentum Reset for Stable LLM Training*, 2025
# ([arXiv 2501.06842](https://arxiv.org/abs/2501.06842)), observe gradient spikes of up to
# 1000× the typical gradient during LLM training and show that they poison Adam's moment
# estimates for a long time. SPAM clips spiked entries (relative to the second-moment
# estimate, counted as `num_clipped` in its state), periodically resets the moments, and
# warms the learning rate up again after each reset; Stable-SPAM (Huang et al., 2025) adds
# adaptive clipping and norm scaling.
#
# This notebook reproduces the effect at small scale by reusing `examples/spikes/train.py`: a
# 2-hidden-layer tanh MLP trained on generated regression data with minibatch gradients,
# where every `spike_interval` steps the **whole gradient** is multiplied by the next factor of
# 1e3, 1e4, 1e5, 1e6. Each optimizer is trained with and without the injected spikes from
# the same initialisation and batches, so the final-loss ratio measures the damage.
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
import pathlib
import sys

import jax
import matplotlib.pyplot as plt

# The example code is the repository's `examples` package (the first cell makes it importable).
from examples.spikes import train as spikes  # data, MLP, optimizers, loop
from examples.spikes.configs import default

# %matplotlib inline

cfg = default.get_config()  # the example's configuration (full size) ...
cfg.update(  # ... as used here
    steps=60 if TINY else 3000,
    spike_first=10 if TINY else 150,
    spike_interval=20 if TINY else 300,
    spike_scales=(1e3, 1e4, 1e5, 1e6),
    learning_rate=1e-3,
    optimizers=("adam", "spam", "stable_spam"),
    hidden=8 if TINY else 64,
    num_samples=128 if TINY else 1024,
    batch_size=16 if TINY else 64,
    log_interval=10 if TINY else 25,
    seed=0,
)
print(jax.devices(), "tiny" if TINY else "full", f"{cfg.steps} steps")

# %% [markdown]
# ## Training
#
# `spikes.run_optimizer(name, spikes, cfg)` runs the jitted training loop of the example and returns
# one row per `log_interval` steps: full-data train loss and the number of gradient entries the
# optimizer clipped (0 for Adam, which has no `num_clipped` in its state).

# %%
rows = []
for name in cfg.optimizers:
    rows += spikes.run_optimizer(name, True, cfg)
    rows += spikes.run_optimizer(name, False, cfg)
print(len(rows), "logged rows")


# %% [markdown]
# ## Loss curves and spike clipping
#
# Solid: with injected spikes (gray lines mark them); dotted: clean run. Lower panel: entries
# clipped per logged chunk.

# %%
def select(name, spiked):
    return [r for r in rows if r["optimizer"] == name and r["spikes"] == spiked]


colors = {"adam": "tab:red", "spam": "tab:blue", "stable_spam": "tab:green"}
fig, (ax_loss, ax_clip) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
for name in cfg.optimizers:
    for spiked, style in ((True, "-"), (False, ":")):
        sel = select(name, spiked)
        ax_loss.plot([r["step"] for r in sel], [r["train_loss"] for r in sel], style,
                     color=colors[name], label=name + ("" if spiked else " (clean)"))
    sel = select(name, True)
    ax_clip.plot([r["step"] for r in sel], [r["num_clipped"] for r in sel],
                 color=colors[name], label=name)
for s in range(cfg.spike_first, cfg.steps, cfg.spike_interval):
    ax_loss.axvline(s, color="gray", alpha=0.3, lw=0.8)
ax_loss.set_yscale("log")
ax_loss.set_ylabel("train loss (full data)")
ax_loss.set_title("Injected gradient spikes " + spikes.scales_label(cfg.spike_scales))
ax_loss.legend(fontsize=8)
ax_clip.set_yscale("symlog")
ax_clip.set_ylim(bottom=0)
ax_clip.set_ylabel(f"entries clipped per {cfg.log_interval} steps")
ax_clip.set_xlabel("step")
ax_clip.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Results
#
# Final full-data train loss with and without spikes; *ratio* > 1 is the damage the spikes
# did. *clipped* counts gradient entries the optimizer clipped over the spiked run.

# %%
summary = {}
print("| optimizer | final loss (spikes) | final loss (clean) | ratio | clipped |")
print("|---|---|---|---|---|")
for name in cfg.optimizers:
    s, c = select(name, True), select(name, False)
    summary[name] = dict(spiked=s[-1]["train_loss"], clean=c[-1]["train_loss"],
                         clipped=sum(r["num_clipped"] for r in s))
    d = summary[name]
    print(f"| {name} | {d['spiked']:.3e} | {d['clean']:.3e} | "
          f"{d['spiked'] / d['clean']:.2f} | {d['clipped']} |")
