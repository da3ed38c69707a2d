"""Writes notebooks/muon.ipynb (run: python notebooks/build_muon.py). Edit the cells here."""

from _builder import Builder

nb = Builder()  # starts with the Colab install cell
md, code = nb.md, nb.code

md(r"""
# Orthogonalised momentum: AuON, Drop-Muon, and diffGrad

Three claims from `docs/muon.md`, each checked at CPU size (set `GRADKIT_TINY=1` to run in
seconds, as the test suite does):

1. **diffGrad** (Dubey et al. 2020, arXiv 1909.11015): on the official 1-D toy, diffGrad
   finds the global minimum −0.3 where Adam at the same lr overshoots into 0.2 — and Adam
   at half the lr finds −0.3 too.
2. **AuON** (Maity 2025, arXiv 2509.24320): its cosh-RMS brake r satisfies
   r − 1 ≤ sinh²(1)/(2N), so for real matrices AuON is Frobenius-normalised Nesterov SGD.
3. **Drop-Muon** (Gruntkowska et al. 2025, arXiv 2510.02239): updating only layers s..L
   with a truncated backward pass; wall clock against Muon on a small CNN.
""")

code(r"""
import importlib.util
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

# The example code is the repository's `examples` package (the set-up cell put the checkout on
# sys.path).
from examples.drop_muon_cnn import train as cnn

%matplotlib inline
TINY = os.environ.get("GRADKIT_TINY") == "1"
print("tiny" if TINY else "full size")
""")

md(r"""
## 1. diffGrad on the 1-D toy
f′(x) = 2x + 0.6 for x ≤ 0, 2x − 0.4 otherwise; x₀ = −1, 299 updates, β₁ = 0.95.
""")

code(r"""
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
plt.axhline(-0.3, ls=":", c="k"); plt.axhline(0.2, ls=":", c="gray")
plt.xlabel("iteration"); plt.ylabel("x"); plt.legend(); plt.show()
""")

md(r"""
## 2. AuON's cosh brake is ≈ 1
r = √mean(cosh²(X)) for ‖X‖_F = 1 against the bound 1 + sinh²(1)/(2N), for Gaussian and
heavy-tailed matrices and the extremal one-hot.
""")

code(r"""
print("| N | Gaussian r−1 | Cauchy r−1 | one-hot r−1 | bound sinh²(1)/(2N) |")
print("|---|---|---|---|---|")
rng = np.random.default_rng(0)
for shape in [(2, 2), (8, 8), (64, 64), (256, 256)]:
    n = math.prod(shape)
    one_hot = np.zeros(shape); one_hot[0, 0] = 1
    vals = []
    for x in (rng.normal(size=shape), rng.standard_cauchy(size=shape), one_hot):
        x = x / np.linalg.norm(x)
        vals.append(float(np.sqrt(np.mean(np.cosh(x) ** 2))) - 1)
    print(f"| {n} | {vals[0]:.2e} | {vals[1]:.2e} | {vals[2]:.2e} | "
          f"{math.sinh(1) ** 2 / (2 * n):.2e} |")
""")

md(r"""
## 3. Drop-Muon vs Muon on a small CNN (generated image-like data)
`examples/drop_muon_cnn/train.py`: both optimizers from the same init and batches, steps
interleaved, each timed on its own; Drop-Muon's backward pass stops at the sampled layer.
""")

code(r"""
cfg = cnn.Config(channels=(2, 4, 4) if TINY else (16, 32, 64),
                 num_train=128 if TINY else 8192, batch_size=16 if TINY else 256,
                 num_steps=8 if TINY else 300, log_every=2 if TINY else 10, progress=False)
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
plt.xlabel("seconds (own steps)"); plt.ylabel("train accuracy (EMA)"); plt.legend(); plt.show()
""")

nb.write("muon.ipynb")
