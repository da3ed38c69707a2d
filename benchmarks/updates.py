# SPDX-License-Identifier: Apache-2.0
r"""Every gradkit optimizer against optax: update time, state, scratch and the LM train step.

One table, one process. The rows are every optimizer alias of the conformance registry
(``tests/registry.py``; its tiny-pytree kwargs replaced by the paper defaults where they
only exist for the tiny pytrees), 8-bit variants (``with_8bit_state``, ``adamw_8bit`` with
256-value blocks) and the optax peers. Columns:

* **optax peer**: the nearest optax optimizer (same betas where it has them; Adam for the
  Adam-based methods without weight decay, AdamW for ``adamw_8bit``; ``optax.lion`` for the
  Lion family, ``optax.contrib.sophia`` for Sophia, ``optax.contrib.muon`` for AuON and
  Drop-Muon, ``optax.adagrad`` for AdaGrad-Norm, SGD for ⊥SGD, and for EGGROLL and Sven,
  whose steps are SGD on their own estimate of the gradient);
* **state B/param**: ``gradkit.memory.state_bytes(opt.init(params))`` / number of params;
* **scratch MiB**: ``memory_analysis().temp_size_in_bytes`` of the compiled update step
  (what XLA allocates per call besides arguments and outputs, untaken ``lax.cond`` branches
  included);
* **update**: median wall time of one jitted ``opt.update`` + ``optax.apply_updates``
  with params and state donated (as in a Flax training loop), each candidate carrying its
  own state from step to step, the candidates interleaved round by round
  (:func:`benchmarks.timing.interleaved_medians`), as a ratio to ``optax.adamw`` and to
  the peer in the same run; Sophia's refresh steps (every 10) and FRUGAL's and Fira's
  (every 200) fall outside the median;
* **LM train step × adamw**: the same for a whole jitted, donating train step of the
  reference LM (:mod:`gradkit.models.transformer` built as the LM demo builds it,
  :func:`examples.lm.parallel_train.data_parallel_train_step` with the demo's extra args,
  random bytes): forward, backward, update.

The update parameters are a transformer-like tree
(:func:`benchmarks.timing.transformer_like_params`, ``--size`` values); the gradient is
that of the parabola ``Σ(x − 1)²`` (``tests.helpers.parabola``), fixed. Extra arguments:
Sophia-H's Hessian-vector products of the parabola run inside its refresh steps; Sophia-G
takes the registry's logits of the parameters; EGGROLL a fixed fitness vector of 64
members (its update regenerates their noise; the members' forward passes are not timed,
so its LM column is empty: ``benchmarks/eggroll.py`` times ES on an LM); Sven 8
per-sample losses (parabolas around 8 targets) in the update table and the batch's
per-sequence losses on the LM.

    python -m benchmarks.updates                     # ~4M params, default LM
    python -m benchmarks.updates --only=lion,adamw_8bit --repeats=11
    python -m benchmarks.updates --quick             # tiny sizes: checks that all rows run

On CPU the result depends on the allocator (docs/benchmarks.md): jemalloc with its decay
off, ``LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2
MALLOC_CONF=dirty_decay_ms:-1,muzzy_decay_ms:-1``, keeps freed scratch for the next step.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

import gradkit
from benchmarks.timing import compiled_program_stats
from benchmarks.timing import interleaved_medians
from benchmarks.timing import markdown_table
from benchmarks.timing import transformer_like_params
from examples.lm import parallel_train
from examples.lm import trainer
from gradkit.models import transformer
from tests import helpers
from tests.registry import ROWS

# Registry rows whose kwargs only suit the suite's tiny pytrees: the paper defaults here.
OVERRIDES: dict[str, dict[str, Any]] = {
    "adamw_8bit": dict(learning_rate=1e-3),
    "frugal": dict(learning_rate=1e-3),  # ρ 0.25, blocks, T 200: the paper's pre-training
    "fira": dict(learning_rate=1e-2),  # rank: d/4 of the tree (below), as in the papers
}

# The optax peers, by the name shown in the table.
PEERS: dict[str, Callable[[], optax.GradientTransformation]] = {
    "optax.adamw": lambda: optax.adamw(1e-3),
    "optax.adam": lambda: optax.adam(1e-3),
    "optax.lion": lambda: optax.lion(1e-4),
    "optax.contrib.sophia": lambda: optax.contrib.sophia(1e-3),
    "optax.contrib.muon": lambda: optax.contrib.muon(0.02),
    "optax.adagrad": lambda: optax.adagrad(1e-2),
    "optax.sgd": lambda: optax.sgd(1e-2),
    "optax.sgd(momentum=0.8)": lambda: optax.sgd(1e-2, momentum=0.8),
}
# Registry row -> its peer; rows not listed (Adam-type with weight decay) take optax.adamw.
PEER_OF: dict[str, str] = {
    "lion": "optax.lion", "lion_k_tanh": "optax.lion", "lion_k_relativistic": "optax.lion",
    "sophia_h": "optax.contrib.sophia", "sophia_g": "optax.contrib.sophia",
    "perp_adamw": "optax.adam", "perp_sgd": "optax.sgd(momentum=0.8)",
    "spam": "optax.adam", "spam_sparse": "optax.adam", "stable_spam": "optax.adam",
    "eggroll": "optax.sgd", "sven": "optax.sgd",
    "auon": "optax.contrib.muon", "drop_muon": "optax.contrib.muon",
    "diffgrad": "optax.adam", "adagrad_norm": "optax.adagrad",
    "frugal": "optax.adam", "fira": "optax.adam", "adamw_8bit": "optax.adamw",
}
BASE = "optax.adamw"
EGGROLL_POPULATION = 64
SVEN_SAMPLES = 8


@dataclasses.dataclass
class Candidate:
    name: str
    opt: optax.GradientTransformation
    peer: str | None = None  # None: an optax peer itself
    # (params, state) -> the update's keyword extra args in the update table.
    extra_args: Callable[[Any, Any], dict[str, Any]] = lambda params, state: {}
    on_lm: bool = True  # timed as a train step of the reference LM


def _registry_extra_args(row) -> Callable[[Any, Any], dict[str, Any]]:
    if row.name == "eggroll":  # fixed fitness: the population's forward passes are not timed
        return lambda params, state: {
            "fitness": jnp.linspace(-1.0, 1.0, EGGROLL_POPULATION)}
    if row.name == "sven":
        return lambda params, state: {"per_sample_loss_fn": _parabolas}
    return lambda params, state: row.extra_args(helpers.parabola, params, state)


def _parabolas(params: Any) -> jax.Array:
    """``SVEN_SAMPLES`` per-sample losses: Σ(x − t)² for targets t in [0, 1]."""
    targets = jnp.linspace(0.0, 1.0, SVEN_SAMPLES)
    return jax.vmap(lambda t: sum(jnp.sum((x - t) ** 2) for x in jax.tree.leaves(params)))(
        targets)


def candidates(d_model: int) -> list[Candidate]:
    """Every registry alias, the 8-bit variants and the peers; Fira at rank ``d_model/4``."""
    out = [Candidate(BASE, PEERS[BASE]())]
    for row in ROWS:
        if row.kind != "alias":
            continue
        kwargs = OVERRIDES.get(row.name, row.kwargs)
        if row.name == "fira":
            kwargs = dict(kwargs, rank=max(1, d_model // 4))
        out.append(Candidate(f"gradkit.{row.name}", row.factory(**kwargs),
                             PEER_OF.get(row.name, BASE), _registry_extra_args(row),
                             on_lm=row.name != "eggroll"))
    out += [
        Candidate("with_8bit_state(optax.adamw)", gradkit.with_8bit_state(optax.adamw(1e-3)),
                  "optax.adamw"),
        Candidate("with_8bit_state(gradkit.lion)", gradkit.with_8bit_state(gradkit.lion(1e-4)),
                  "optax.lion"),
        Candidate("with_8bit_state(gradkit.spam)", gradkit.with_8bit_state(gradkit.spam(1e-3)),
                  "optax.adam"),
        Candidate("gradkit.adamw_8bit(block_size=256)",
                  gradkit.adamw_8bit(1e-3, block_size=256), "optax.adamw"),
    ]
    used = {c.peer for c in out}
    sophia_args = _registry_extra_args(next(r for r in ROWS if r.name == "sophia_h"))
    out += [Candidate(name, make(), extra_args=sophia_args if "sophia" in name else
                      (lambda params, state: {}))
            for name, make in PEERS.items() if name != BASE and name in used]
    return out


def select(cands: list[Candidate], only: str) -> list[Candidate]:
    """The candidates whose name contains one of the comma-separated ``only`` substrings,
    with their peers and ``optax.adamw``."""
    if not only:
        return cands
    keep = {c.name for c in cands if any(k in c.name for k in only.split(","))}
    keep |= {c.peer for c in cands if c.name in keep} | {BASE}
    return [c for c in cands if c.name in keep]


def _error(e: Exception) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:80] if str(e) else ''}"


def _fresh(tree: Any) -> Any:
    """Copies of the arrays of ``tree``: donated buffers of their own."""
    return jax.tree.map(jnp.copy, tree)


def update_steps(cands: list[Candidate], params: Any):
    """Per candidate: (step over a (params, state) carry, carry, state bytes, scratch bytes)."""
    grads = jax.grad(helpers.parabola)(params)
    out, errors = {}, {}
    for cand in cands:
        try:
            state = cand.opt.init(params)
            extra = cand.extra_args(params, state)

            def step(params, state, grads, opt=cand.opt, extra=extra):
                updates, state = opt.update(grads, state, params, **extra)
                return optax.apply_updates(params, updates), state

            compiled = jax.jit(step, donate_argnums=(0, 1)).lower(params, state,
                                                                   grads).compile()
            out[cand.name] = (lambda c, compiled=compiled: compiled(*c, grads),
                              (_fresh(params), _fresh(state)),
                              gradkit.memory.state_bytes(state),
                              compiled_program_stats(compiled)["temp_bytes"])
        except Exception as e:  # reported in the table, not hidden
            errors[cand.name] = _error(e)
    return out, errors


def lm_setup(args):
    """(description, params, batch, loss_fn, extra_args_fn) of the reference LM."""
    cfg = trainer.model_config(trainer.replace(
        _lm_default_config(), d_model=args.lm_d_model, num_layers=args.lm_layers,
        num_heads=args.lm_heads, seq_len=args.lm_seq_len, head_bias_init="zeros"), None)
    model = transformer.Transformer(cfg)
    tokens = jax.random.randint(jax.random.key(1), (args.lm_batch, args.lm_seq_len + 1), 0,
                                cfg.vocab_size)
    batch = {"inputs": tokens[:, :-1], "targets": tokens[:, 1:]}
    params = model.init(jax.random.key(0), batch["inputs"][:1])
    loss_fn, demo_extra_args = trainer.make_loss_fns(model, 0.0)

    def extra_args_fn(params, batch):
        def per_sequence_losses(p):  # Sven's per-sample losses
            logits = model.apply(p, batch["inputs"])
            ce = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"])
            return ce.mean(axis=-1)

        return {**demo_extra_args(params, batch), "per_sample_loss_fn": per_sequence_losses}

    n = sum(x.size for x in jax.tree.leaves(params))
    what = (f"reference LM d_model {args.lm_d_model}, {args.lm_layers} layers, "
            f"{n:,} params, batch {args.lm_batch}×{args.lm_seq_len} bytes")
    return what, params, batch, loss_fn, extra_args_fn


def _lm_default_config():
    from examples.lm.configs import default

    return default.get_config()


def lm_steps(cands: list[Candidate], args, lm_cands: dict[str, Candidate]):
    """Per candidate: (train step over a (params, state) carry, carry); and the LM's name."""
    what, params, batch, loss_fn, extra_args_fn = lm_setup(args)
    out, errors = {}, {}
    for cand in cands:
        if not cand.on_lm:
            continue
        try:
            opt = lm_cands[cand.name].opt
            state = opt.init(params)
            train_step = parallel_train.data_parallel_train_step(
                loss_fn, opt, extra_args_fn=extra_args_fn)
            compiled = jax.jit(train_step, donate_argnums=(0, 1)).lower(
                params, state, batch).compile()
            out[cand.name] = (lambda c, compiled=compiled: compiled(*c, batch)[:2],
                              (_fresh(params), _fresh(state)))
        except Exception as e:
            errors[cand.name] = _error(e)
    return what, out, errors


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=4_000_000,
                        help="≈ number of params of the update table's tree")
    parser.add_argument("--repeats", type=int, default=7, help="interleaved timing rounds")
    parser.add_argument("--only", default="", help="comma-separated name substrings")
    parser.add_argument("--lm_d_model", type=int, default=64)
    parser.add_argument("--lm_layers", type=int, default=2)
    parser.add_argument("--lm_heads", type=int, default=4)
    parser.add_argument("--lm_batch", type=int, default=32,
                        help="sequences per LM train step (0: no LM column)")
    parser.add_argument("--lm_seq_len", type=int, default=64)
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, one round: checks that every row runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.repeats = 50_000, 1
        args.lm_d_model, args.lm_layers, args.lm_heads = 16, 1, 2
        args.lm_batch, args.lm_seq_len = 2, 8

    params = transformer_like_params(args.size)
    n = sum(x.size for x in jax.tree.leaves(params))
    d = params["block0"]["attn_q"].shape[0]
    cands = select(candidates(d_model=d), args.only)
    updates, errors = update_steps(cands, params)
    medians = interleaved_medians({k: v[0] for k, v in updates.items()},
                                  {k: v[1] for k, v in updates.items()}, rounds=args.repeats)
    lm_medians, lm_errors, lm_what = {}, {}, None
    if args.lm_batch > 0:
        lm_cands = {c.name: c for c in select(candidates(d_model=args.lm_d_model), args.only)}
        lm_what, lm, lm_errors = lm_steps(cands, args, lm_cands)
        lm_medians = interleaved_medians({k: v[0] for k, v in lm.items()},
                                         {k: v[1] for k, v in lm.items()}, rounds=args.repeats)

    def ratio(t: float | None, base: float | None) -> str:
        return "—" if t is None or base is None else f"{t / base:.2f}"

    rows = []
    for cand in cands:
        if cand.name in errors:
            rows.append([cand.name, cand.peer or "—", "error", "error", errors[cand.name],
                         "", "", ""])
            continue
        t = medians[cand.name]
        _, _, state_bytes, temp = updates[cand.name]
        lm_cell = lm_errors.get(cand.name) or ratio(lm_medians.get(cand.name),
                                                    lm_medians.get(BASE))
        rows.append([cand.name, cand.peer or "—", f"{state_bytes / n:.3f}",
                     f"{temp / 2**20:.1f}", f"{1e3 * t:.2f}", ratio(t, medians.get(BASE)),
                     ratio(t, medians.get(cand.peer)) if cand.peer else "—", lm_cell])
    table = markdown_table(
        ["optimizer", "optax peer", "state B/param", "scratch MiB", "update ms",
         "update × optax.adamw", "update × peer", "LM train step × optax.adamw"], rows)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    header = (f"update: {n:,} parameters (transformer-like tree, {args.size:,} requested); "
              f"{jax.devices()[0].device_kind}, {os.cpu_count()} CPUs, load average {load}; "
              f"median of {args.repeats} interleaved rounds")
    if lm_what:
        base_lm = lm_medians.get(BASE)
        header += (f"\nLM train step: {lm_what}; optax.adamw "
                   + (f"{1e3 * base_lm:.2f} ms" if base_lm else "—"))
    print(header + "\n\n" + table)
    return table


if __name__ == "__main__":
    main()
