# SPDX-License-Identifier: Apache-2.0
r"""EGGROLL on a gymnax environment (CartPole-v1 by default) with an MLP policy.

The logic of ``python -m examples.eggroll_rl.main`` (configuration: ``configs/default.py``):
:func:`train_and_evaluate`. Backprop-free: every generation, N perturbed policies (low-rank
perturbations of every Dense kernel, dense noise on biases) play one episode each; their
returns are the fitness, ``gradkit.scale_by_eggroll`` turns them into the ES update and
Adam applies it. Antithetic pairs play the same episode (same reset key). The population
forward is ``gradkit.eggroll_population_apply``: one shared GEMM per layer plus rank-r
corrections, with the factors drawn once per generation.

Writes ``metrics.jsonl`` (one line per generation), ``final.json`` (mean return of the
final mean policy over ``eval_episodes`` episodes, wall time, seed) and
``learning_curve.png`` to the workdir. CartPole-v1 counts as solved at a mean return
≥ 475 over 100 episodes.
"""

from __future__ import annotations

import functools
import json
import os
import time

import gymnax
import jax
import jax.numpy as jnp
import optax
from ml_collections import ConfigDict as Config
from tqdm import tqdm

import gradkit
from examples import config_checks
from gradkit.models.policy import MLPPolicy


def make_env(name: str, max_steps: int):
    env, env_params = gymnax.make(name)
    if max_steps:
        env_params = env_params.replace(max_steps_in_episode=max_steps)
    space = env.action_space(env_params)
    continuous = not hasattr(space, "n")
    action_dim = int(space.shape[0]) if continuous else int(space.n)
    scale = float(jnp.max(space.high)) if continuous else 1.0
    return env, env_params, action_dim, continuous, scale


def episode_returns(env, env_params, act, keys, horizon):
    """Undiscounted return of one episode per key; `act(obs[B, ...]) -> actions[B]`."""
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(keys, env_params)

    def body(carry, step_keys):
        obs, state, alive, total = carry
        action = act(obs)
        obs, state, reward, terminated, truncated, _ = jax.vmap(
            env.step, in_axes=(0, 0, 0, None))(step_keys, state, action, env_params)
        total = total + reward * alive
        alive = alive * (1.0 - jnp.logical_or(terminated, truncated).astype(jnp.float32))
        return (obs, state, alive, total), None

    n = keys.shape[0]
    step_keys = jax.vmap(lambda k: jax.random.split(k, horizon))(keys).swapaxes(0, 1)
    init = (obs, state, jnp.ones((n,)), jnp.zeros((n,)))
    (_, _, _, total), _ = jax.lax.scan(body, init, step_keys)
    return total


def validate(config) -> None:
    """Raises ``ValueError`` naming the first invalid field of ``config``."""
    config_checks.check_positive_ints(config, "generations", "population", "rank", "eval_interval",
                                      "eval_episodes")
    config_checks.check_learning_rates(config, "learning_rate", "sigma")


