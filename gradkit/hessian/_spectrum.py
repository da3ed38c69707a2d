"""Hessian-vector products, Krylov eigensolvers, Hutchinson trace and SLQ density."""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from typing import Any
from typing import Literal
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from gradkit import _control
from gradkit.hessian import _hvp
from gradkit import _validation

LossFn = Callable[..., jax.Array]  # loss_fn(params, *extra) -> scalar


# --- Validation helpers -----------------------------------------------------------


def _check_structure(name: str, tree: Any, params: Any) -> None:
    got, want = jax.tree.structure(tree), jax.tree.structure(params)
    if got != want:
        raise ValueError(
            f"`{name}` must have the same pytree structure as `params`.\n"
            f"  {name}: {got}\n  params: {want}")
    for a, p in zip(jax.tree.leaves(tree), jax.tree.leaves(params), strict=True):
        if jnp.shape(a) != jnp.shape(p):
            raise ValueError(f"`{name}` leaf of shape {jnp.shape(a)} does not match the "
                             f"params leaf of shape {jnp.shape(p)}.")


def _num_params(params: Any) -> int:
    return sum(int(np.prod(jnp.shape(x))) for x in jax.tree.leaves(params))


def _key(seed: Any) -> jax.Array:
    if isinstance(seed, jax.Array) and jnp.issubdtype(seed.dtype, jax.dtypes.prng_key):
        return seed
    if isinstance(seed, jax.Array) and seed.dtype == jnp.uint32 and seed.ndim == 1:
        return jax.random.wrap_key_data(seed)
    if isinstance(seed, numbers.Integral) or isinstance(seed, jax.Array):
        return jax.random.key(seed)
    raise TypeError(f"`seed` must be an integer or a JAX PRNG key, got {type(seed).__name__}.")


def _check_nonzero_start(v0: Any) -> None:
    """Raises if every entry of a concrete start vector is zero (or it is not finite)."""
    try:
        leaves = [np.asarray(x, np.float64) for x in jax.tree.leaves(v0)]
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return  # traced: cannot be checked here
    sq = sum(float(np.sum(np.square(x))) for x in leaves)
    if sq == 0.0:
        raise ValueError("`v0` is the zero vector: Krylov methods need a non-zero start "
                         "vector (pass None for a random one).")
    if not math.isfinite(sq):
        raise ValueError("`v0` has non-finite entries.")


# --- Hessian-vector product ----------------------------------------------------------


def hvp(loss_fn: LossFn, params: Any, v: Any, *extra: Any,
        axis_name: str | None = None) -> Any:
    r"""Hessian-vector product ∇²L(θ)·v of a scalar loss on pytrees (forward-over-reverse).

    .. math::

        \operatorname{hvp}(v) = \frac{d}{d\epsilon}\nabla_\theta
            L(\theta + \epsilon v, \ldots)\Big|_{\epsilon=0}
        = \nabla^2_\theta L(\theta)\, v

    computed as ``jax.jvp(jax.grad(loss), (params,), (v,))``: one forward-mode pass
    through the backward pass, a small multiple of a gradient's cost (2.3× on an MLP and
    6× on the reference GPT on our CPU, ``benchmarks/spectrum.py``), never forming the
    Hessian. This is the same code as
    Sophia's Hutchinson estimator (:func:`gradkit.hutchinson_diag_hessian`; both call
    ``gradkit._hvp``).

    Batched: ``loss_fn(params, *extra)`` may average over any batch held in ``extra``;
    for several vectors at once use ``jax.vmap(hvp, in_axes=(None, None, 0))``.
    Multi-device: with ``axis_name`` (a ``pmap``/``shard_map`` data axis, params and
    ``v`` replicated, ``extra`` sharded), the per-device products are ``lax.pmean``-ed,
    exactly as Sophia's estimators do, so the result is the HVP of the mean of the
    per-device losses (the global-batch loss for equal-size shards) on every device.

    Args:
      loss_fn: ``loss_fn(params, *extra) -> scalar``.
      params: the point θ (any pytree of float arrays).
      v: a pytree with the structure and shapes of ``params`` (cast to their dtypes).
      *extra: further positional arguments of ``loss_fn`` (e.g. a batch).
      axis_name: a data-parallel axis to average over, or None.

    Returns:
      ∇²L(θ)·v, a pytree like ``params``.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> loss = lambda p, x: jnp.sum((x * p["w"]) ** 2)
      >>> gradkit.hvp(loss, {"w": jnp.ones(2)}, {"w": jnp.array([1.0, 0.0])},
      ...             jnp.array([1.0, 3.0]))  # H = diag(2x²) → [2, 0]
      {'w': Array([2., 0.], dtype=float32)}

    References:
      Pearlmutter, `Fast exact multiplication by the Hessian
      <https://doi.org/10.1162/neco.1994.6.1.147>`_, 1994.
    """
    _check_structure("v", v, params)
    v = jax.tree.map(lambda t, p: jnp.asarray(t).astype(jnp.result_type(p)), v, params)
    out = _hvp.local_hvp(lambda p: loss_fn(p, *extra), params, v, axis_name)
    return _hvp.axis_mean(out, axis_name)


