# SPDX-License-Identifier: Apache-2.0
"""Data-parallel training steps on JAX's own runtime: ``jax.pmap`` and ``jax.jit`` over a Mesh.

The batch is split over devices and gradients are averaged, so every device applies the
same update. Used by the reference LM (:mod:`examples.lm.trainer`); nothing here is
specific to it. Multi-process (multi-host) runs need nothing more: call
``jax.distributed.initialize`` first, then :func:`make_data_mesh` spans the devices of all
processes and :func:`shard_batch` assembles the global batch from each process's rows.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import optax
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec

DATA_AXIS = "batch"
"""Default name of the data-parallel axis (the pmap axis and the mesh axis)."""

LossFn = Callable[[Any, Any], tuple[jax.Array, dict[str, jax.Array]]]
ExtraArgsFn = Callable[[Any, Any], dict[str, Any]]


def data_parallel_train_step(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    *,
    axis_name: str | None = None,
    extra_args_fn: ExtraArgsFn | None = None,
) -> Callable[[Any, Any, Any], tuple[Any, Any, dict[str, jax.Array]]]:
    """One training step ``(params, opt_state, batch) -> (params, opt_state, metrics)``.

    Computes ``(loss, aux), grads = value_and_grad(loss_fn, has_aux=True)(params, batch)``;
    when ``axis_name`` is given (inside ``jax.pmap``/``shard_map`` over that axis) the
    gradients, loss and aux metrics are ``lax.pmean``-ed over it first, so every device
    applies the same update. Then ``optimizer.update(grads, opt_state, params,
    **extra_args_fn(params, batch))``: use ``extra_args_fn`` to hand closures such as
    ``obj_fn`` (Hutchinson/Sophia-H) or ``logits_fn`` (Sophia-G) to the transform; under
    pmap they see the device-local batch, and a transform that averages its own
    statistics takes the same ``axis_name``. With ``optax.GradientTransformation``s that
    do not take extra args, the extra args are dropped (``optax.with_extra_args_support``).

    Args:
      loss_fn: ``loss_fn(params, batch) -> (loss, aux)``, ``aux`` a dict of scalars.
      optimizer: any optax transformation.
      axis_name: the mapped axis to average over (``None`` for one device or for
        ``jit`` over a mesh, where the reduction is implicit in the global view).
      extra_args_fn: ``extra_args_fn(params, batch) -> dict`` of keyword extra args.

    Returns:
      The step function (not jitted). ``metrics`` holds ``loss``, every ``aux`` entry and
      ``grad_norm`` (global ℓ2 norm of the averaged gradient) and ``grad_norm_l1`` (its
      ℓ1 norm, the weights of :func:`gradkit.refined_schedule` for Adam-type methods).
    """
    optimizer = optax.with_extra_args_support(optimizer)

    def step(params, opt_state, batch):
        (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, batch)
        metrics = {"loss": loss, **aux}
        if axis_name is not None:
            grads = jax.lax.pmean(grads, axis_name)
            metrics = jax.lax.pmean(metrics, axis_name)
        metrics["grad_norm"] = optax.tree.norm(grads)
        metrics["grad_norm_l1"] = optax.tree.norm(grads, ord=1)  # for refined_schedule("adam")
        extra = extra_args_fn(params, batch) if extra_args_fn is not None else {}
        updates, opt_state = optimizer.update(grads, opt_state, params, **extra)
        params = optax.apply_updates(params, updates)
        return params, opt_state, metrics

    return step


def pmap_train_step(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    *,
    axis_name: str = DATA_AXIS,
    extra_args_fn: ExtraArgsFn | None = None,
    devices: Sequence[jax.Device] | None = None,
    donate: bool = False,
):
    """:func:`data_parallel_train_step` under ``jax.pmap`` over ``axis_name``.

    Inputs and outputs carry a leading device axis: params and optimizer state
    replicated (:func:`replicate`), the batch split with :func:`split_for_pmap`. Build the
    optimizer with the same ``axis_name`` when its factory takes one (e.g. a transform
    that averages a Hessian estimate across devices).

    Example::

      step = pmap_train_step(loss_fn, opt)
      params, opt_state = replicate(params), replicate(opt.init(params))
      params, opt_state, metrics = step(params, opt_state, split_for_pmap(batch))
    """
    step = data_parallel_train_step(
        loss_fn, optimizer, axis_name=axis_name, extra_args_fn=extra_args_fn
    )
    return jax.pmap(
        step, axis_name=axis_name, devices=devices, donate_argnums=(0, 1) if donate else ()
    )


def make_data_mesh(devices: Sequence[jax.Device] | None = None, axis_name: str = DATA_AXIS) -> Mesh:
    """A 1-D ``Mesh`` over ``devices`` (default: all devices of all processes)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (axis_name,))


