# SPDX-License-Identifier: Apache-2.0
"""Small shared helpers for gradkit's tests: tiny pytrees, step loops, test functions."""

from __future__ import annotations

import functools
import json
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

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
    grads: Callable[[Any, jax.Array], Any],
    num_steps: int,
    state: Any = None,
    **extra_args: Any,
) -> tuple[Any, Any]:
    """Runs `num_steps` updates as one jitted `lax.scan`; `grads(params, step)` gives each
    gradient (`step` is a traced int32 scalar); `extra_args` reach every update."""
    state = opt.init(params) if state is None else state

    def body(carry, step):
        params, state = carry
        updates, state = opt.update(grads(params, step), state, params, **extra_args)
        return (optax.apply_updates(params, updates), state), None

    (params, state), _ = jax.jit(lambda carry: jax.lax.scan(
        body, carry, jnp.arange(num_steps, dtype=jnp.int32)))((params, state))
    return params, state


def run_donating_steps(opt: optax.GradientTransformation, params: Any, num_steps: int = 2,
                       ) -> Any:
    """`num_steps` jitted steps on a fixed gradient (cos of each entry's index) that donate
    params and state, as a train step does: fails if a state leaf shares a buffer with
    another one or with params. Returns the final params."""
    grads = jax.tree.map(
        lambda x: jnp.cos(jnp.arange(x.size, dtype=jnp.float32)).reshape(x.shape), params)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, state):
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    state = opt.init(params)
    for _ in range(num_steps):
        params, state = step(params, state)
    return params


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
    """Environment for an example, benchmark or notebook kernel: gradkit and `examples`
    importable from the checkout, CPU only, `devices` virtual devices (one compiles
    fastest), the test session's XLA compile flags (``tests/xla_flags.py``), plus `extra`
    variables. The session's persistent compilation cache
    (``JAX_COMPILATION_CACHE_DIR``, set by tests/conftest.py) is inherited."""
    if CURRENT_TEST_IS_SLOW is False:
        raise AssertionError(
            "an end-to-end run (a new process or kernel) from a test not marked slow: add "
            "@pytest.mark.slow to the test, or `pytestmark = pytest.mark.slow` to its module")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["JAX_PLATFORMS"] = "cpu"
    env["XLA_FLAGS"] = " ".join(filter(None, [
        f"--xla_force_host_platform_device_count={devices}", xla_flags.compile_flags()]))
    env["MPLBACKEND"] = "Agg"
    env.update(extra)
    return env


def _example_module(task: str) -> str:
    # "lm" -> examples.lm.main; a path inside examples/ ("lm/main.py") -> examples.lm.main.
    if task.endswith(".py"):
        return "examples." + task[: -len(".py")].replace("/", ".")
    return f"examples.{task}.main"


def run_example(task: str, *flags: str, devices: int = 1, cwd: Any = ROOT,
                timeout: int = 300, **env: str) -> str:
    """Runs ``python -m examples.<task>.main <flags>`` in a new process (`env`: see
    :func:`subprocess_env`); asserts it succeeded and returns its stdout."""
    result = subprocess.run([sys.executable, "-m", _example_module(task), *flags], cwd=cwd,
                            env=subprocess_env(devices, **env), capture_output=True,
                            text=True, timeout=timeout, check=False)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def benchmark_process(module: str, *flags: str) -> subprocess.CompletedProcess:
    """Runs ``python -m benchmarks.<module> <flags>`` in a new process; returns the
    completed process (its exit status is not checked)."""
    return subprocess.run([sys.executable, "-m", f"benchmarks.{module}", *flags], cwd=ROOT,
                          env=subprocess_env(), capture_output=True, text=True, timeout=300,
                          check=False)


def run_benchmark(module: str, *flags: str) -> str:
    """Runs ``python -m benchmarks.<module> <flags>`` (see :func:`benchmark_process`);
    asserts it succeeded and returns its stdout."""
    result = benchmark_process(module, *flags)
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def _read_notebook(name: str):
    # The py:percent source (the one that is edited and linted), else the .ipynb.
    stem = name.removesuffix(".ipynb").removesuffix(".py")
    source = ROOT / "notebooks" / f"{stem}.py"
    if source.exists():
        import jupytext

        return jupytext.read(source)
    import nbformat

    return nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)


def inject_parameters(notebook, params: dict[str, Any]) -> bool:
    """Inserts a cell assigning `params` right after the cell tagged ``parameters`` (as
    papermill does, so the new values override that cell's defaults). Returns False, and
    leaves `notebook` unchanged, if no cell has that tag."""
    import nbformat

    for index, cell in enumerate(notebook.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "\n".join(f"{name} = {value!r}" for name, value in params.items())
            injected = nbformat.v4.new_code_cell(source)
            injected.metadata["tags"] = ["injected-parameters"]
            notebook.cells.insert(index + 1, injected)
            return True
    return False


def run_notebook(name: str, *, cwd: Any = ROOT, timeout: int = 300,
                 env: dict[str, str] | None = None, **params: Any) -> str:
    """Executes `notebooks/<name>` in a new kernel at the test size and returns its text
    output: a cell after the one tagged ``parameters`` sets ``TINY = True`` and `params`.
    `env`: extra environment variables (see :func:`subprocess_env`)."""
    import nbclient

    notebook = _read_notebook(name)
    assert inject_parameters(notebook, {"TINY": True, **params}), (
        f"{name} has no cell tagged `parameters`")
    client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": str(cwd)}})
    client.execute(env=subprocess_env(**(env or {})))
    return "".join(output.get("text", "") for cell in notebook.cells
                   if cell.cell_type == "code" for output in cell.get("outputs", []))


def read_jsonl(path: pathlib.Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]
