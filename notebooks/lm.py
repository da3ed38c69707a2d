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
# # gradkit: learning-rate sensitivity of a small byte-level GPT
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradkit/gradkit/blob/main/notebooks/lm.ipynb)
#
# The *Small-scale proxies for large-scale Transformer training instabilities* paper
# (Wortsman et al., 2023, [arXiv 2309.14322](https://arxiv.org/abs/2309.14322)) measures
# how final loss depends on the learning rate over several decades and summarises it as
# **LR sensitivity** $\mathbb{E}_{\eta}[\min(\ell(\eta), \ell_0) - \ell^\ast]$: the average
# excess of the final loss over the best one, with diverged runs counted at the initial
# loss $\ell_0$. This notebook runs that sweep for AdamW, Lion and SPAM (and AdamW with
# the paper's two interventions, qk-layernorm and the output-logit z-loss) on gradkit's
# reference LM (`gradkit.models.transformer`) and the generated corpus
# (`gradkit.data.text`), with every learning rate of a sweep trained **at once** under
# `jax.vmap` (one compilation per optimizer). The output-head bias starts at the training
# data's log unigram frequencies (`text.unigram_log_prior`; `docs/lm.md` shows how a zero bias
# stalls Lion and other bounded-step optimizers on this model). The last section repeats the
# AdamW and Lion sweeps at a 4× larger batch, to see how much of Lion's gap is batch size.
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
import dataclasses
import time

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
import optax

import gradkit
from gradkit.data import text
from gradkit.models import transformer

NUM_STEPS = 3 if TINY else 400
BATCH, SEQ = (4, 16) if TINY else (16, 64)
LARGE_BATCH = 4 * BATCH
data = text.load_text(None, num_bytes=500_000, key=0)
MODEL = transformer.TransformerConfig(
    vocab_size=text.VOCAB_SIZE, max_len=SEQ, d_model=16 if TINY else 32,
    num_layers=1 if TINY else 2, num_heads=2 if TINY else 4,
    head_bias_init=tuple(text.unigram_log_prior(data.train).tolist()),
)
print(jax.devices(), f"{MODEL.num_params():,} parameters, {NUM_STEPS} steps")


# %% [markdown]
# ## Sweep definitions
#
# Each entry: optimizer name (resolved in `gradkit` first, then `optax`, like
# `examples/lm/trainer.py`), fixed kwargs, learning rates, model options. Lion gets the 10×
# larger weight decay its paper advises; its grid spans the same three decades as AdamW's
# because at this tiny scale its best learning rate is *not* 10× below AdamW's (a first
# sweep over 1e-5–1e-2 was still improving at 1e-2). SPAM (`gradkit.spam`) keeps its
# defaults (spike threshold θ = 5000, moment reset every ΔT = 500 steps, ε = 1e-6, dense
# moments) with AdamW's weight decay; with 400 steps no reset happens, so here it is
# AdamW plus spike clipping (from step 20) and its ε convention. `static` lists arguments
# `optax.inject_hyperparams` must not turn into traced hyperparameters (SPAM's `density`
# fixes its state's shapes). Weight decay applies to matrices only, as in
# `examples/lm/trainer.py`. Add a row to sweep another gradkit method.

# %%
def grid(lo, hi, per_decade=2):
    n = round(np.log10(hi / lo) * per_decade) + 1
    return np.logspace(np.log10(lo), np.log10(hi), n)


SWEEPS = {
    "adamw": dict(name="adamw", kwargs=dict(weight_decay=0.1), lrs=grid(1e-4, 1e-1)),
    "lion": dict(name="lion", kwargs=dict(weight_decay=1.0), lrs=grid(1e-4, 1e-1)),
    "spam": dict(name="spam", kwargs=dict(weight_decay=0.1), lrs=grid(1e-4, 1e-1),
                 static=("density", "density_mask", "key")),
    "adamw + qk-LN + z-loss": dict(
        name="adamw", kwargs=dict(weight_decay=0.1), lrs=grid(1e-4, 1e-1),
        model=dict(qk_layernorm=True), z_loss=1e-4,
    ),
}
if TINY:
    SWEEPS = {k: dict(v, lrs=v["lrs"][::6]) for k, v in list(SWEEPS.items())[:3]}


def decay_mask(params):
    return jax.tree.map(lambda x: x.ndim >= 2, params)


def factory(name):
    return getattr(gradkit, name, None) or getattr(optax, name)


# %% [markdown]
# ## Training all learning rates at once
#
# `optax.inject_hyperparams` puts the peak learning rate into the optimizer state, so
# `jax.vmap` over the state trains one model per learning rate in a single program; a
# warm-up + cosine factor (`optax.scale_by_schedule`) multiplies every update. Every
# model starts from the same initialisation and sees the same batches. The training step
# passes the same keyword extra args as `examples/lm/trainer.py` (`obj_fn`, `logits_fn`), so
# curvature methods plug in unchanged.