class _FlatOperator(NamedTuple):
    matvec: Callable[[jax.Array], jax.Array]  # float vector [n] -> [n]
    size: int
    dtype: Any
    unravel: Callable[[jax.Array], Any]  # float vector [n] -> params-like pytree (dtypes kept)
    inv_sqrt_p: jax.Array | None  # P^{-1/2} as a flat vector, or None


def _flat_operator(loss_fn, params, extra, axis_name, preconditioner) -> _FlatOperator:
    """The symmetric operator x ↦ P^{-1/2} H P^{-1/2} x on flat vectors (P = I if None)."""
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
        hv = hvp(loss_fn, params, unravel(x.astype(flat.dtype)), *extra, axis_name=axis_name)
        y = ravel_pytree(hv)[0].astype(dtype)
        if inv_sqrt_p is not None:
            y = y * inv_sqrt_p
        return y

    return _FlatOperator(matvec, int(flat.size), dtype, unravel, inv_sqrt_p)


# --- Lanczos with full re-orthogonalisation --------------------------------------------


def _orthogonalize(basis: jax.Array, w: jax.Array) -> jax.Array:
    """w minus its projection on the rows of `basis` (zero rows are harmless), twice."""
    w = w - basis.T @ (basis @ w)
    return w - basis.T @ (basis @ w)


def _lanczos(matvec, v0: jax.Array, num_iterations: int, key: jax.Array):
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
        # On breakdown continue from a random vector (only the key enters the cond: passing
        # the basis would copy it every step); it gets the second pass below.
        fresh = _control.cond(breakdown, lambda k: jax.random.normal(k, (n,), dtype),
                              lambda k: jnp.zeros((n,), dtype), sub)
        w = jnp.where(breakdown, fresh, w)
        w = w - basis.T @ (basis @ w)
        beta = jnp.linalg.norm(w)
        nxt = w / jnp.where(beta > 0, beta, 1.0)
        beta = jnp.where(breakdown, 0.0, beta)
        nj = jnp.minimum(j + 1, m - 1)
        basis = basis.at[nj].set(jnp.where(j + 1 < m, nxt, basis[nj]))  # in place
        return basis, alphas.at[j].set(alpha), betas.at[j].set(beta), scale, key

    carry = (basis, jnp.zeros([m], dtype), jnp.zeros([m], dtype), jnp.zeros([], dtype), key)
    basis, alphas, betas, _, _ = jax.lax.fori_loop(0, m, body, carry)
    return alphas, betas[:-1], basis


def _tridiagonal(alphas, betas):
    return jnp.diag(alphas) + jnp.diag(betas, 1) + jnp.diag(betas, -1)


