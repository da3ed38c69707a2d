# SPDX-License-Identifier: Apache-2.0
r"""Grokking at the edge of numerical stability: StableMax and ⊥Grad on a op b mod p.

The logic of ``python -m examples.grokking.main`` (configuration: ``configs/default.py``):
:func:`train_and_evaluate`. Reproduces the claims of Prieto et al., "Grokking at the Edge
of Numerical Stability" (2025, arXiv 2501.04697) with the paper's setup: the MLP
2p → 200 → 200 → p on one-hot operands, full-batch training (one step per epoch), a
random 40% train split.

  * float32 softmax cross-entropy without weight decay fits the training set but does
    not generalise, while Softmax Collapse (SC) spreads over the training set;
  * StableMax cross-entropy without weight decay groks with SC ≈ 0;
  * ⊥AdamW without weight decay generalises in far fewer epochs than AdamW with it.

Each epoch is one full-batch step; epochs run inside jitted ``lax.fori_loop``s,
``chunk`` epochs per call. Every ``log_interval`` epochs (metrics cost more than a step, so
they are not computed every epoch), one row of metrics of the current parameters (before
that epoch's update; epoch 0 is the initialisation, and a last row has the final
parameters) goes to ``<workdir>/metrics.jsonl``: train loss and accuracy, test loss and
accuracy, the collapse fraction of the trained loss (softmax SC, or exactly-zero StableMax
losses, in the run's dtype), the float32 softmax SC (official metric) and the naive
float32 StableMax quotient's collapse on the training logits, the mean top-2 logit gap,
the fraction of exactly-zero losses, the global weight norm and ``cos_nlm``, the cosine
between the descent direction −∇L and w (the naive-loss-minimisation direction).
``<workdir>/summary.json`` has the final numbers and the first logged epoch at which test
accuracy reached 95%; ``<workdir>/grokking.png`` the curves. Measured results and the
command of each: docs/grokking.md.
"""

from __future__ import annotations

import json
import os
import time

from ml_collections import ConfigDict as Config

from examples import config_checks


def make_optimizer(config: Config):
    """The run's optimizer (SGD with torch's coupled L2 term when weight_decay > 0)."""
    import optax

    import gradkit

    name, lr, weight_decay = config.optimizer, config.lr, config.weight_decay
    b1, b2, eps, momentum = config.b1, config.b2, config.adam_eps, config.momentum

    if name == "adamw":
        return optax.adamw(lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)
    if name == "perp_adamw":
        return gradkit.perp_adamw(lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)
    if name == "sgd":
        # torch.optim.SGD(lr, momentum, weight_decay): L2 term before the momentum.
        return optax.chain(optax.add_decayed_weights(weight_decay),
                           optax.sgd(lr, momentum=momentum or None))
    return gradkit.perp_sgd(lr, momentum=momentum or None, l2_coupled=weight_decay)


def validate(config) -> None:
    """Raises ``ValueError`` naming the first invalid field of ``config``."""
    config_checks.check_positive_ints(config, "p", "epochs", "log_interval", "chunk")
    config_checks.check_learning_rates(config, "lr", "weight_decay")
    if config.epochs % config.log_interval or config.chunk % config.log_interval:
        raise ValueError(f"config.epochs ({config.epochs}) and config.chunk ({config.chunk}) "
                         f"must be multiples of config.log_interval ({config.log_interval}).")


