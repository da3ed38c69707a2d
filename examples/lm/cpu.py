# SPDX-License-Identifier: Apache-2.0
"""``--one_cpu_thread``: machine-independent results on CPU (docs/lm.md, "Reproducibility").

The flag is an execution setting, not part of a run's configuration; the mains of the LM
examples import this module to define it, and call :func:`use_one_cpu_thread` before JAX is
imported when it is set.
"""

import os
import sys

from absl import flags

ONE_CPU_THREAD = flags.DEFINE_bool(
    "one_cpu_thread", False, "Compute on one CPU thread, so that the results do not depend "
    "on the machine's core count (slower; docs/lm.md).")

SINGLE_THREAD_FLAG = "--xla_cpu_multi_thread_eigen=false"


def use_one_cpu_thread() -> None:
    """Makes XLA compute on one CPU thread: call it before JAX is imported.

    XLA's CPU backend splits matrix products and reductions over as many threads as the
    process may use, so the float summation order, hence the trained model, depends on the
    machine's core count (docs/lm.md, "Reproducibility"). Restricting the process to one CPU
    (``os.sched_setaffinity``, Linux) and Eigen to one thread gives every machine the
    single-thread result, at the cost of using one core.
    """
    if "jax" in sys.modules:
        raise RuntimeError("use_one_cpu_thread() must run before JAX is imported.")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    xla_flags = os.environ.get("XLA_FLAGS", "")
    if SINGLE_THREAD_FLAG not in xla_flags:
        os.environ["XLA_FLAGS"] = f"{xla_flags} {SINGLE_THREAD_FLAG}".strip()