# --- Top eigenvalues ---------------------------------------------------------------------


def _power_deflation(op: _FlatOperator, v0, k, num_iterations, tol, key):
    """k eigenpairs by power iteration, each orthogonalised against those already found."""
    n, dtype = op.size, op.dtype
    found = jnp.zeros((k, n), dtype)
    values = []
    for i in range(k):
        key, sub = jax.random.split(key)
        start = v0 if (i == 0 and v0 is not None) else jax.random.normal(sub, (n,), dtype)
        v = _orthogonalize(found, start)
        v = v / jnp.linalg.norm(v)

        def cond(c):
            it, _, _, done = c
            return jnp.logical_and(it < num_iterations, jnp.logical_not(done))

        def body(c, found=found):
            it, v, lam, _ = c
            w = _orthogonalize(found, op.matvec(v))  # deflation: stay orthogonal to found
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


def _lanczos_top(op: _FlatOperator, v0, k, num_iterations, key):
    key, sub = jax.random.split(key)
    start = v0 if v0 is not None else jax.random.normal(sub, (op.size,), op.dtype)
    alphas, betas, basis = _lanczos(op.matvec, start, num_iterations, key)
    theta, y = jnp.linalg.eigh(_tridiagonal(alphas, betas))
    order = jnp.argsort(-theta)[:k]
    return theta[order], (basis.T @ y[:, order]).T


def _check_k_and_iterations(k, num_iterations, n, method):
    _validation.check_positive_int("k", k)
    if k > n:
        raise ValueError(f"`k`={k} exceeds the dimension of the Hessian (the number of "
                         f"parameters, {n}).")
    if num_iterations is not None:
        _validation.check_positive_int("num_iterations", num_iterations)
        if method == "lanczos" and num_iterations < k:
            raise ValueError(f"`num_iterations` must be ≥ k={k} for Lanczos, got "
                             f"{num_iterations}.")


