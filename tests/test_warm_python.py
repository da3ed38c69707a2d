"""tests/warm_python.py: a warm run behaves like ``subprocess.run([python, ...])``."""

from __future__ import annotations

import os

import pytest

from tests import warm_python

SCRIPT = r"""
import os, sys
import jax
print("argv", sys.argv[1:], "cwd", os.getcwd(), "var", os.environ.get("WARM_TEST_VAR"))
print("devices", jax.device_count(), "gradkit preloaded", "gradkit" in sys.modules)
print("to stderr", file=sys.stderr)
if sys.argv[1] == "raise":
    raise RuntimeError("boom")
sys.exit(int(sys.argv[1]))
"""


def _env(**extra):
    env = dict(os.environ, JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=3")
    env.update(extra)
    return env


@pytest.mark.slow
def test_run_gives_argv_cwd_env_output_and_exit_status(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    done = warm_python.run([script, "3"], env=_env(WARM_TEST_VAR="x"), cwd=tmp_path, timeout=120)
    assert done.returncode == 3
    assert f"argv ['3'] cwd {tmp_path} var x" in done.stdout
    # Forked from the server: gradkit already imported; its own XLA flags (3 devices).
    assert "devices 3 gradkit preloaded True" in done.stdout
    assert done.stderr == "to stderr\n"

    failed = warm_python.run([script, "raise"], env=_env(), cwd=tmp_path, timeout=120)
    assert failed.returncode == 1
    assert "RuntimeError: boom" in failed.stderr and "Traceback" in failed.stderr


@pytest.mark.slow
def test_other_jax_variables_get_a_plain_interpreter(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    done = warm_python.run([script, "0"], env=_env(JAX_ENABLE_X64="1"), cwd=tmp_path,
                           timeout=120)
    assert done.returncode == 0
    assert "gradkit preloaded False" in done.stdout  # a fresh `python`
    assert not warm_python.can_start_warm(_env(JAX_ENABLE_X64="1"))
