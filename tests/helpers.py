"""Small shared helpers for gradkit's tests: tiny pytrees, step loops, test functions."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

from tests import warm_python
from tests import xla_flags

ROOT = pathlib.Path(__file__).resolve().parents[1]


def tiny_params(dtype=jnp.float32, seed: int = 0) -> dict[str, Any]:
    """A small nested pytree with a matrix, a vector and a nested 3-D leaf."""
    k1, k2, k3 = jax.random.split(jax.random.key(seed), 3)
    return {
        "dense": {
            "kernel": jax.random.normal(k1, (4, 3), dtype),
            "bias": jax.random.normal(k2, (3,), dtype),
        },
        "conv": jax.random.normal(k3, (2, 2, 3), dtype),
    }


def random_like(tree: Any, seed: int, scale: float = 1.0) -> Any:
    """Standard-normal leaves with the structure, shapes and dtypes of `tree`."""
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    new = [
        (scale * jax.random.normal(k, x.shape, jnp.float32)).astype(x.dtype)
        for k, x in zip(keys, leaves, strict=True)
    ]
    return jax.tree.unflatten(treedef, new)


def apply_steps(
    opt: optax.GradientTransformation,
    params: Any,
    grads: Callable[[Any, int], Any],
    num_steps: int,
    state: Any = None,
    **extra_args: Any,
) -> tuple[Any, Any]:
    """Runs `num_steps` eager updates; `grads(params, step)` gives each gradient."""
    state = opt.init(params) if state is None else state
    for step in range(num_steps):
        updates, state = opt.update(grads(params, step), state, params, **extra_args)
        params = optax.apply_updates(params, updates)
    return params, state


def parabola(params: Any) -> jax.Array:
    """Σ (x − 1)² over all leaves; minimum 0 at x = 1."""
    return sum(jnp.sum((x.astype(jnp.float32) - 1.0) ** 2) for x in jax.tree.leaves(params))


def rosenbrock(params: Any) -> jax.Array:
    """2-D Rosenbrock on params {'x': scalar, 'y': scalar}; minimum 0 at (1, 1)."""
    x, y = params["x"].astype(jnp.float32), params["y"].astype(jnp.float32)
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


# Set by tests/conftest.py while a test runs: whether it is marked `slow` (None outside one).
CURRENT_TEST_IS_SLOW: bool | None = None


def subprocess_env(devices: int = 1, **extra: str) -> dict[str, str]:
    """Environment for an example, benchmark or notebook kernel: gradkit importable from the
    checkout, CPU only, `devices` virtual devices (one compiles fastest), the test session's
    XLA compile flags (``tests/xla_flags.py``), plus `extra` variables. The session's
    persistent compilation cache (``JAX_COMPILATION_CACHE_DIR``, set by tests/conftest.py)
    is inherited."""
    if CURRENT_TEST_IS_SLOW is False:
        raise AssertionError(
            "an end-to-end run from a test not marked slow: tests/conftest.py marks the tests "
            "that call tests.helpers' run_example/run_notebook/subprocess_env (directly, "
            "through a module-level function or a fixture); add @pytest.mark.slow otherwise")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = " ".join(filter(None, [
        f"--xla_force_host_platform_device_count={devices}", xla_flags.compile_flags()]))
    env["MPLBACKEND"] = "Agg"
    env.update(extra)
    return env


def run_example(name: str, *flags: str, devices: int = 1, cwd: Any = ROOT,
                timeout: int = 300, **env: str) -> str:
    """Runs `examples/<name>` with `flags` as a new process (started warm, see
    ``tests/warm_python.py``; `env`: see :func:`subprocess_env`); returns its stdout."""
    result = warm_python.run([ROOT / "examples" / name, *flags], cwd=cwd, timeout=timeout,
                             env=subprocess_env(devices, **env))
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def benchmark_process(module: str, *flags: str) -> subprocess.CompletedProcess:
    """Runs `python -m benchmarks.<module>` as a new process (started warm, see
    ``tests/warm_python.py``) with the test session's XLA compile flags."""
    return warm_python.run(["-m", f"benchmarks.{module}", *flags], cwd=ROOT, timeout=300,
                           env=subprocess_env())


def run_benchmark(module: str, *flags: str) -> str:
    """Runs `python -m benchmarks.<module>` (see :func:`benchmark_process`); asserts it
    succeeded and returns its stdout."""
    result = benchmark_process(module, *flags)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def run_notebook(name: str, cwd: Any = ROOT, timeout: int = 300, **env: str) -> str:
    """Executes `notebooks/<name>` at tiny size (GRADKIT_TINY=1) in a new kernel (started
    warm, see ``tests/warm_kernel.py``; `env`: see :func:`subprocess_env`); returns its text
    output."""
    import nbclient
    import nbformat

    from tests.warm_kernel import WarmKernelManager

    notebook = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                     kernel_manager_class=WarmKernelManager,
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute(env=subprocess_env(**{"GRADKIT_TINY": "1", **env}))
    return "".join(output.get("text", "") for cell in notebook.cells
                   if cell.cell_type == "code" for output in cell.get("outputs", []))


def read_jsonl(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
