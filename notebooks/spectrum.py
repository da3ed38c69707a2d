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
# # Curvature diagnostics: Hessian spectrum, sharpness and the edge of stability
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/gradkit/gradkit/blob/main/notebooks/spectrum.ipynb)
#
# `gradkit.hessian` works on any pytree model and any optax optimizer, on top of one
# forward-over-reverse Hessian-vector product (shared with Sophia's estimators):
#
# * `gradkit.hvp`, `gradkit.hessian_top_eigenvalues` (Lanczos with full re-orthogonalisation,
#   or power iteration with deflation as in PyHessian), `gradkit.hessian_trace` (Hutchinson),
#   `gradkit.hessian_spectral_density` (stochastic Lanczos quadrature, Ghorbani et al. 2019);
# * `gradkit.sharpness`, `gradkit.adam_preconditioner`, `gradkit.preconditioned_sharpness`,
#   `gradkit.edge_of_stability_threshold` and the training-loop hook `gradkit.track_sharpness`.
#
# This notebook (1) checks the estimators against the exact Hessian of a tiny network,
# (2) reproduces the edge of stability (Cohen et al. 2021, [arXiv
# 2103.00065](https://arxiv.org/abs/2103.00065))
# for full-batch GD and its adaptive version for Adam (Cohen et al. 2022,
# [arXiv 2207.14484](https://arxiv.org/abs/2207.14484)), and (3) counts Hessian outliers against
# the number of classes (Sagun et al. 2017, [arXiv 1706.04454](https://arxiv.org/abs/1706.04454)).
# The runs are those of `examples/spectrum` at reduced length (docs/spectrum.md has the full
# ones). Set `TINY = True` (the parameters cell) to run everything at toy size (the test suite
# does).

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

import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image
from IPython.display import display
from jax.flatten_util import ravel_pytree

import gradkit

# The example code is the repository's `examples` package (the first cell makes it importable).
from examples.spectrum import train as spectrum_train
from examples.spectrum.configs import default as spectrum_default


def EoSConfig(**fields):  # named like the configuration it returns
    """The example's edge-of-stability configuration with ``fields`` changed."""
    config = spectrum_default.get_config().eos
    config.update(fields)
    return config


def OutliersConfig(**fields):
    """The example's bulk + outliers configuration with ``fields`` changed."""
    config = spectrum_default.get_config().outliers
    config.update(fields)
    return config

# %matplotlib inline

WORKDIR = "/tmp/gradkit_spectrum_notebook"
print(jax.devices(), "tiny" if TINY else "full")

# %% [markdown]
# ## 1. Against the exact Hessian of a tiny network
#
# A 2-layer tanh regression net with 22 parameters: `jax.hessian` + `eigh` give the exact
# spectrum. Lanczos and power iteration (with deflation) give the top eigenvalues; Hutchinson's
# trace comes with a standard error; SLQ's quadrature nodes and weights give a density whose
# integral is 1.

# %%
k = jax.random.split(jax.random.key(0), 4)
x, y = jax.random.normal(k[0], (16, 3)), jax.random.normal(k[1], (16, 2))
params = {"w1": 0.7 * jax.random.normal(k[2], (3, 4)), "b1": 0.1 * jnp.ones(4),
          "w2": 0.7 * jax.random.normal(k[3], (4, 2))}


def loss(p, x, y):
    return jnp.mean((jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] - y) ** 2)


flat, unravel = ravel_pytree(params)
exact = np.linalg.eigvalsh(np.asarray(jax.hessian(lambda f: loss(unravel(f), x, y))(flat)))[::-1]
lanczos, _ = gradkit.hessian_top_eigenvalues(loss, params, x, y, k=3)
power, _ = gradkit.hessian_top_eigenvalues(loss, params, x, y, k=3, method="power", tol=1e-8,
                                           num_iterations=2000)
trace = gradkit.hessian_trace(loss, params, x, y, num_samples=300)
sd = gradkit.hessian_spectral_density(loss, params, x, y, num_iterations=10, num_probes=20,
                                      sigma_squared=1e-3, grid_len=2000)
