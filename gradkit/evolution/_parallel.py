# SPDX-License-Identifier: Apache-2.0
"""Population-parallel evaluation for evolution strategies, on JAX's own runtime.

"Evolution Strategies at the Hyperscale" (EGGROLL, 2025, arXiv 2511.16652), sharding:
parameters and the step key are replicated and the population indices are split over
devices (``jax.pmap``, or ``jax.shard_map`` over a 1-D ``jax.sharding.Mesh`` axis). Every
device evaluates its members, regenerating their noise from the shared key, and only the
fitness values are gathered, so every device can then compute the same ES update by
regenerating the noise of all members.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.sharding import Mesh
from jax.sharding import PartitionSpec


def _members_per_device(population_size: int, num_devices: int) -> int:
    if population_size % num_devices:
        raise ValueError(
            f"`population_size` ({population_size}) must be divisible by the number of "
            f"devices ({num_devices}).")
    return population_size // num_devices


def population_fitness_pmap(member_fitness, params, key, population_size: int, *,
                            axis_name: str = "population", devices=None):
    """Fitness of all members with the population split over devices by ``jax.pmap``.

    Args:
      member_fitness: ``(params, key, member) -> scalar`` fitness of one member, e.g.
        built on ``gradkit.eggroll_perturb`` or ``gradkit.eggroll_apply_member``.
      params: mean parameters (replicated to every device; not sharded).
      key: the step key (``gradkit.eggroll_current_key``).
      population_size: N, divisible by the number of devices.
      axis_name: the pmap axis name.
      devices: devices to use (default all local devices).

    Returns:
      float[N] fitness in member order, identical to evaluating every member on one
      device. Only the per-device fitness vectors cross devices (``all_gather``).
    """
    devices = jax.local_devices() if devices is None else devices
    per = _members_per_device(population_size, len(devices))
    members = jnp.arange(population_size).reshape(len(devices), per)

    def local(members, params, key):
        fit = jax.vmap(lambda i: member_fitness(params, key, i))(members)
        return jax.lax.all_gather(fit, axis_name, tiled=True)

    out = jax.pmap(local, axis_name=axis_name, in_axes=(0, None, None),
                    devices=devices)(members, params, key)
    return out[0]


def population_fitness_sharded(member_fitness, params, key, population_size: int,
                               mesh: Mesh, *, axis_name: str = "population"):
    """As :func:`population_fitness_pmap`, over a 1-D ``jax.sharding.Mesh`` axis.

    Member indices are sharded over ``mesh.shape[axis_name]`` devices with
    ``jax.shard_map``; params and key are replicated; the fitness vectors are
    all-gathered so the result is replicated. Call it inside or outside ``jax.jit``.
    """
    _members_per_device(population_size, mesh.shape[axis_name])

    def local(members, params, key):
        fit = jax.vmap(lambda i: member_fitness(params, key, i))(members)
        return jax.lax.all_gather(fit, axis_name, tiled=True)

    replicated = PartitionSpec()
    fn = jax.shard_map(local, mesh=mesh,
                       in_specs=(PartitionSpec(axis_name), replicated, replicated),
                       out_specs=replicated, check_vma=False)
    return fn(jnp.arange(population_size), params, key)


def population_mesh(num_devices: int | None = None, axis_name: str = "population") -> Mesh:
    """A 1-D mesh over the first `num_devices` devices (default all) for the population."""
    devices = jax.devices()
    devices = devices if num_devices is None else devices[:num_devices]
    return Mesh(devices, (axis_name,))
