# SPDX-License-Identifier: Apache-2.0
"""XLA flags of every test process (pytest, its xdist workers, and the examples,
benchmarks and notebook kernels the tests start). No JAX import here: tests/conftest.py
reads them before JAX starts.

The suite compiles many tiny programs and runs each a few times, so compile time is most
of its time. XLA:CPU's cheaper code generation (LLVM -O0, no expensive passes, the classic
loop emitters instead of the fusion emitters, one LLVM module per program, Eigen instead
of XNNPACK for dots) cuts the CPU time of the conformance checks of one row, cold cache,
from 24 s to 8 s on a 2-core machine. The programs compute the same operations; float32
results may differ from the optimised build's in the last digits (FMA contraction, other
tanh/exp approximations, the dots' summation order). Set ``GRADKIT_TEST_OPTIMIZED_XLA=1``
to run the suite with XLA's defaults instead (the same tests pass). Benchmarks run outside
the test suite always use the defaults.
"""

import os

FAST_COMPILE = ("--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true "
                "--xla_cpu_use_fusion_emitters=false --xla_cpu_parallel_codegen_split_count=1 "
                "--xla_cpu_use_xnnpack=false")


def compile_flags() -> str:
    """The flags for this test session: `FAST_COMPILE` unless GRADKIT_TEST_OPTIMIZED_XLA=1."""
    return "" if os.environ.get("GRADKIT_TEST_OPTIMIZED_XLA") == "1" else FAST_COMPILE