def mesh_train_step(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    mesh: Mesh,
    *,
    axis_name: str = DATA_AXIS,
    extra_args_fn: ExtraArgsFn | None = None,
    donate: bool = False,
):
    """:func:`data_parallel_train_step` under ``jax.jit`` over a ``Mesh``.

    Params and optimizer state are replicated (``NamedSharding(mesh, P())``), the batch
    is sharded along its leading axis over ``axis_name`` (:func:`shard_batch`). The code
    is written for the global batch: XLA inserts the gradient all-reduce, so the
    optimizer needs no ``axis_name`` here.
    """
    step = data_parallel_train_step(loss_fn, optimizer, axis_name=None, extra_args_fn=extra_args_fn)
    replicated = NamedSharding(mesh, PartitionSpec())
    sharded = NamedSharding(mesh, PartitionSpec(axis_name))
    return jax.jit(
        step,
        in_shardings=(replicated, replicated, sharded),
        out_shardings=(replicated, replicated, replicated),
        donate_argnums=(0, 1) if donate else (),
    )


def replicate(tree: Any, devices: Sequence[jax.Device] | None = None) -> Any:
    """Stacks one copy of every leaf per local device (for ``jax.pmap``)."""
    devices = jax.local_devices() if devices is None else list(devices)
    n = len(devices)
    # Since JAX 0.8 pmap is jit + shard_map: a stacked array sharded along its leading
    # axis over the devices is what it expects (jax.device_put_replicated is gone).
    sharding = NamedSharding(Mesh(np.asarray(devices), ("_replicas",)), PartitionSpec("_replicas"))

    def put(x):
        x = np.asarray(x)
        return jax.device_put(np.broadcast_to(x[None], (n, *x.shape)), sharding)

    return jax.tree.map(put, tree)


def unreplicate(tree: Any) -> Any:
    """The first device's copy of a replicated pytree."""
    return jax.tree.map(lambda x: x[0], tree)


def split_for_pmap(batch: Any, num_devices: int | None = None) -> Any:
    """Reshapes every leaf ``[B, ...] -> [num_devices, B // num_devices, ...]``."""
    n = jax.local_device_count() if num_devices is None else num_devices

    def split(x):
        if x.shape[0] % n:
            raise ValueError(f"batch size {x.shape[0]} is not divisible by {n} devices.")
        return x.reshape(n, x.shape[0] // n, *x.shape[1:])

    return jax.tree.map(split, batch)


def replicate_on_mesh(tree: Any, mesh: Mesh) -> Any:
    """Places ``tree`` replicated on every device of ``mesh``."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard_batch(batch: Any, mesh: Mesh, axis_name: str = DATA_AXIS) -> Any:
    """Global batch array sharded over ``axis_name`` from this process's local batch.

    Each process passes the rows it loaded (``[B_local, ...]``); the result is a global
    ``jax.Array`` of ``[B_local * process_count, ...]`` (``jax.make_array_from_process_
    local_data``). With one process this is ``device_put`` with the batch sharding.
    """
    sharding = NamedSharding(mesh, PartitionSpec(axis_name))
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch
    )
