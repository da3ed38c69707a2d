"""What the forkserver of ``tests/warm_python.py`` imports once, before any run is forked
from it. Importing does not start XLA (no device, no array is created here), so each
forked run still chooses its own ``XLA_FLAGS``."""

import os

# Read when matplotlib is imported; every example and benchmark test runs with Agg.
os.environ["MPLBACKEND"] = "Agg"

import absl.app  # noqa: F401
import chex  # noqa: F401
import flax.linen  # noqa: F401
import jax  # noqa: F401
import matplotlib.pyplot  # noqa: F401
import optax  # noqa: F401
import orbax.checkpoint  # noqa: F401
import tqdm  # noqa: F401

import gradkit  # noqa: F401

# Lowerings reuse MLIR contexts as in the pytest processes (tests/mlir_context.py).
from tests import mlir_context

mlir_context.reuse_per_thread()
