# SPDX-License-Identifier: Apache-2.0
r"""Population-evaluation throughput: EGGROLL vs naive full-rank ES vs plain inference.

Throughput is members × samples per second of one population forward through an MLP
(``--depth`` Dense layers of ``--width``, tanh), every member seeing its own
``--samples`` inputs. Compared in one process, interleaved, median over ``--repeats`` of the
mean of ``--calls`` back-to-back calls:

* plain: the unperturbed model on all N×B inputs (one batched forward, the ceiling);
* EGGROLL, noise pre-generated: factors drawn beforehand and passed in
  (``gradkit.eggroll_sample_noise`` + ``gradkit.eggroll_population_apply``);
* EGGROLL, noise on the fly: factors drawn inside the jitted forward, with the default
  counter-hash generator and with ``jax.random.normal`` (threefry) per noise index;
* naive full-rank ES (:func:`naive_population_apply` below, OpenES-style): every
  member draws a dense Gaussian E_i for every kernel and runs W + σE_i (timed after the
  interleaved methods, one call per repeat).

The paper (width 8192, one GPU): EGGROLL 91% of plain inference with pre-generated
noise, 69% with JAX's PRNG on the fly, naive ES 0.41%.

With ``--es_step`` (default), a second table times whole ES steps (population forward,
fitness, ``scale_by_eggroll`` + Adam update, all in one ``jax.jit``) of the MLP above and
of the minGRU byte LM of ``examples/eggroll_lm`` (``--lm_*`` flags), with the forward's
noise kept in memory (``eggroll_population_apply``'s default, the fast path of
``gradkit/evolution/_stored_noise.py``) against its textbook twin, the same
``eggroll_sample_noise`` passed in from inside the jit (XLA free to fuse the generator
into the layers).

    PYTHONPATH=. python -m benchmarks.eggroll --width=1024 --depth=2 --population=256

"× naive ES" is the throughput relative to naive ES (EGGROLL's speed-up). The last
column is the same ratio in process CPU time (all threads): on a shared, loaded machine
wall time depends on scheduling, CPU time on the work done.
"""

from __future__ import annotations

import statistics
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from absl import app
from absl import flags

import gradkit
from gradkit.models.mingru import MinGRULM

flags.DEFINE_integer("width", 1024, "MLP width (input and hidden).")
flags.DEFINE_integer("depth", 2, "Number of Dense layers.")
flags.DEFINE_integer("population", 256, "Population size N.")
flags.DEFINE_integer("samples", 1, "Inputs per member B.")
flags.DEFINE_list("ranks", ["1", "4", "16"], "EGGROLL ranks.")
flags.DEFINE_integer("repeats", 7, "Timed repeats per method (median reported).")
flags.DEFINE_integer("calls", 5, "Back-to-back calls per timed repeat (a single call of "
                     "a few ms varies by ~50% with thread wake-ups on a 2-core CPU).")
flags.DEFINE_list("generators", ["hash", "jax"], "Noise generators timed on the fly.")
flags.DEFINE_integer("naive_chunk", 16, "Members per chunk in the naive ES (memory bound).")
flags.DEFINE_bool("naive", True, "Also time the naive full-rank ES (slow).")
flags.DEFINE_integer("naive_population", 32, "Members in the naive ES run (its cost is "
                     "linear in N, so members/s does not depend on it).")
flags.DEFINE_bool("es_step", True, "Also time whole ES steps, noise kept in memory vs "
                  "drawn by eggroll_sample_noise inside the jit.")
flags.DEFINE_integer("lm_features", 64, "minGRU LM width (whole-step table).")
flags.DEFINE_integer("lm_population", 64, "minGRU LM population (whole-step table).")
flags.DEFINE_integer("lm_batch", 16, "minGRU LM sequences per step (whole-step table).")
flags.DEFINE_integer("lm_seq_len", 64, "minGRU LM bytes per sequence (whole-step table).")
FLAGS = flags.FLAGS

SIGMA = 0.01
GENERATOR_NAMES = {"hash": "counter hash, default", "jax": "jax.random.normal, threefry"}


class MLP(nn.Module):
    width: int
    depth: int

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth):
            x = jnp.tanh(nn.Dense(self.width)(x))
        return x


