"""Run an example or benchmark as a fresh process that starts with JAX already imported.

A new ``python`` spends ~2.5 s of CPU importing JAX, Flax, optax, gradkit, matplotlib and
orbax before an example's first line; the end-to-end tests start ~30 of them. Here each
run is a child forked from a server process (``multiprocessing``'s forkserver, one per
pytest process) that imported them once (``tests/warm_python_preload.py``). The child is a
separate process as before: its own environment, working folder, ``sys.argv``, stdout and
stderr, exit status and XLA backend, which the server never started, so the child's
``XLA_FLAGS`` (device count, compile flags) take effect as in a fresh interpreter.

JAX reads its ``JAX_*`` variables when it is imported: a run whose ``JAX_*`` environment
differs from the server's starts a plain subprocess instead. The server keeps the gradkit
it imported at its start: source edits made while a test session runs reach its later
runs only in modules the server had not imported.
"""

from __future__ import annotations

import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Sequence

_PRELOAD = "tests.warm_python_preload"
_CONTEXT = None
_SERVER_JAX_VARIABLES: dict[str, str] = {}


def _jax_variables(env) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith("JAX_")}


def _context():
    """The forkserver context; the server starts at the first run, with this process's
    environment at that moment (so that is what JAX read there)."""
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = multiprocessing.get_context("forkserver")
        _CONTEXT.set_forkserver_preload([_PRELOAD])
        _SERVER_JAX_VARIABLES.update(_jax_variables(os.environ))
    return _CONTEXT


def _child_main(argv: Sequence[str], env: dict[str, str], cwd: str, stdout: str,
                stderr: str) -> None:
    """In the forked child: become `python *argv` run in `cwd` with `env`."""
    for fd, path in ((1, stdout), (2, stderr)):
        target = os.open(path, os.O_WRONLY)
        os.dup2(target, fd)
        os.close(target)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    extra_paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    code = 0
    try:
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]  # runpy puts the module's file in argv[0]
            sys.path[:0] = [cwd, *extra_paths]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            sys.path[:0] = [os.path.dirname(os.path.abspath(argv[0])), *extra_paths]
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            code = exit_.code or 0
        else:
            print(exit_.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def can_start_warm(env: dict[str, str]) -> bool:
    """Whether a run with environment `env` can be forked from the server: its ``JAX_*``
    variables are those the server's JAX read (they are fixed at import)."""
    _context()
    return _jax_variables(env) == _SERVER_JAX_VARIABLES


def start(argv: Sequence[str], *, env: dict[str, str], cwd, stdout: str = os.devnull,
          stderr: str = os.devnull) -> multiprocessing.Process:
    """Forks `python *argv` (a script and its arguments, or ``["-m", module, ...]``) from
    the server, with `env` (see :func:`can_start_warm`), in `cwd`, its output written to the
    files `stdout` and `stderr`; returns the running process."""
    if not can_start_warm(env):
        raise ValueError("the run's JAX_* variables differ from the server's")
    process = _context().Process(target=_child_main,
                                 args=([str(a) for a in argv], env, str(cwd), stdout, stderr))
    process.start()
    return process


def run(argv: Sequence[str], *, env: dict[str, str], cwd, timeout: float
        ) -> subprocess.CompletedProcess:
    """Like ``subprocess.run([sys.executable, *argv], capture_output=True, text=True,
    env=env, cwd=cwd, timeout=timeout)``, started warm where :func:`can_start_warm`."""
    argv = [str(a) for a in argv]
    if not can_start_warm(env):
        return subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                              env=env, cwd=cwd, timeout=timeout, check=False)
    with tempfile.TemporaryDirectory() as tmp:
        out, err = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
        for path in (out, err):
            open(path, "w").close()
        process = start(argv, env=env, cwd=cwd, stdout=out, stderr=err)
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(argv, timeout)
        with open(out) as stdout, open(err) as stderr:
            return subprocess.CompletedProcess(argv, process.exitcode, stdout.read(),
                                               stderr.read())
