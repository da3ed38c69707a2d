"""The test processes' MLIR-context reuse (tests/mlir_context.py) changes no program."""

import itertools
import threading

import jax
import jax.numpy as jnp
from jax._src.interpreters import mlir

from tests import mlir_context


def test_factory_renews_after_max_uses_and_per_thread():
    counter = itertools.count()
    factory = mlir_context.reusing(lambda: next(counter), max_uses=3)
    assert [factory() for _ in range(7)] == [0, 0, 0, 1, 1, 1, 2]
    other_thread = []
    thread = threading.Thread(target=lambda: other_thread.append(factory()))
    thread.start()
    thread.join()
    assert other_thread == [3]
    assert factory() == 2


def test_installed_and_lowers_the_same_text_as_a_fresh_context():
    assert mlir.make_ir_context.make_context is not mlir.make_ir_context
    # Renewed at most once in three calls (max_uses ≥ 2).
    first, second, third = (mlir.make_ir_context() for _ in range(3))
    assert first is second or second is third

    def new_function():  # a new function each time: no lowering is reused from a cache
        return lambda x, y: jnp.sin(x) @ y + jnp.float32(0.5)

    args = (jnp.ones((3, 4)), jnp.arange(8.0).reshape(4, 2))
    reused = [jax.jit(new_function()).lower(*args).as_text() for _ in range(2)]
    fresh_contexts, make_context = [], mlir.make_ir_context.make_context

    def fresh_context():
        fresh_contexts.append(make_context())
        return fresh_contexts[-1]

    installed, mlir.make_ir_context = mlir.make_ir_context, fresh_context
    try:
        fresh = jax.jit(new_function()).lower(*args).as_text()
    finally:
        mlir.make_ir_context = installed
    assert fresh_contexts and fresh_contexts[0] not in (first, second, third)
    assert reused == [fresh, fresh]