def hessian_top_eigenvalues(
    loss_fn: LossFn,
    params: Any,
    *extra: Any,
    k: int = 1,
    method: Literal["lanczos", "power"] = "lanczos",
    num_iterations: int | None = None,
    tol: float = 1e-3,
    v0: Any | None = None,
    seed: int | jax.Array = 0,
    preconditioner: Any | None = None,
    axis_name: str | None = None,
) -> tuple[jax.Array, Any]:
    r"""Top-k eigenvalues and eigenvectors of the loss Hessian (or a preconditioned one).

    With H = ∇²L(θ) and an optional positive diagonal preconditioner P (a pytree like
    ``params``), the eigenpairs of P⁻¹H, i.e. H u = λ P u, are computed through the
    symmetric matrix S = P^{-1/2} H P^{-1/2} (same eigenvalues; u ∝ P^{-1/2} y):

    - ``method="lanczos"`` (default): m = ``num_iterations`` Lanczos steps from a start
      vector q₀, with *full* re-orthogonalisation of every new Krylov vector against all
      previous ones (Gram-Schmidt twice), T_m = Q_mᵀ S Q_m tridiagonal; eigenvalues are
      the k largest Ritz values θ of T_m (algebraically largest, descending), vectors
      Q_m y (Golub & Van Loan, Algorithm 10.1.1 with complete reorthogonalisation).
      Default m = min(n, max(2k, 20) + k). With m = n it is exact up to rounding.
    - ``method="power"``: power iteration with deflation (PyHessian's
      ``hessian.eigenvalues``): for i = 1..k, v ← S v / ‖S v‖ with v kept orthogonal to
      the i−1 vectors already found, until the Rayleigh quotient changes by less than
      ``tol`` relatively (|λ−λ'|/(|λ'|+1e-6)) or ``num_iterations`` (default 100) steps.
      Power iteration converges to the eigenvalues of largest *magnitude*; its rate is
      |λ_{i+1}/λ_i| per step. Results are sorted descending.

    Costs: one HVP per iteration; Lanczos keeps the m × n basis in memory.

    Args:
      loss_fn: ``loss_fn(params, *extra) -> scalar``.
      params: the point θ.
      *extra: further positional arguments of ``loss_fn`` (e.g. the batch).
      k: number of eigenpairs, 1 ≤ k ≤ n (the number of parameters).
      method: ``"lanczos"`` or ``"power"``.
      num_iterations: Lanczos steps m (k ≤ m; values above n are clipped to n) or the
        power-iteration cap per eigenvalue.
      tol: power iteration's relative stopping tolerance (PyHessian default 1e-3).
      v0: start vector (pytree like ``params``; Lanczos, and power iteration's first
        eigenvalue), or None for a standard-normal one from ``seed``. A zero ``v0``
        raises ``ValueError`` (when concrete; a traced zero vector gives NaN).
      seed: integer or PRNG key for the random start vectors.
      preconditioner: None, or a pytree like ``params`` of positive entries P (e.g.
        :func:`adam_preconditioner`); see above.
      axis_name: data-parallel axis; the HVP is averaged over it (see :func:`hvp`), so
        every device computes the same eigenpairs of the global-batch Hessian.

    Returns:
      ``(eigenvalues, eigenvectors)``: float array [k], descending, and a pytree like
      ``params`` whose leaves have a leading axis k (unit Euclidean norm over the whole
      pytree; ``jax.tree.map(lambda x: x[i], vecs)`` is the i-th), in the Krylov dtype
      (float32, or wider params' dtype; the HVPs themselves run in the params' dtypes, e.g.
      bf16). With a preconditioner these are the right eigenvectors u of P⁻¹H (Hu = λPu).

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> loss = lambda p: 0.5 * (3.0 * p["a"] ** 2 + p["b"] ** 2).sum()
      >>> vals, vecs = gradkit.hessian_top_eigenvalues(
      ...     loss, {"a": jnp.zeros(1), "b": jnp.zeros(1)}, k=2)  # ≈ [3, 1]

    References:
      Lanczos, `An iteration method for the solution of the eigenvalue problem of
      linear differential and integral operators`, 1950; Golub & Van Loan, *Matrix
      Computations*, 4th ed., §10.1.

      Yao et al., `PyHessian: Neural Networks Through the Lens of the Hessian
      <https://arxiv.org/abs/1912.07145>`_, 2020 (Algorithm 1: power iteration with
      deflation for the top eigenvalues).
    """
    _validation.check_choice("method", method, ("lanczos", "power"))
    _validation.check_positive("tol", tol)
    n = _num_params(params)
    _check_k_and_iterations(k, num_iterations, n, method)
    if v0 is not None:
        _check_structure("v0", v0, params)
        _check_nonzero_start(v0)
    if preconditioner is not None:
        _check_structure("preconditioner", preconditioner, params)
    if method == "lanczos":
        m = min(n, max(2 * k, 20) + k) if num_iterations is None else min(n, num_iterations)
    else:
        m = 100 if num_iterations is None else num_iterations
    return _top_eigenpairs(loss_fn, k, method, m, float(tol), axis_name, params, extra, v0,
                           _key(seed), preconditioner)


# One compiled function per (loss_fn, settings): eager calls in a training loop compile
# once; under an outer jit/pmap it is inlined.
@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _top_eigenpairs(loss_fn, k, method, m, tol, axis_name, params, extra, v0, key,
                    preconditioner):
    op = _flat_operator(loss_fn, params, extra, axis_name, preconditioner)
    flat_v0 = None
    if v0 is not None:
        flat_v0 = ravel_pytree(jax.tree.map(lambda x, p: jnp.asarray(x, op.dtype), v0,
                                            params))[0]
    if method == "lanczos":
        values, vectors = _lanczos_top(op, flat_v0, k, m, key)
    else:
        values, vectors = _power_deflation(op, flat_v0, k, m, tol, key)
        order = jnp.argsort(-values)
        values, vectors = values[order], vectors[order]
    if op.inv_sqrt_p is not None:  # u = P^{-1/2} y, normalised
        vectors = vectors * op.inv_sqrt_p
        vectors = vectors / jnp.linalg.norm(vectors, axis=1, keepdims=True)
    return values, jax.vmap(op.unravel)(vectors)


