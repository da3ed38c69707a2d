r"""Optimizer state memory and update time of every gradkit optimizer vs optax.adamw.

One table, one process: for every optimizer alias in the conformance registry
(``tests/registry.py``; its tiny-pytree kwargs replaced by the paper defaults where they
only exist for the tiny pytrees) plus 8-bit variants and ``optax.adamw``:

* **state bytes / param**: the sum of ``nbytes`` over the leaves of the actual
  ``opt.init(params)`` state pytree (PRNG keys counted by their key data), divided by the
  number of parameters;
* **update time ratio**: median wall time of one jitted ``opt.update`` +
  ``optax.apply_updates`` from the state after one step (a step without a projector
  refresh) over ``--repeats`` rounds, the candidates interleaved
  round by round (so load changes hit all alike), divided by ``optax.adamw``'s median.
  Extra arguments (a loss for Sophia's Hessian estimate, the population fitness for
  EGGROLL) are built once outside the timed step, from the parabola loss
  ``Σ(x − 1)²``; Sophia-H's Hessian-vector product of that loss is inside the step.

The parameters are a transformer-like pytree: four blocks of (d×4d, 4d×d, four d×d)
matrices plus bias/scale vectors (``--size`` ≈ the number of parameters).

    PYTHONPATH=. python benchmarks/memory.py                 # ~4M params, < 2 min CPU
    PYTHONPATH=. python benchmarks/memory.py --size=200000 --repeats=3   # quick

Sven is left out: its per-sample Jacobian over the parabola's one loss per coordinate
is quadratic in the number of parameters (it is benchmarked in benchmarks/multitask.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import optax

import gradkit
from benchmarks.timing import interleaved_medians
from benchmarks.timing import markdown_table
from tests import helpers
from tests.registry import ROWS

# Registry rows whose kwargs only suit the suite's tiny pytrees: the paper defaults here.
OVERRIDES: dict[str, dict[str, Any]] = {
    "adamw_8bit": dict(learning_rate=1e-3),
    "frugal": dict(learning_rate=1e-3),  # ρ 0.25, blocks, T 200: the paper's pre-training
    "fira": dict(learning_rate=1e-2),  # rank: d/4 of the pytree (below), as in the papers
}
SKIP = {"sven"}


def make_params(size: int) -> dict[str, Any]:
    """Four transformer-like blocks, 12·d² + 6·d values each, ~``size`` in total."""
    d = max(8, int(math.sqrt(size / 48)))
    key = jax.random.key(0)
    params = {}
    for i in range(4):
        keys = jax.random.split(jax.random.fold_in(key, i), 6)
        params[f"block{i}"] = {
            "mlp_in": 0.02 * jax.random.normal(keys[0], (d, 4 * d)),
            "mlp_out": 0.02 * jax.random.normal(keys[1], (4 * d, d)),
            **{f"attn_{n}": 0.02 * jax.random.normal(keys[2 + j], (d, d))
               for j, n in enumerate("qkvo")},
            "bias": jnp.zeros(4 * d),
            "scale": jnp.ones(2 * d),
        }
    return params


@dataclasses.dataclass
class Candidate:
    name: str
    opt: optax.GradientTransformation
    extra_args: Any = None  # (loss_fn, params, state) -> dict


def candidates(d_model: int) -> list[Candidate]:
    out = [Candidate("optax.adamw", optax.adamw(1e-3))]
    for row in ROWS:
        if row.name in SKIP or getattr(row, "kind", "alias") != "alias":
            continue
        kwargs = OVERRIDES.get(row.name, row.kwargs)
        if row.name == "fira":
            kwargs = dict(kwargs, rank=max(1, d_model // 4))
        out.append(Candidate(f"gradkit.{row.name}", row.factory(**kwargs), row.extra_args))
    out += [
        Candidate("with_8bit_state(optax.adamw)",
                  gradkit.with_8bit_state(optax.adamw(1e-3))),
        Candidate("with_8bit_state(gradkit.lion)",
                  gradkit.with_8bit_state(gradkit.lion(1e-4))),
        Candidate("with_8bit_state(gradkit.spam)",
                  gradkit.with_8bit_state(gradkit.spam(1e-3))),
        Candidate("gradkit.adamw_8bit(block_size=256)",
                  gradkit.adamw_8bit(1e-3, block_size=256)),
    ]
    return out


def build_step(cand: Candidate, params: Any):
    """(jitted step, state) for one candidate; extra args fixed outside the step."""
    state = cand.opt.init(params)
    extra = cand.extra_args(helpers.parabola, params, state) if cand.extra_args else {}
    grads = jax.grad(helpers.parabola)(params)

    @jax.jit
    def step(params, state, grads):
        updates, state = cand.opt.update(grads, state, params, **extra)
        return optax.apply_updates(params, updates), state

    # Time a typical step, not the first: at count 0 projector methods (FRUGAL, Fira)
    # re-choose their subspace (an SVD), which they do only every T steps.
    _, state = step(params, state, grads)
    return (lambda: step(params, state, grads)), state


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=4_000_000, help="≈ number of params")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--only", default="", help="comma-separated name substrings")
    args = parser.parse_args(argv)
    params = make_params(args.size)
    n = sum(x.size for x in jax.tree.leaves(params))
    cands = candidates(d_model=params["block0"]["attn_q"].shape[0])
    if args.only:
        keep = args.only.split(",")
        cands = [c for c in cands if c.name == "optax.adamw" or any(k in c.name for k in keep)]
    steps, bytes_per_param, errors = {}, {}, {}
    for cand in cands:
        try:
            fn, state = build_step(cand, params)
            jax.block_until_ready(fn())  # compile
            steps[cand.name] = fn
            bytes_per_param[cand.name] = gradkit.memory.state_bytes(state) / n
        except Exception as e:  # reported in the table, not hidden
            errors[cand.name] = f"{type(e).__name__}: {str(e).splitlines()[0][:80]}"
    medians = interleaved_medians({name: (lambda _, fn=fn: fn()) for name, fn in steps.items()},
                                  dict.fromkeys(steps), rounds=args.repeats, warmup=0)
    base = medians["optax.adamw"]
    rows = []
    for cand in cands:
        if cand.name in errors:
            rows.append([cand.name, "error", "error", errors[cand.name]])
            continue
        t = medians[cand.name]
        rows.append([cand.name, f"{bytes_per_param[cand.name]:.3f}", f"{t / base:.2f}",
                     f"{1e3 * t:.2f} ms"])
    table = markdown_table(
        ["optimizer", "state bytes / param", "update time / optax.adamw", "median update"],
        rows)
    header = (f"{n:,} parameters ({args.size:,} requested), {jax.devices()[0].device_kind}, "
              f"median of {args.repeats} interleaved rounds")
    print(header + "\n\n" + table)
    return table


if __name__ == "__main__":
    main()
