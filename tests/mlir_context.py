"""Reuse one MLIR context per thread for JAX's lowerings in the test processes (pytest
and its workers, and the examples, benchmarks and notebook kernels forked from
``tests/warm_python.py``; the multi-process test's fresh interpreters are left as is).

JAX builds a new MLIR context for every program it lowers (~2.5 ms here: the dialects
are loaded into each) and tears it down afterwards. The tests lower thousands of tiny
programs: every jit, pmap and eager primitive on a shape not seen before. Reusing a
context for up to ``max_uses`` lowerings took the fast subset from 110 to 96 s (two
workers, back to back) and the end-to-end tests from 111 to 92 s. The lowered programs
are unchanged (same text, same compilation-cache keys); only the context that owns them
differs. A context keeps every constant it has uniqued, so it is renewed after
``max_uses`` lowerings to bound memory; each thread has its own.

This replaces a private JAX function (``jax._src.interpreters.mlir.make_ir_context``);
where a JAX version lacks it, nothing is patched and the tests run as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def reusing(make_context: Callable[[], Any], max_uses: int) -> Callable[[], Any]:
    """A factory that returns the same `make_context()` result `max_uses` times in a row
    per thread, then a new one."""
    local = threading.local()

    def reused_context():
        uses = getattr(local, "uses", max_uses)
        if uses >= max_uses:
            local.context, uses = make_context(), 0
        local.uses = uses + 1
        return local.context

    reused_context.make_context = make_context
    return reused_context


def reuse_per_thread(max_uses: int = 256) -> bool:
    """Install `reusing(JAX's factory, max_uses)`; return whether JAX had the factory."""
    try:
        from jax._src.interpreters import mlir
    except ImportError:
        return False
    make_context = getattr(mlir, "make_ir_context", None)
    if make_context is None:
        return False
    mlir.make_ir_context = reusing(getattr(make_context, "make_context", make_context),
                                   max_uses)
    return True