# --- Trace ---------------------------------------------------------------------------


class HessianTrace(NamedTuple):
    """Result of :func:`hessian_trace`."""

    trace: jax.Array  # scalar, mean of the probe estimates vᵀHv.
    std_error: jax.Array  # scalar, sample standard deviation / √num_samples.
    samples: jax.Array  # [num_samples], the individual vᵀHv.


def hessian_trace(
    loss_fn: LossFn,
    params: Any,
    *extra: Any,
    num_samples: int = 100,
    distribution: Literal["rademacher", "gaussian"] = "rademacher",
    seed: int | jax.Array = 0,
    axis_name: str | None = None,
) -> HessianTrace:
    r"""Hutchinson's estimate of tr ∇²L(θ) with its standard error.

    .. math::

        \operatorname{tr} H \approx \frac1N \sum_{i=1}^N v_i^\top H v_i,\qquad
        \mathbb{E}[v v^\top] = I

    with v_i i.i.d. Rademacher (±1; PyHessian's choice, variance 2Σ_{i≠j}H_ij²) or
    standard normal (variance 2‖H‖_F²). ``std_error`` = sample std/√N, so the exact trace
    lies within ±3 std_error of ``trace`` with high probability. All N probes run in a
    ``lax.scan`` (one HVP each). PyHessian instead stops when the running mean changes by
    less than 1e-3 relatively (at most 100 probes); a fixed N keeps this jit-friendly.

    Args:
      loss_fn: ``loss_fn(params, *extra) -> scalar``.
      params: the point θ.
      *extra: further positional arguments of ``loss_fn``.
      num_samples: N ≥ 2 probes.
      distribution: ``"rademacher"`` or ``"gaussian"``.
      seed: integer or PRNG key.
      axis_name: data-parallel axis (see :func:`hvp`); every device draws the same probes.

    Returns:
      A :class:`HessianTrace` ``(trace, std_error, samples)``.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> est = gradkit.hessian_trace(lambda p: jnp.sum(p ** 2), jnp.ones(5))
      >>> float(est.trace)  # H = 2I: every Rademacher probe gives exactly 10
      10.0

    References:
      Hutchinson, `A stochastic estimator of the trace of the influence matrix for
      Laplacian smoothing splines`, 1989; Yao et al., `PyHessian
      <https://arxiv.org/abs/1912.07145>`_, 2020 (Algorithm 2).
    """
    _validation.check_choice("distribution", distribution, ("rademacher", "gaussian"))
    _validation.check_positive_int("num_samples", num_samples)
    if num_samples < 2:
        raise ValueError(f"`num_samples` must be ≥ 2 (for a standard error), got "
                         f"{num_samples}.")
    return _trace(loss_fn, num_samples, distribution, axis_name, params, extra, _key(seed))


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _trace(loss_fn, num_samples, distribution, axis_name, params, extra, key):
    sampler = jax.random.rademacher if distribution == "rademacher" else jax.random.normal
    keys = jax.random.split(key, num_samples)

    def one(_, key):
        v = optax.tree.random_like(key, params, sampler, dtype=jnp.float32)
        v = jax.tree.map(lambda t, p: t.astype(jnp.result_type(p)), v, params)
        hv = hvp(loss_fn, params, v, *extra, axis_name=axis_name)
        return None, sum(jnp.vdot(a.astype(jnp.float32), b.astype(jnp.float32))
                         for a, b in zip(jax.tree.leaves(v), jax.tree.leaves(hv), strict=True))

    _, samples = jax.lax.scan(one, None, keys)
    std_error = jnp.std(samples, ddof=1) / math.sqrt(num_samples)
    return HessianTrace(jnp.mean(samples), std_error, samples)


