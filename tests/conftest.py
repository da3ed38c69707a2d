# SPDX-License-Identifier: Apache-2.0
"""Test configuration, applied before JAX is first imported.

* 8 virtual CPU devices, so multi-device paths run on any machine, and XLA:CPU's cheaper
  code generation (public XLA flags, ``tests/xla_flags.py``: compiling is most of the
  suite's time).
* One persistent JAX compilation cache (public JAX configuration) for the whole session:
  the pytest processes (xdist workers included) and every example, benchmark or notebook
  kernel they start (the variables below are inherited, see
  ``tests.helpers.subprocess_env``) read and write the same folder, so a computation
  compiled once is loaded from disk afterwards. It lives in
  ``.pytest_cache/jax_compilation_cache`` (kept between runs, emptied when it grows past
  ``_CACHE_LIMIT_BYTES``); set ``JAX_COMPILATION_CACHE_DIR`` to use another folder, or to
  an empty string to turn the cache off.
* End-to-end tests (examples, benchmarks, notebooks, several processes) are marked
  ``@pytest.mark.slow`` in their modules: ``pytest -m "not slow"`` is the fast subset.
  ``tests.helpers`` refuses to start such a run from a test not marked slow.
"""

import os
import pathlib
import shutil

_ROOT = pathlib.Path(__file__).resolve().parents[1]
_CACHE_LIMIT_BYTES = 2 << 30

from tests import xla_flags  # noqa: E402  (no JAX import)

# Appended once: xdist workers inherit the controller's environment, and doubled flags
# would give their compilations other persistent-cache keys than a run without xdist.
_xla_flags = os.environ.get("XLA_FLAGS", "").split()
os.environ["XLA_FLAGS"] = " ".join(_xla_flags + [
    flag for flag in ["--xla_force_host_platform_device_count=8",
                      *xla_flags.compile_flags().split()] if flag not in _xla_flags])
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR",
                      str(_ROOT / ".pytest_cache" / "jax_compilation_cache"))
# Tiny test computations compile in milliseconds: cache them all (JAX's default skips
# compilations under 1 s).
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")

import jax  # noqa: E402
import pytest  # noqa: E402
from absl import flags  # noqa: E402

from tests import helpers  # noqa: E402

# absl's test utilities (e.g. chex.TestCase.create_tempdir) read flags; pytest never
# parses them, so mark them parsed with their defaults.
flags.FLAGS.mark_as_parsed()

assert jax.device_count() == 8, (
    "tests/conftest.py must run before anything imports JAX "
    f"(found {jax.device_count()} devices)"
)


def pytest_configure(config):
    # Once per run, in the controlling process (not in each xdist worker).
    cache = os.environ["JAX_COMPILATION_CACHE_DIR"]
    if cache and not hasattr(config, "workerinput"):
        path = pathlib.Path(cache)
        if path.is_dir() and sum(
                f.stat().st_size for f in path.iterdir() if f.is_file()) > _CACHE_LIMIT_BYTES:
            shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True, exist_ok=True)


@pytest.fixture(autouse=True)
def _slow_marker_guard(request):
    # tests.helpers reads this to refuse an end-to-end run from a test not marked slow.
    helpers.CURRENT_TEST_IS_SLOW = request.node.get_closest_marker("slow") is not None
    yield
    helpers.CURRENT_TEST_IS_SLOW = None