def naive_population_apply(model, params, key, x, *, population_size, sigma, chunk=16):
    """Naive full-rank ES forward (OpenES): member i runs W + σ·ε_i, ε_i dense Gaussian.

    Same call shape as ``gradkit.eggroll_population_apply`` with ``in_axes=0``; the
    noise of every leaf is drawn from ``fold_in(fold_in(key, i), leaf)`` and the
    perturbed parameters are materialised per member (`chunk` members at a time).
    """
    leaves, treedef = jax.tree.flatten(params)

    def one(i, xi):
        k = jax.random.fold_in(key, i)
        noisy = [w + sigma * jax.random.normal(jax.random.fold_in(k, j), w.shape, w.dtype)
                 for j, w in enumerate(leaves)]
        return model.apply({"params": jax.tree.unflatten(treedef, noisy)}, xi)

    members = jnp.arange(population_size)
    return jax.lax.map(lambda a: one(*a), (members, x), batch_size=chunk)


def naive_es_update(params, key, fitness, *, sigma):
    """The matching naive ES estimate −(1/(Nσ)) Σ f_i ε_i (regenerating every ε_i)."""
    leaves, treedef = jax.tree.flatten(params)
    n = fitness.shape[0]

    def add(acc, i):
        k = jax.random.fold_in(key, i)
        return [a - fitness[i] * jax.random.normal(jax.random.fold_in(k, j), w.shape) / (
            n * sigma) for j, (a, w) in enumerate(zip(acc, leaves, strict=True))], None

    acc, _ = jax.lax.scan(add, [jnp.zeros_like(w) for w in leaves], jnp.arange(n))
    return jax.tree.unflatten(treedef, acc)


def _time(fn, args, calls):
    """(wall seconds, process CPU seconds of all threads) per call, over `calls` calls
    dispatched back to back after a warm call.

    The warm, untimed call first: the previous method (above all one with large noise
    arrays, as at rank 16) leaves caches and the allocator cold, which would otherwise be
    charged to whichever method runs next.
    """
    jax.block_until_ready(fn(*args))
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / calls, (time.process_time() - cpu) / calls


def _eggroll_key(rank, generator):
    config = gradkit.EggrollConfig(rank=rank, generator=generator)
    return gradkit.EggrollKey(jax.random.key(2), jnp.float32(SIGMA), config)


def _es_step(population_fitness, n, rank, stored):
    """A jitted ES step; `stored=False` passes ``eggroll_sample_noise`` to the forward."""
    opt = optax.chain(gradkit.scale_by_eggroll(SIGMA, rank=rank), optax.adam(1e-3))

    def step(params, state, *batch):
        key = gradkit.eggroll_current_key(state)
        noise = None if stored else gradkit.eggroll_sample_noise(params, key, n)
        fitness = population_fitness(params, key, noise, *batch)
        updates, state = opt.update(params, state, params, fitness=fitness)
        return optax.apply_updates(params, updates), state

    return jax.jit(step), opt


def es_step_table():
    """Whole ES steps: the forward's noise kept in memory vs drawn inside the jit."""
    n, b, width = FLAGS.population, FLAGS.samples, FLAGS.width
    mlp = MLP(width, FLAGS.depth)
    x = jax.random.normal(jax.random.key(0), (n, b, width))
    mlp_params = mlp.init(jax.random.key(1), x[0])["params"]

    def mlp_fitness(p, k, noise, xx):
        out = gradkit.eggroll_population_apply(mlp, p, k, xx, population_size=n, in_axes=0,
                                               noise=noise)
        return -jnp.mean(out ** 2, axis=(1, 2))

    lm = MinGRULM(256, FLAGS.lm_features)
    ln, t = FLAGS.lm_population, FLAGS.lm_seq_len
    tokens = jax.random.randint(jax.random.key(2), (FLAGS.lm_batch, t + 1), 0, 256)
    lm_params = lm.init(jax.random.key(3), tokens[:1, :-1])["params"]

    def lm_fitness(p, k, noise, inputs, targets):
        logits = gradkit.eggroll_population_apply(lm, p, k, inputs, population_size=ln,
                                                  noise=noise)
        return -jax.vmap(lambda lg: jnp.mean(
            optax.softmax_cross_entropy_with_integer_labels(lg, targets)))(logits)

    tasks = {f"MLP {width}×{FLAGS.depth}, N={n}, r=1": (mlp_fitness, n, mlp_params, (x,)),
             f"minGRU LM d={FLAGS.lm_features}, N={ln}, {FLAGS.lm_batch}×{t} bytes, r=1": (
                 lm_fitness, ln, lm_params, (tokens[:, :-1], tokens[:, 1:]))}
    methods = {}
    for task, (fitness, pop, params, batch) in tasks.items():
        for stored in (True, False):
            fn, opt = _es_step(fitness, pop, 1, stored)
            methods[(task, stored)] = (fn, (params, opt.init(params), *batch))
    for fn, args in methods.values():
        jax.block_until_ready(fn(*args))
    times = {name: [] for name in methods}
    for _ in range(FLAGS.repeats):
        for name, (fn, args) in methods.items():
            times[name].append(_time(fn, args, FLAGS.calls))
    print("\n| whole ES step | noise | ms/step | CPU ms/step | speed-up of stored noise "
          "(wall, CPU) |")
    print("|---|---|---:|---:|---:|")
    for task in tasks:
        med = {stored: [statistics.median(t[i] for t in times[(task, stored)])
                        for i in (0, 1)] for stored in (True, False)}
        for stored, label in ((True, "kept in memory (default)"),
                              (False, "eggroll_sample_noise inside the jit")):
            wall, cpu = med[stored]
            gain = (f"{med[False][0] / wall:.2f}, {med[False][1] / cpu:.2f}" if stored
                    else "1")
            print(f"| {task} | {label} | {wall * 1e3:.2f} | {cpu * 1e3:.2f} | {gain} |")