# --- Spectral density (stochastic Lanczos quadrature) ----------------------------------


class SpectralDensity(NamedTuple):
    """Result of :func:`hessian_spectral_density`."""

    grid: jax.Array  # [grid_len] eigenvalue axis.
    density: jax.Array  # [grid_len] Gaussian-broadened density φ_σ on `grid`.
    nodes: jax.Array  # [num_probes, m] Ritz values (ascending) of each probe's T_m.
    weights: jax.Array  # [num_probes, m] quadrature weights (first eigenvector entry)².
    sigma_squared: jax.Array  # scalar, the kernel variance actually used.


def density_from_nodes(
    nodes: jax.Array,
    weights: jax.Array,
    grid: jax.Array | None = None,
    *,
    grid_len: int = 10000,
    sigma_squared: float = 1e-5,
    grid_expand: float = 1e-2,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    r"""Gaussian-broadened spectral density from quadrature nodes and weights.

    .. math::

        \phi_\sigma(t) = \frac1{n_v}\sum_{l=1}^{n_v}\sum_{i=1}^m w^{(l)}_i
            \frac{1}{\sqrt{2\pi\sigma^2}}\exp\Big(-\frac{(t-\theta^{(l)}_i)^2}{2\sigma^2}\Big)

    with σ² = ``sigma_squared``·max(1, λ_max − λ_min) (the google/spectral-density
    rule; λ_max/λ_min are the probe-averaged extreme nodes ± ``grid_expand``). The grid
    defaults to ``grid_len`` points on [λ_min − 5σ, λ_max + 5σ] (the reference pads by
    ``grid_expand`` only, which can cut off up to half a kernel); the density is *not*
    renormalised on the grid (the reference divides by its Riemann sum), so its
    integral is a check (≈ 1 when the weights of each probe sum to 1).

    Args:
      nodes: [num_probes, m] or [m] nodes θ.
      weights: same shape, weights w.
      grid: optional evaluation points.
      grid_len: number of points when ``grid`` is None.
      sigma_squared: relative kernel variance.
      grid_expand: padding of the extreme nodes used for the range.

    Returns:
      ``(grid, density, sigma_squared_used)``.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> grid, dens, var = gradkit.density_from_nodes(jnp.array([0.0, 1.0]),
      ...                                              jnp.array([0.5, 0.5]), grid_len=500)

    References:
      Ghorbani, Krishnan, Xiao, `An Investigation into Neural Net Optimization via
      Hessian Eigenvalue Density <https://arxiv.org/abs/1901.10159>`_, 2019 (§2, the
      Gaussian-smoothed density).
    """
    nodes, weights = jnp.atleast_2d(nodes), jnp.atleast_2d(weights)
    lam_max = jnp.mean(jnp.max(nodes, axis=1)) + grid_expand
    lam_min = jnp.mean(jnp.min(nodes, axis=1)) - grid_expand
    var = sigma_squared * jnp.maximum(1.0, lam_max - lam_min)
    if grid is None:
        pad = 5.0 * jnp.sqrt(var)
        grid = jnp.linspace(lam_min - pad, lam_max + pad, grid_len, dtype=nodes.dtype)
    kernel = jnp.exp(-jnp.square(grid[:, None, None] - nodes[None]) / (2.0 * var))
    kernel = kernel / jnp.sqrt(2.0 * jnp.pi * var)
    density = jnp.mean(jnp.sum(kernel * weights[None], axis=-1), axis=-1)
    return grid, density, var


def hessian_spectral_density(
    loss_fn: LossFn,
    params: Any,
    *extra: Any,
    num_iterations: int = 90,
    num_probes: int = 1,
    grid: jax.Array | None = None,
    grid_len: int = 10000,
    sigma_squared: float = 1e-5,
    seed: int | jax.Array = 0,
    preconditioner: Any | None = None,
    axis_name: str | None = None,
) -> SpectralDensity:
    r"""Hessian eigenvalue density by stochastic Lanczos quadrature (SLQ).

    The spectral density φ(t) = (1/n) Σ_i δ(t − λ_i) satisfies
    ∫ f dφ = (1/n) tr f(H) = E_v[vᵀ f(H) v] for unit probes with E[v vᵀ] = I/n. For
    each probe v (normalised Rademacher), m Lanczos steps with full
    re-orthogonalisation give T_m = Y diag(θ) Yᵀ and the m-point Gauss quadrature
    vᵀ f(H) v ≈ Σ_i w_i f(θ_i), w_i = Y_{0i}² (Σ w_i = 1). Averaging over probes and
    replacing δ by a Gaussian of variance σ² gives φ_σ (:func:`density_from_nodes`).
    Ghorbani, Krishnan & Xiao 2019, §2 / Algorithm 1; σ² = 1e-5·max(1, range) as in
    their code (google/spectral-density, ``density.py``); order 90 is their examples'
    choice (PyHessian uses 100 iterations, 1 probe).

    Args:
      loss_fn: ``loss_fn(params, *extra) -> scalar``.
      params: the point θ.
      *extra: further positional arguments of ``loss_fn``.
      num_iterations: Lanczos order m (clipped to the number of parameters n).
      num_probes: number of independent probes n_v.
      grid, grid_len, sigma_squared: see :func:`density_from_nodes`.
      seed: integer or PRNG key for the probes.
      preconditioner: optional positive diagonal P: the density of P⁻¹H instead.
      axis_name: data-parallel axis (see :func:`hvp`).

    Returns:
      A :class:`SpectralDensity` ``(grid, density, nodes, weights, sigma_squared)``.
      ``density`` integrates to ≈ 1 over ``grid``; the nodes weighted by ``weights``
      form a discrete distribution whose k-th moments match tr(Hᵏ)/n in expectation
      for k < 2m.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> sd = gradkit.hessian_spectral_density(lambda p: jnp.sum(p ** 2), jnp.ones(4),
      ...                                       num_iterations=4, grid_len=200)

    References:
      Ghorbani, Krishnan, Xiao, `An Investigation into Neural Net Optimization via
      Hessian Eigenvalue Density <https://arxiv.org/abs/1901.10159>`_, 2019 (§2).

      Golub & Welsch, `Calculation of Gauss quadrature rules`, 1969; Lin, Saad, Yang,
      `Approximating spectral densities of large matrices`, SIAM Review, 2016.
    """
    _validation.check_positive_int("num_iterations", num_iterations)
    _validation.check_positive_int("num_probes", num_probes)
    _validation.check_positive_int("grid_len", grid_len)
    _validation.check_positive("sigma_squared", sigma_squared)
    if preconditioner is not None:
        _check_structure("preconditioner", preconditioner, params)
    m = min(_num_params(params), num_iterations)
    return _density(loss_fn, m, num_probes, grid_len, float(sigma_squared), axis_name, params,
                    extra, grid, _key(seed), preconditioner)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _density(loss_fn, m, num_probes, grid_len, sigma_squared, axis_name, params, extra, grid,
             key, preconditioner):
    op = _flat_operator(loss_fn, params, extra, axis_name, preconditioner)
    keys = jax.random.split(key, num_probes)

    def one(_, key):
        kv, kl = jax.random.split(key)
        v = jax.random.rademacher(kv, (op.size,), op.dtype)
        alphas, betas, _ = _lanczos(op.matvec, v, m, kl)
        theta, y = jnp.linalg.eigh(_tridiagonal(alphas, betas))
        return None, (theta, jnp.square(y[0]))

    _, (nodes, weights) = jax.lax.scan(one, None, keys)
    grid, density, var = density_from_nodes(nodes, weights, grid, grid_len=grid_len,
                                            sigma_squared=sigma_squared)
    return SpectralDensity(grid, density, nodes, weights, var)
