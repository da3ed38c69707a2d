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
# # Learning-rate schedules: WSD, WSD-S, refined schedules and the annealing scaling law
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradkit/gradkit/blob/main/notebooks/schedules.ipynb)
#
# `gradkit.schedules` adds three ideas optax lacks, as plain `optax.Schedule` callables (jit-able,
# usable as the `learning_rate` of any gradkit or optax alias and under `inject_hyperparams`):
#
# - **WSD** (MiniCPM, [arXiv 2404.06395](https://arxiv.org/abs/2404.06395)) and **WSD-S**
#   (Wen et al., [arXiv 2410.05192](https://arxiv.org/abs/2410.05192)):
#   $\eta(t) = \eta_{max}\,[r + (1-r)\,S(x)]$ over the last $T_d$ steps, $S$ linear, cosine,
#   1-sqrt or 1-square; WSD-S decays at every budget point and jumps back to the peak.
# - **Refined schedules** (Defazio et al., [arXiv 2310.07831](https://arxiv.org/abs/2310.07831)):
#   $\eta_t \propto w_t \sum_{p>t} w_p$ from a previous run's (median-filtered) gradient norms.
# - **The annealing scaling law** (Tissue et al., [arXiv
# 2408.11029](https://arxiv.org/abs/2408.11029)):
#   $L(s) = L_0 + A\,S_1^{-\alpha} - C\,S_2$, with forward area $S_1$ and annealing area $S_2$.
#
# Part 1 draws the schedules; part 2 runs `examples/schedules` on the reference byte-level LM
# (or reloads its runs: set `GRADKIT_SCHEDULES_WORKDIR` to the example's `--workdir`).
# Set `TINY = True` (the parameters cell) to run everything at toy size (the test suite does).

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
import os
import pathlib
import sys

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax
from IPython.display import Image
from IPython.display import display

import gradkit

# The example code is the repository's `examples` package (the first cell makes it importable).
from examples.lm import trainer
from examples.lm.configs import default as lm_default
from examples.schedules import train as schedules_example  # the runs, tables and plots


def Config(**fields):  # named like the configuration it returns
    """The reference LM's default configuration with ``fields`` changed."""
    return trainer.replace(lm_default.get_config(), **fields)

# %matplotlib inline

WORKDIR = os.environ.get("GRADKIT_SCHEDULES_WORKDIR", "/tmp/gradkit_schedules")
print(jax.devices(), "tiny" if TINY else "full", WORKDIR)

# %% [markdown]
# ## 1. The schedules
#
# WSD with each decay shape and a 10% floor (applied to every shape); WSD-S with budgets at
# T/3, 2T/3 (decay over 20% of each cycle, no re-warm-up, as levanter's default) and cyclic cosine
# (WSD-S with `decay=None`, a full cosine per cycle); a refined schedule from constant norms
# (exactly linear decay) and from norms that grow late in training (the refined schedule then
# decays earlier).

# %%
T = 600
t = jnp.arange(T + 1)
fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
for shape in gradkit.schedules.DECAY_SHAPES:
    s = gradkit.wsd_schedule(1.0, T, warmup_steps=30, decay_steps=180, decay_shape=shape,
                             final_fraction=0.1)
    axes[0].plot(t, s(t), label=shape)
axes[0].set_title("WSD, 30 warm-up, 180 decay steps, floor 0.1")
wsd_s = gradkit.wsd_s_schedule(1.0, T, cycles=3, warmup=30, decay=0.2, final_fraction=0.1)
cyc = gradkit.wsd_s_schedule(1.0, T, cycles=3, warmup=30, decay=None, decay_shape="cosine")
axes[1].plot(t, wsd_s(t), label="WSD-S (decay 0.2 per cycle)")
axes[1].plot(t, cyc(t), label="cyclic cosine")
axes[1].set_title("one run, budgets T/3, 2T/3, T")
steps = np.arange(T)
norms_flat = np.full(T, 2.0)
norms_late = 1.0 + np.exp((steps - T) / 100) + 0.2 * np.random.default_rng(0).random(T)
for name, g in (("constant norms", norms_flat), ("norms rising late", norms_late)):
    axes[2].plot(steps, gradkit.refined_schedule(g, 1.0, "sgd")(steps), label=name)
