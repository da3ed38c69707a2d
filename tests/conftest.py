"""Test configuration: 8 virtual CPU devices, set before JAX is first imported."""

import os

os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax
from absl import flags

# absl's test utilities (e.g. chex.TestCase.create_tempdir) read flags; pytest never
# parses them, so mark them parsed with their defaults.
flags.FLAGS.mark_as_parsed()

assert jax.device_count() == 8, (
    "tests/conftest.py must run before anything imports JAX "
    f"(found {jax.device_count()} devices)"
)