print("exact top-3      ", np.round(exact[:3], 5), " (smallest:", round(float(exact[-1]), 5), ")")
print("Lanczos top-3    ", np.round(np.asarray(lanczos), 5))
print("power (|λ|) top-3", np.round(np.asarray(power), 5), " <- largest magnitudes")
print(f"trace: exact {exact.sum():.4f}, Hutchinson {float(trace.trace):.4f} "
      f"± {float(trace.std_error):.4f}")
print(f"SLQ density integral: {float(np.trapezoid(sd.density, sd.grid)):.4f}")
plt.figure(figsize=(6, 3))
plt.hist(exact, bins=22, density=True, alpha=0.4, label="exact eigenvalues")
plt.plot(sd.grid, sd.density, label="SLQ (order 10, 20 probes, σ²=1e-3·range)")
plt.xlabel("eigenvalue")
plt.legend()
plt.show()

# %% [markdown]
# ## 2. Edge of stability: GD (2/η) and Adam (38/η)
#
# Full-batch training of a tanh MLP (20 → 64 → 64 → 10, squared loss) on 1,000 generated
# examples of an overlapping 10-class Gaussian mixture. `gradkit.track_sharpness` wraps the
# optimizer and measures λ_max(H) every 50 steps (20 Lanczos steps); for Adam also the
# preconditioned λ_max(P⁻¹H) with P = (1−β₁ᵗ)(√ν̂ + ε) (`gradkit.adam_preconditioner`), whose
# threshold is (2+2β₁)/((1−β₁)η) = 38/η. GD: sharpness rises (progressive sharpening) to 2/η
# and hovers there; Adam: the preconditioned sharpness rises to 38/η and hovers there.

# %%
# (At toy size this section is skipped: tests/test_spectrum_example.py runs the same code.)
runs = [] if TINY else [("gd", 0.3), ("adam", 3e-3)]
common = dict(num_steps=3000)
workdirs = []
for optimizer, lr in runs:
    config = EoSConfig(optimizer=optimizer, learning_rate=lr, **common)
    workdir = f"{WORKDIR}/eos_{optimizer}_lr{lr:g}"
    summary = spectrum_train.edge_of_stability(config, workdir, progress=False)
    workdirs.append(workdir)
    print(f"{optimizer} η={lr:g}: threshold {summary['threshold']:.1f}, tracked "
          f"{summary['tracked']}, reached 0.9·threshold at step {summary['reached_at_step']}, "
          f"plateau/threshold {summary['plateau_over_threshold']:.3f}")
if workdirs:
    spectrum_train.plot_edge_of_stability(workdirs, f"{WORKDIR}/eos.png")
    display(Image(f"{WORKDIR}/eos.png"))

# %% [markdown]
# ## 3. Bulk + outliers vs the number of classes
#
# A small classifier (20 → 32 → 32 → C, cross-entropy) trained 200 steps on a C-class Gaussian
# mixture; the top-30 Hessian eigenvalues by Lanczos and the SLQ density. Outliers: the
# eigenvalues before the largest ratio gap λᵢ/λᵢ₊₁ among the top 30.

# %%
if TINY:
    config = OutliersConfig(classes=(3,), num_examples=60, train_steps=5,
                                           num_top=4, lanczos_iterations=6, slq_iterations=6)
else:
    config = OutliersConfig(classes=(2, 6, 10))
summary = spectrum_train.bulk_outliers(config, f"{WORKDIR}/outliers", progress=False)
print("| C | outliers | train accuracy | train loss |")
print("|---|---|---|---|")
for c, o, a, loss in zip(summary["classes"], summary["outliers"], summary["accuracy"],
                         summary["loss"], strict=True):
    print(f"| {c} | {o} | {a:.3f} | {loss:.3f} |")
display(Image(f"{WORKDIR}/outliers/outliers.png"))

# %% [markdown]
# The full table (C = 2, 4, …, 10) and the discussion — counts close to C − 1, modest gaps at
# this size — are in `docs/spectrum.md`; the cost of each diagnostic relative to one gradient is
# measured by `python -m benchmarks.spectrum`.