axes[2].set_title("refined_schedule (SGD weights)")
for ax in axes:
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
plt.show()
print("refined, constant norms, T=6:",
      np.round(np.asarray(gradkit.refined_schedule([1.0] * 6, 1.0)(jnp.arange(6))), 3))

# %% [markdown]
# The annealing law's areas. $S_1$ is the area under the LR curve; $S_2$ accumulates the LR
# *decrease* with momentum λ = 0.999: $m_i = \lambda m_{i-1} + (\eta_{i-1} - \eta_i)$,
# $S_2 = \sum m_i$, so the predicted loss keeps falling for a while after the rate stops falling.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
for name, s in (("WSD linear 20%", gradkit.wsd_schedule(3e-3, T, 50, 120, final_fraction=0.1)),
                ("cosine", optax.warmup_cosine_decay_schedule(0, 3e-3, 50, T, 3e-4)),
                ("constant", gradkit.wsd_schedule(3e-3, T, 50, 0))):
    areas = gradkit.annealing_law_areas(s, T, warmup_steps=50)
    axes[0].plot(np.arange(1, T + 1), areas.forward, label=name)
    axes[1].plot(np.arange(1, T + 1), areas.annealing, label=name)
axes[0].set_title("forward area S1")
axes[1].set_title("annealing area S2 (λ = 0.999)")
for ax in axes:
    ax.set_xlabel("step")
    ax.legend()
    ax.grid(alpha=0.3)
plt.show()

# %% [markdown]
# ## 2. On the reference language model
#
# Ten AdamW runs of the byte-level GPT of `gradkit/models/transformer.py` on the generated corpus
# (`examples/lm` defaults: 600 steps, batch 32 × 64 bytes, peak lr 3e-3, weight decay 0.1, 50
# warm-up
# steps, validation loss every 10 steps): cosine and WSD (linear decay over 20% of the budget, floor
# 10%) for each budget 200, 400, 600; one WSD-S run (cycles ending at 200 and 400, decay 20% per
# cycle) and one cyclic-cosine run; a warm-up + constant run; and a run with the schedule refined
# from the 600-step cosine run's per-step gradient ℓ1 norms (Adam-type weights 1/‖g‖₁).

# %%
if TINY:  # the same toy runs as tests/test_schedules_example.py
    base = Config(num_steps=8, d_model=16, num_layers=1, num_heads=2, batch_size=4, seq_len=16,
                  corpus_bytes=20_000, eval_interval=2, eval_batches=1, warmup_steps=2,
                  log_interval=1, progress=False)
    runs_dir, num_budgets = WORKDIR + "_tiny", 2
else:
    base = Config(eval_interval=10, log_interval=1, progress=False)
    runs_dir, num_budgets = WORKDIR, 3
summary = schedules_example.run_all(base, runs_dir, num_budgets=num_budgets, reuse=True)
print(summary["budget_table"])

# %% [markdown]
# ### WSD-S vs separate runs per budget
#
# The table above is the validation loss at each budget (bold: best). WSD-S and cyclic cosine
# produce all budgets in one run; WSD and cosine need one run per budget.

# %%
display(Image(summary["plots"][0]))

# %% [markdown]
# ### The annealing law: fit on constant + WSD, predict the rest
#
# Fitted on the validation curves (steps after the warm-up) of the constant-rate run and the
# 600-step WSD run; every other curve is a prediction from its schedule alone.

# %%
law = summary["law"]
p = law["params"]
print(f"L0={p['L0']:.4f}  A={p['A']:.4f}  alpha={p['alpha']:.4f}  C={p['C']:.4f}")
print(summary["law_table"])
display(Image(summary["plots"][1]))

# %% [markdown]
# ### Refined schedule from the cosine run's gradient norms

# %%
r = summary["refined"]
for name, row in r.items():
    print(f"{name:>12}: final val loss {row['final_val_loss']:.4f}, "
          f"best {row['best_val_loss']:.4f}")
display(Image(summary["plots"][2]))

# %% [markdown]
# Measured numbers, the reproduce command and what they mean (and do not) are in
# `docs/schedules.md`.