def train_and_evaluate(config: Config, workdir: str) -> dict:
    """Trains; writes metrics.jsonl, summary.json and grokking.png to ``workdir``; returns
    the summary (``config``, ``epochs_run``, ``epochs_to_95_test``, final/max test
    accuracy, the last logged row, wall time)."""
    validate(config)
    progress = config.progress
    c = config
    op, p, train_fraction, loss, model = c.op, c.p, c.train_fraction, c.loss, c.model
    optimizer, lr, weight_decay, dtype, seed = c.optimizer, c.lr, c.weight_decay, c.dtype, c.seed
    epochs, log_interval, chunk = c.epochs, c.log_interval, c.chunk
    stop_at_test_acc, max_minutes = c.stop_at_test_acc, c.max_minutes
    import jax

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax

    import gradkit
    from gradkit.data.modular import modular_arithmetic
    from gradkit.models.modular import GrokkingMLP
    from gradkit.models.modular import GrokkingTransformer

    os.makedirs(workdir, exist_ok=True)
    fdtype = jnp.dtype(dtype)
    data = modular_arithmetic(p, op, train_fraction, seed)
    x_tr, y_tr = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
    x_te, y_te = jnp.asarray(data.x_test), jnp.asarray(data.y_test)
    if model == "mlp":
        net = GrokkingMLP(num_tokens=p, num_classes=p, dtype=fdtype)
    else:
        net = GrokkingTransformer(num_tokens=p, num_classes=p, dtype=fdtype)
    init_key, dropout_key = jax.random.split(jax.random.key(seed))
    params = net.init(init_key, x_tr[:2])
    opt = make_optimizer(config)
    opt_state = opt.init(params)

    def ce(logits, labels):
        if loss == "stablemax":
            return gradkit.stablemax_cross_entropy(logits, labels).mean()
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    def train_loss(params, epoch):
        if model == "mlp":
            logits = net.apply(params, x_tr)
        else:  # dropout, as the official transformer trains
            rngs = {"dropout": jax.random.fold_in(dropout_key, epoch)}
            logits = net.apply(params, x_tr, deterministic=False, rngs=rngs)
        return ce(logits, y_tr)

    def train_epoch(epoch, carry):
        params, opt_state = carry
        grads = jax.grad(train_loss)(params, epoch)
        updates, opt_state = opt.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    def eval_loss(params, x, y):
        logits = net.apply(params, x)
        return ce(logits, y), logits

    def metrics(params):
        """Metrics of ``params`` (the deterministic model) before the next epoch's update."""
        (tr_loss, logits), grads = jax.value_and_grad(eval_loss, has_aux=True)(
            params, x_tr, y_tr)
        te_loss, te_logits = eval_loss(params, x_te, y_te)
        g = jnp.concatenate([x.reshape(-1) for x in jax.tree.leaves(grads)])
        w = jnp.concatenate([x.reshape(-1) for x in jax.tree.leaves(params)])
        top2 = jax.lax.top_k(logits, 2)[0]
        return dict(
            train_loss=tr_loss,
            train_acc=jnp.mean(jnp.argmax(logits, -1) == y_tr),
            test_loss=te_loss,
            test_acc=jnp.mean(jnp.argmax(te_logits, -1) == y_te),
            # Collapse of the loss being trained, in the run's dtype: softmax SC, or for
            # StableMax the fraction of exactly-zero losses (no gradient left).
            sc_fraction=(jnp.mean(gradkit.stablemax_cross_entropy(logits, y_tr) == 0)
                         if loss == "stablemax"
                         else gradkit.softmax_collapse_fraction(logits, dtype=fdtype)),
            # Whatever the loss: float32 softmax SC (official metric) of the same logits,
            # and the collapse of the naive float32 StableMax quotient s_y / Σ s.
            softmax_sc_fraction=gradkit.softmax_collapse_fraction(logits),
            stablemax_sc_fraction=gradkit.stablemax_collapse_fraction(logits),
            max_logit_gap=jnp.mean(top2[:, 0] - top2[:, 1]),
            zero_loss_fraction=gradkit.zero_loss_fraction(logits, y_tr, dtype=fdtype),
            weight_norm=jnp.linalg.norm(w),
            cos_nlm=jnp.vdot(-g, w) / (jnp.linalg.norm(g) * jnp.linalg.norm(w) + 1e-30),
        )

    def logged_period(carry, first_epoch):
        # Metrics are computed once per `log_interval` epochs: they cost more than a step.
        row = metrics(carry[0])
        carry = jax.lax.fori_loop(first_epoch, first_epoch + log_interval, train_epoch, carry)
        return carry, row

    @jax.jit
    def run_chunk(params, opt_state, first_epochs):
        return jax.lax.scan(logged_period, (params, opt_state), first_epochs)

    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    bar = tqdm(total=epochs, disable=not progress, unit="epoch") if tqdm else None
    start = time.time()
    done = 0
    rows = []

    def record(f, row):
        rows.append(row)
        f.write(json.dumps(row) + "\n")

    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
        while done < epochs:
            n = min(chunk, epochs - done)
            firsts = jnp.arange(done, done + n, log_interval, dtype=jnp.int32)
            (params, opt_state), m = run_chunk(params, opt_state, firsts)
            m = jax.device_get(m)
            for i, epoch in enumerate(range(done, done + n, log_interval)):
                record(f, {"epoch": epoch, **{k: float(v[i]) for k, v in m.items()}})
            f.flush()  # long runs: rows are readable while training continues
            done += n
            last = rows[-1]
            if bar is not None:
                bar.update(n)
                bar.set_postfix(train=f"{last['train_acc']:.3f}",
                                test=f"{last['test_acc']:.3f}", sc=f"{last['sc_fraction']:.3f}")
            if stop_at_test_acc > 0 and last["test_acc"] >= stop_at_test_acc:
                break
            if max_minutes > 0 and time.time() - start > 60 * max_minutes:
                break
        # The final parameters get a row too (epoch = epochs run).
        record(f, {"epoch": done, **{k: float(v) for k, v in
                                     jax.device_get(jax.jit(metrics)(params)).items()}})
    if bar is not None:
        bar.close()
    summary = dict(
        config=dict(config.to_dict(), n_train=len(data.y_train),
                    n_test=len(data.y_test)),
        epochs_run=done,
        epochs_to_95_test=next((r["epoch"] for r in rows if r["test_acc"] >= 0.95), None),
        final_test_acc=rows[-1]["test_acc"],
        final_test_loss=rows[-1]["test_loss"],
        max_test_acc=max(r["test_acc"] for r in rows),
        last_logged=rows[-1],
        wall_s=round(time.time() - start, 1),
    )
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    plot(os.path.join(workdir, "metrics.jsonl"), os.path.join(workdir, "grokking.png"),
         title=f"{loss} + {optimizer} (lr {lr}, wd {weight_decay}), {p=}, {dtype}")
    return summary


def plot(metrics_path, out_path, title=""):
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    rows = [json.loads(line) for line in open(metrics_path)]
    ep = [r["epoch"] for r in rows]
    te = [(r["epoch"], r["test_acc"]) for r in rows if r["test_acc"] is not None]
    fig = Figure(figsize=(15, 4))
    ax = fig.subplots(1, 3)
    ax[0].plot(ep, [r["train_acc"] for r in rows], label="train")
    ax[0].plot([e for e, _ in te], [a for _, a in te], label="test")
    ax[0].set_ylabel("accuracy")
    ax[1].plot(ep, [r["sc_fraction"] for r in rows], label="SC fraction (trained loss)")
    ax[1].plot(ep, [r["softmax_sc_fraction"] for r in rows], "--",
               label="float32 softmax SC")
    ax[1].plot(ep, [r["cos_nlm"] for r in rows], label="cos(−∇L, w)")
    ax[1].set_ylim(-1.05, 1.05)
    ax[2].plot(ep, [r["weight_norm"] for r in rows])
    ax[2].set_ylabel("‖w‖")
    for a in ax:
        a.set_xlabel("epoch")
        a.set_xscale("symlog", linthresh=10)
        a.legend() if a is not ax[2] else None
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out_path, dpi=100)
