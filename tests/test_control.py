"""gradkit._control.cond: lax.cond under a trace, only the taken branch when eager."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gradkit import _control


def _branches(calls):
    def true_fun(x):
        calls.append("true")
        return x + 1.0

    def false_fun(x):
        calls.append("false")
        return x - 1.0

    return true_fun, false_fun


@pytest.mark.parametrize("pred", [True, np.bool_(False), jnp.asarray(True)])
def test_eager_runs_only_the_taken_branch(pred):
    calls = []
    out = _control.cond(pred, *_branches(calls), jnp.float32(2.0))
    assert calls == (["true"] if bool(pred) else ["false"])
    assert out == jax.lax.cond(pred, *_branches([]), jnp.float32(2.0))


def test_traced_is_lax_cond_both_branches_checked():
    calls = []
    f = jax.jit(lambda p, x: _control.cond(p, *_branches(calls), x))
    assert f(True, jnp.float32(2.0)) == 3.0 and f(False, jnp.float32(2.0)) == 1.0
    assert sorted(calls) == ["false", "true"]  # traced once, both branches
    with pytest.raises(TypeError):  # lax.cond's check that the branches' types agree
        jax.jit(lambda p: _control.cond(p, lambda: jnp.zeros(2), lambda: jnp.zeros(3)))(True)


def test_vmapped_predicate():
    out = jax.vmap(lambda p, x: _control.cond(p, *_branches([]), x))(
        jnp.asarray([True, False]), jnp.asarray([2.0, 2.0]))
    np.testing.assert_array_equal(out, [3.0, 1.0])
