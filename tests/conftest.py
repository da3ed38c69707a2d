"""Test configuration, applied before JAX is first imported.

* 8 virtual CPU devices (multi-device paths run on any machine), and XLA's cheaper CPU
  code generation (``tests/xla_flags.py``: compiling is most of the suite's time).
* One persistent JAX compilation cache for the whole session: the pytest processes (xdist
  workers included) and every example, benchmark or notebook kernel they start (the
  variables below are inherited, see ``tests.helpers.subprocess_env``) read and write the
  same folder, so an identical computation compiled by several tests or processes is
  compiled once. It lives in ``.pytest_cache/jax_compilation_cache`` (kept between runs,
  emptied when it grows past ``_CACHE_LIMIT_BYTES``); set ``JAX_COMPILATION_CACHE_DIR``
  to use another folder, or to an empty string to turn the cache off.
* Each test process reuses an MLIR context for many of JAX's lowerings instead of
  building one per program (``tests/mlir_context.py``): the programs are unchanged.
* Every end-to-end test (one that runs an example, a benchmark or a notebook through
  ``tests.helpers``) is marked ``slow``, found from the code it calls, so that
  ``pytest -m "not slow"`` is the fast development subset.
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
from tests import mlir_context  # noqa: E402

mlir_context.reuse_per_thread()

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


# ---------------------------------------------------------------------------------------
# The `slow` marker: a test is end-to-end when its code, the module-level functions or
# methods of its class that it calls (transitively) or its fixtures refer to one of these
# helpers (by name, so a helper imported inside a test function counts too).
END_TO_END_HELPERS = frozenset({"run_example", "run_notebook", "subprocess_env",
                                "run_benchmark", "benchmark_process"})


def _is_end_to_end(func, seen, cls=None) -> bool:
    func = getattr(func, "__wrapped__", func)
    code = getattr(func, "__code__", None)
    if code is None or code in seen:
        return False
    seen.add(code)
    namespace = getattr(func, "__globals__", {})
    stack = [code]
    while stack:
        code = stack.pop()
        if END_TO_END_HELPERS.intersection(code.co_names):
            return True
        stack.extend(c for c in code.co_consts if hasattr(c, "co_names"))  # nested defs
        for name in code.co_names:
            value = namespace.get(name, getattr(cls, name, None))  # `self.name()` too
            module = getattr(value, "__module__", None) if callable(value) else None
            if (module or "").startswith("tests.") and _is_end_to_end(value, seen, cls):
                return True
    return False


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("slow") or not isinstance(item, pytest.Function):
            continue
        seen = set()
        funcs = [item.obj]
        fixture_defs = getattr(item, "_fixtureinfo", None)
        if fixture_defs is not None:
            for name in item.fixturenames:
                funcs += [d.func for d in fixture_defs.name2fixturedefs.get(name, ())]
        if any(_is_end_to_end(f, seen, item.cls) for f in funcs):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # tests.helpers refuses to start an end-to-end run from a test not marked slow.
    helpers.CURRENT_TEST_IS_SLOW = item.get_closest_marker("slow") is not None
    try:
        return (yield)
    finally:
        helpers.CURRENT_TEST_IS_SLOW = None
