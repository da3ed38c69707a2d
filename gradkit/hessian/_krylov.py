# SPDX-License-Identifier: Apache-2.0
"""Krylov methods on the flattened (preconditioned) Hessian operator.

- :func:`flat_operator`: x ↦ P^{-1/2} H P^{-1/2} x on flat float vectors (P = I if None),
  one Hessian-vector product per application;
- :func:`lanczos`: Lanczos tridiagonalisation with full re-orthogonalisation (Golub & Van
  Loan, *Matrix Computations*, 4th ed., Algorithm 10.1.1 with complete
  reorthogonalisation), used for the top eigenpairs and for stochastic Lanczos quadrature;
- :func:`lanczos_top` and :func:`power_deflation`: the k largest eigenpairs by Lanczos or
  by power iteration with deflation (Yao et al. 2020, PyHessian, arXiv 1912.07145,
  Algorithm 1).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from gradkit.hessian import _hvp


class FlatOperator(NamedTuple):
    matvec: Callable[[jax.Array], jax.Array]  # float vector [n] -> [n]
    size: int
    dtype: Any
    unravel: Callable[[jax.Array], Any]  # float vector [n] -> params-like pytree (dtypes kept)
    inv_sqrt_p: jax.Array | None  # P^{-1/2} as a flat vector, or None


def flat_operator(loss_fn: _hvp.LossFn, params: Any, extra: tuple, axis_name: str | None,
                  preconditioner: Any | None) -> FlatOperator:
    """The symmetric operator x ↦ P^{-1/2} H P^{-1/2} x on flat vectors (P = I if None).

    Krylov vectors are float32 (or the params' wider dtype); the HVP itself runs in the
    params' dtypes.
    """
    flat, unravel = ravel_pytree(params)
    dtype = jnp.promote_types(flat.dtype, jnp.float32)
    inv_sqrt_p = None
    if preconditioner is not None:
        p_flat = jnp.concatenate(
            [jnp.ravel(jnp.asarray(x, dtype)) for x in jax.tree.leaves(preconditioner)]
        ) if jax.tree.leaves(preconditioner) else jnp.zeros([0], dtype)
        inv_sqrt_p = jax.lax.rsqrt(p_flat)

    def matvec(x):
        if inv_sqrt_p is not None:
            x = x * inv_sqrt_p
        hv = _hvp.hvp(loss_fn, params, unravel(x.astype(flat.dtype)), *extra,
                      axis_name=axis_name)
        y = ravel_pytree(hv)[0].astype(dtype)
        if inv_sqrt_p is not None:
            y = y * inv_sqrt_p
        return y

    return FlatOperator(matvec, int(flat.size), dtype, unravel, inv_sqrt_p)


def orthogonalize(basis: jax.Array, w: jax.Array) -> jax.Array:
    """w minus its projection on the rows of `basis` (zero rows are harmless), twice."""
    w = w - basis.T @ (basis @ w)
    return w - basis.T @ (basis @ w)


def lanczos(matvec: Callable[[jax.Array], jax.Array], v0: jax.Array, num_iterations: int,
            key: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Lanczos tridiagonalisation with full re-orthogonalisation.

    Returns (alphas [m], betas [m−1], basis [m, n]): T = tridiag(betas, alphas, betas)
    and orthonormal rows q_0 = v0/‖v0‖, q_1, … spanning the Krylov space. If the
    Krylov space of v0 is exhausted (β_j ≈ 0), the next row is a random unit vector
    orthogonal to all previous ones and β_j is set to 0 (T becomes block diagonal:
    its eigenvalues stay eigenvalues of the operator; the first block is v0's exact
    Gauss quadrature).
    """
    n, m = v0.shape[0], num_iterations
    dtype = v0.dtype
    tiny = jnp.finfo(dtype).eps
    basis = jnp.zeros((m, n), dtype).at[0].set(v0 / jnp.linalg.norm(v0))

    def body(j, carry):
        basis, alphas, betas, scale, key = carry
        q = basis[j]
        w = matvec(q)
        alpha = jnp.vdot(q, w)
        # Full re-orthogonalisation, Gram-Schmidt twice: the first pass removes α q_j,
        # β q_{j−1} and all drift along earlier q; the second pass cleans up its rounding.
        w = w - basis.T @ (basis @ w)
        scale = jnp.maximum(scale, jnp.abs(alpha) + jnp.linalg.norm(w))
        breakdown = jnp.linalg.norm(w) <= tiny * jnp.maximum(scale, jnp.finfo(dtype).tiny) * n
        key, sub = jax.random.split(key)
        # On breakdown continue from a random vector; it gets the second pass below.
        w = jnp.where(breakdown, jax.random.normal(sub, (n,), dtype), w)
        w = w - basis.T @ (basis @ w)
        beta = jnp.linalg.norm(w)
        nxt = w / jnp.where(beta > 0, beta, 1.0)
        beta = jnp.where(breakdown, 0.0, beta)
        nj = jnp.minimum(j + 1, m - 1)
        basis = basis.at[nj].set(jnp.where(j + 1 < m, nxt, basis[nj]))
        return basis, alphas.at[j].set(alpha), betas.at[j].set(beta), scale, key

    carry = (basis, jnp.zeros([m], dtype), jnp.zeros([m], dtype), jnp.zeros([], dtype), key)
    basis, alphas, betas, _, _ = jax.lax.fori_loop(0, m, body, carry)
    return alphas, betas[:-1], basis


def tridiagonal(alphas: jax.Array, betas: jax.Array) -> jax.Array:
    return jnp.diag(alphas) + jnp.diag(betas, 1) + jnp.diag(betas, -1)


def lanczos_top(op: FlatOperator, v0: jax.Array | None, k: int, num_iterations: int,
                key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The k largest Ritz values (descending) of m Lanczos steps and their Ritz vectors."""
    key, sub = jax.random.split(key)
    start = v0 if v0 is not None else jax.random.normal(sub, (op.size,), op.dtype)
    alphas, betas, basis = lanczos(op.matvec, start, num_iterations, key)
    theta, y = jnp.linalg.eigh(tridiagonal(alphas, betas))
    order = jnp.argsort(-theta)[:k]
    return theta[order], (basis.T @ y[:, order]).T


def power_deflation(op: FlatOperator, v0: jax.Array | None, k: int, num_iterations: int,
                    tol: float, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """k eigenpairs by power iteration, each orthogonalised against those already found."""
    n, dtype = op.size, op.dtype
    found = jnp.zeros((k, n), dtype)
    values = []
    for i in range(k):
        key, sub = jax.random.split(key)
        start = v0 if (i == 0 and v0 is not None) else jax.random.normal(sub, (n,), dtype)
        v = orthogonalize(found, start)
        v = v / jnp.linalg.norm(v)

        def cond(c):
            it, _, _, done = c
            return jnp.logical_and(it < num_iterations, jnp.logical_not(done))

        def body(c, found=found):
            it, v, lam, _ = c
            w = orthogonalize(found, op.matvec(v))  # deflation: stay orthogonal to found
            lam_new = jnp.vdot(v, w)
            norm = jnp.linalg.norm(w)
            v_new = jnp.where(norm > 0, w / jnp.where(norm > 0, norm, 1.0), v)
            # PyHessian's stopping rule: relative change of the Rayleigh quotient < tol.
            done = jnp.logical_or(jnp.abs(lam_new - lam) / (jnp.abs(lam) + 1e-6) < tol,
                                  norm == 0)
            return it + 1, v_new, lam_new, done

        init = (jnp.zeros([], jnp.int32), v, jnp.zeros([], dtype), jnp.zeros([], bool))
        _, v, _, _ = jax.lax.while_loop(cond, body, init)
        values.append(jnp.vdot(v, op.matvec(v)))  # Rayleigh quotient of the final vector
        found = found.at[i].set(v)
    return jnp.stack(values), found