# %%
val = list(text.eval_batches(data.val, BATCH, SEQ, num_batches=2 if TINY else 8))
warmup = max(1, NUM_STEPS // 10)
factor = optax.warmup_cosine_decay_schedule(0.0, 1.0, warmup, NUM_STEPS, 0.1)


def run_sweep(spec, batch_size=BATCH):
    model = transformer.Transformer(dataclasses.replace(MODEL, **spec.get("model", {})))
    z_loss = spec.get("z_loss", 0.0)
    params = model.init(jax.random.key(0), jnp.zeros((1, SEQ), jnp.int32))

    def make_opt(lr):
        static = ("mask", *spec.get("static", ()))
        inner = optax.inject_hyperparams(factory(spec["name"]), static_args=static)(
            learning_rate=lr, mask=decay_mask, **spec["kwargs"]
        )
        return optax.chain(inner, optax.scale_by_schedule(factor))

    def loss_fn(p, batch):
        logits = model.apply(p, batch["inputs"])
        return transformer.lm_loss(logits, batch["targets"], z_loss=z_loss)[0]

    def step(p, state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(p, batch)
        extra = dict(obj_fn=lambda q: loss_fn(q, batch),
                     logits_fn=lambda q: model.apply(q, batch["inputs"]))
        updates, state = make_opt(1.0).update(grads, state, p, **extra)
        return optax.apply_updates(p, updates), state, loss

    def val_loss(p):
        ce = [transformer.lm_loss(model.apply(p, b["inputs"]), b["targets"])[1]["ce"] for b in val]
        return jnp.mean(jnp.stack(ce))

    lrs = jnp.asarray(spec["lrs"], jnp.float32)
    states = jax.vmap(lambda lr: make_opt(lr).init(params))(lrs)
    ps = jax.tree.map(lambda x: jnp.broadcast_to(x, (len(lrs), *x.shape)), params)
    vstep = jax.jit(jax.vmap(step, in_axes=(0, 0, None)))
    vval = jax.jit(jax.vmap(val_loss))
    initial = float(vval(ps)[0])
    for t in range(NUM_STEPS):
        batch = text.train_batch(data.train, t, batch_size, SEQ, key=0)
        ps, states, _ = vstep(ps, states, batch)
    final = np.asarray(vval(ps))
    return initial, final


results = {}
for label, spec in SWEEPS.items():
    t0 = time.perf_counter()
    results[label] = run_sweep(spec)
    print(f"{label}: {len(spec['lrs'])} learning rates in {time.perf_counter() - t0:.0f} s")


# %% [markdown]
# ## Final validation loss vs learning rate, and LR sensitivity

# %%
def lr_sensitivity(initial, final):
    capped = np.where(np.isfinite(final), np.minimum(final, initial), initial)
    return float(np.mean(capped - np.min(capped)))


def plot_and_table(results, sweeps, title):
    _, ax = plt.subplots(figsize=(6.5, 4))
    rows = [
        "| optimizer | LRs swept | best LR | best val loss | LR sensitivity |",
        "|---|---|---|---|---|",
    ]
    for label, (initial, final) in results.items():
        lrs = sweeps[label]["lrs"]
        shown = np.where(np.isfinite(final), np.minimum(final, initial), initial)
        ax.plot(lrs, shown, marker="o", label=label)
        best = int(np.nanargmin(np.where(np.isfinite(final), final, np.inf)))
        rows.append(
            f"| {label} | {lrs[0]:.0e}–{lrs[-1]:.0e} ({len(lrs)}) | {lrs[best]:.1e} | "
            f"{final[best]:.3f} | {lr_sensitivity(initial, final):.3f} |"
        )
    ax.set_xscale("log")
    ax.set_xlabel("peak learning rate")
    ax.set_ylabel("final validation loss (nats/byte)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    plt.show()
    print("\n".join(rows))
    for label, (initial, final) in results.items():
        print(label, "initial", round(initial, 3), "final", np.round(final, 3).tolist())


plot_and_table(results, SWEEPS, f"{MODEL.num_params():,}-param byte GPT, {NUM_STEPS} steps")

# %% [markdown]
# ## Is Lion's gap batch size?
#
# Lion's paper advises larger batches than AdamW's. The same AdamW and Lion sweeps at a 4×
# larger batch (same steps, so 4× the tokens), over the upper two decades of learning rates
# where both optimizers' best settings lie at the small batch.

# %%
LARGE_SWEEPS = {label: dict(SWEEPS[label], lrs=SWEEPS[label]["lrs"][-5:])
                for label in ("adamw", "lion")}
large_results = {}
for label, spec in LARGE_SWEEPS.items():
    t0 = time.perf_counter()
    large_results[label] = run_sweep(spec, batch_size=LARGE_BATCH)
    print(f"{label} @ batch {LARGE_BATCH}: {len(spec['lrs'])} learning rates in "
          f"{time.perf_counter() - t0:.0f} s")
plot_and_table(large_results, LARGE_SWEEPS, f"batch {LARGE_BATCH} × {SEQ} bytes, {NUM_STEPS} steps")