def main(argv):
    del argv
    n, b, width = FLAGS.population, FLAGS.samples, FLAGS.width
    if FLAGS.naive and not 1 <= FLAGS.naive_population <= n:
        raise app.UsageError(f"--naive_population must be in [1, --population={n}] (its "
                             f"members reuse the first inputs), got {FLAGS.naive_population}.")
    model = MLP(width, FLAGS.depth)
    x = jax.random.normal(jax.random.key(0), (n, b, width))
    params = model.init(jax.random.key(1), x[0])["params"]

    methods: dict = {"plain batched inference": (
        jax.jit(lambda p, xx: model.apply({"params": p}, xx.reshape(n * b, width))),
        (params, x))}

    def pre(p, k, xx, nz):
        return gradkit.eggroll_population_apply(model, p, k, xx, population_size=n,
                                                in_axes=0, noise=nz)

    def fly(p, k, xx):
        return gradkit.eggroll_population_apply(model, p, k, xx, population_size=n,
                                                in_axes=0)

    for r in (int(v) for v in FLAGS.ranks):
        key = _eggroll_key(r, "hash")
        noise = gradkit.eggroll_sample_noise(params, key, n)
        methods[f"EGGROLL r={r}, pre-generated noise"] = (jax.jit(pre), (params, key, x, noise))
        for generator in FLAGS.generators:
            methods[f"EGGROLL r={r}, on the fly ({GENERATOR_NAMES[generator]})"] = (
                jax.jit(fly), (params, _eggroll_key(r, generator), x))
    members = {name: n for name in methods}
    for fn, args in methods.values():  # compile everything first
        jax.block_until_ready(fn(*args))
    times = {name: [] for name in methods}
    for _ in range(FLAGS.repeats):  # interleaved: load changes hit every method alike
        for name, (fn, args) in methods.items():
            times[name].append(_time(fn, args, FLAGS.calls))
    if FLAGS.naive:
        # Timed after the others, one call per repeat: interleaved, its full matrix per
        # member (allocated and freed each call) slowed the next method by up to 20%.
        nn_ = FLAGS.naive_population
        naive_fn = jax.jit(lambda p, k, xx: naive_population_apply(
            model, p, k, xx, population_size=nn_, sigma=SIGMA, chunk=FLAGS.naive_chunk))
        naive_args = (params, jax.random.key(3), x[:nn_])
        times["naive full-rank ES"] = [_time(naive_fn, naive_args, 1)
                                       for _ in range(FLAGS.repeats)]
        members["naive full-rank ES"] = nn_

    def rates(which):
        return {name: members[name] * b / statistics.median(t[which] for t in ts)
                for name, ts in times.items()}

    wall, cpu = rates(0), rates(1)
    plain, plain_cpu = wall["plain batched inference"], cpu["plain batched inference"]
    naive = wall.get("naive full-rank ES")
    print(f"\nwidth {width}, depth {FLAGS.depth}, population {n}, samples/member {b}, "
          f"{jax.devices()[0].platform} ({jax.device_count()} device), interleaved, median "
          f"of {FLAGS.repeats} × {FLAGS.calls} calls\n")
    print("| method | members×samples/s | ratio to plain inference | × naive ES | "
          "ratio, process CPU time |")
    print("|---|---:|---:|---:|---:|")
    for name, rate in wall.items():
        vs_naive = f"{rate / naive:,.0f}" if naive else "–"
        print(f"| {name} | {rate:,.0f} | {rate / plain:.3f} | {vs_naive} | "
              f"{cpu[name] / plain_cpu:.3f} |")
    if FLAGS.es_step:
        es_step_table()


if __name__ == "__main__":
    app.run(main)