def train_and_evaluate(config: Config, workdir: str) -> dict:
    """Trains; writes metrics.jsonl, final.json and learning_curve.png to ``workdir``;
    returns the final result (mean/min return of the mean policy, wall times)."""
    validate(config)
    progress = config.progress
    cfg = config
    os.makedirs(workdir, exist_ok=True)
    env, env_params, action_dim, continuous, scale = make_env(cfg.env, cfg.max_steps)
    horizon = int(env_params.max_steps_in_episode)
    model = MLPPolicy(action_dim, tuple(cfg.hidden), continuous, scale)
    key = jax.random.key(cfg.seed)
    init_key, run_key = jax.random.split(key)
    obs_dim = env.observation_space(env_params).shape
    params = model.init(init_key, jnp.zeros(obs_dim))["params"]
    n, sigma, rank = cfg.population, cfg.sigma, cfg.rank
    inner = (optax.adam(cfg.learning_rate) if cfg.optimizer == "adam"
             else optax.sgd(cfg.learning_rate))
    opt = optax.chain(
        gradkit.scale_by_eggroll(sigma, rank=rank, fitness_shaping=cfg.fitness_shaping,
                                 key=cfg.seed),
        inner)
    opt_state = opt.init(params)

    def member_actions(params, es_key, noise, obs):
        out = gradkit.eggroll_population_apply(
            model, params, es_key, obs, population_size=n, in_axes=0, noise=noise,
            method=MLPPolicy.act)
        return out

    @jax.jit
    def generation(params, opt_state, gen_key):
        es_key = gradkit.eggroll_current_key(opt_state)
        noise = gradkit.eggroll_sample_noise(params, es_key, n)
        pair_keys = jax.random.split(gen_key, n // 2)
        keys = jnp.repeat(pair_keys, 2, axis=0)  # antithetic pairs: same episode

        def act(obs):
            return member_actions(params, es_key, noise, obs[:, None])[:, 0]

        fitness = episode_returns(env, env_params, act, keys, horizon)
        updates, opt_state = opt.update(params, opt_state, params, fitness=fitness)
        return optax.apply_updates(params, updates), opt_state, fitness

    @functools.partial(jax.jit, static_argnums=2)
    def evaluate(params, eval_key, episodes):
        keys = jax.random.split(eval_key, episodes)

        def act(obs):
            return model.apply({"params": params}, obs, method=MLPPolicy.act)

        return episode_returns(env, env_params, act, keys, horizon)

    history = []
    start = time.time()
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as log:
        for gen in tqdm(range(cfg.generations), desc=f"EGGROLL {cfg.env}",
                       disable=not progress):
            run_key, gen_key, eval_key = jax.random.split(run_key, 3)
            params, opt_state, fitness = generation(params, opt_state, gen_key)
            row = {"generation": gen + 1, "env_steps_per_member": horizon,
                   "fitness_mean": float(jnp.mean(fitness)),
                   "fitness_max": float(jnp.max(fitness)),
                   "wall_s": time.time() - start}
            if (gen + 1) % cfg.eval_interval == 0 or gen + 1 == cfg.generations:
                row["eval_return"] = float(jnp.mean(evaluate(params, eval_key,
                                                             cfg.eval_episodes)))
            history.append(row)
            log.write(json.dumps(row) + "\n")
            log.flush()
    train_s = time.time() - start
    final = evaluate(params, jax.random.key(cfg.seed + 12345), cfg.eval_episodes)
    result = {"env": cfg.env, "seed": cfg.seed, "generations": cfg.generations,
              "population": n, "sigma": sigma, "rank": rank,
              "learning_rate": cfg.learning_rate, "optimizer": cfg.optimizer,
              "hidden": list(cfg.hidden),
              "final_mean_return": float(jnp.mean(final)),
              "final_min_return": float(jnp.min(final)),
              "eval_episodes": cfg.eval_episodes, "train_wall_s": train_s,
              "total_wall_s": time.time() - start}
    with open(os.path.join(workdir, "final.json"), "w") as f:
        json.dump(result, f, indent=2)
    _plot(history, result, os.path.join(workdir, "learning_curve.png"))
    return result


def _plot(history, result, path):
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone

    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    gens = [r["generation"] for r in history]
    ax.plot(gens, [r["fitness_mean"] for r in history], label="population mean return")
    ax.plot(gens, [r["fitness_max"] for r in history], alpha=0.4, label="population max")
    ev = [(r["generation"], r["eval_return"]) for r in history if "eval_return" in r]
    if ev:
        ax.plot(*zip(*ev, strict=True), "o-",
                label=f"mean policy ({result['eval_episodes']} episodes)")
    ax.set_xlabel("generation")
    ax.set_ylabel("return")
    ax.set_title(f"EGGROLL {result['env']} (N={result['population']}, r={result['rank']}): "
                 f"final {result['final_mean_return']:.1f}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
