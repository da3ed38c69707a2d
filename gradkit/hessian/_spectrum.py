# SPDX-License-Identifier: Apache-2.0
"""The Hessian spectrum: top eigenpairs, Hutchinson trace, SLQ spectral density.

- :func:`hessian_top_eigenvalues`: Lanczos with full re-orthogonalisation or power
  iteration with deflation (Yao et al. 2020, PyHessian, arXiv 1912.07145, Algorithm 1);
- :func:`hessian_trace`: Hutchinson with a standard error (PyHessian Algorithm 2);
- :func:`hessian_spectral_density`: stochastic Lanczos quadrature (Ghorbani, Krishnan,
  Xiao 2019, arXiv 1901.10159), re-derived; facts checked against google/spectral-density
  (Apache-2.0) and PyHessian (GPL; facts only, no code).
"""

from __future__ import annotations

import functools
import math
from typing import Any
from typing import Literal
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from gradkit import _common
from gradkit.hessian import _hvp
from gradkit.hessian import _krylov

# --- Top eigenvalues ---------------------------------------------------------------------


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


def _check_k_and_iterations(k, num_iterations, n, method):
    _common.check_positive_int("k", k)
    if k > n:
        raise ValueError(f"`k`={k} exceeds the dimension of the Hessian (the number of "
                         f"parameters, {n}).")
    if num_iterations is not None:
        _common.check_positive_int("num_iterations", num_iterations)
        if method == "lanczos" and num_iterations < k:
            raise ValueError(f"`num_iterations` must be ≥ k={k} for Lanczos, got "
                             f"{num_iterations}.")


def hessian_top_eigenvalues(
    loss_fn: _hvp.LossFn,
    params: Any,
    *extra: Any,
    k: int = 1,
    method: Literal["lanczos", "power"] = "lanczos",
    num_iterations: int | None = None,
    tol: float = 1e-3,
    v0: Any | None = None,
    key: int | jax.Array = 0,
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
        eigenvalue), or None for a standard-normal one from ``key``. A zero ``v0``
        raises ``ValueError`` (when concrete; a traced zero vector gives NaN).
      key: an int or a ``jax.random`` key for the random start vectors.
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
    _common.check_choice("method", method, ("lanczos", "power"))
    _common.check_positive("tol", tol)
    n = optax.tree.size(params)
    _check_k_and_iterations(k, num_iterations, n, method)
    if v0 is not None:
        _hvp.check_like_params("v0", v0, params)
        _check_nonzero_start(v0)
    if preconditioner is not None:
        _hvp.check_like_params("preconditioner", preconditioner, params)
    if method == "lanczos":
        m = min(n, max(2 * k, 20) + k) if num_iterations is None else min(n, num_iterations)
    else:
        m = 100 if num_iterations is None else num_iterations
    return _top_eigenpairs(loss_fn, k, method, m, float(tol), axis_name, params, extra, v0,
                           _common.typed_key(key), preconditioner)


# One compiled function per (loss_fn, settings): eager calls in a training loop compile
# once; under an outer jit/pmap it is inlined.
@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _top_eigenpairs(loss_fn, k, method, m, tol, axis_name, params, extra, v0, key,
                    preconditioner):
    op = _krylov.flat_operator(loss_fn, params, extra, axis_name, preconditioner)
    flat_v0 = None
    if v0 is not None:
        flat_v0 = ravel_pytree(jax.tree.map(lambda x, p: jnp.asarray(x, op.dtype), v0,
                                            params))[0]
    if method == "lanczos":
        values, vectors = _krylov.lanczos_top(op, flat_v0, k, m, key)
    else:
        values, vectors = _krylov.power_deflation(op, flat_v0, k, m, tol, key)
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
    loss_fn: _hvp.LossFn,
    params: Any,
    *extra: Any,
    num_samples: int = 100,
    distribution: Literal["rademacher", "gaussian"] = "rademacher",
    key: int | jax.Array = 0,
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
      key: an int or a ``jax.random`` key for the probes.
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
    _common.check_choice("distribution", distribution, ("rademacher", "gaussian"))
    _common.check_positive_int("num_samples", num_samples)
    if num_samples < 2:
        raise ValueError(f"`num_samples` must be ≥ 2 (for a standard error), got "
                         f"{num_samples}.")
    return _trace(loss_fn, num_samples, distribution, axis_name, params, extra,
                  _common.typed_key(key))


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _trace(loss_fn, num_samples, distribution, axis_name, params, extra, key):
    sampler = jax.random.rademacher if distribution == "rademacher" else jax.random.normal
    keys = jax.random.split(key, num_samples)

    def one(_, key):
        v = optax.tree.random_like(key, params, sampler, dtype=jnp.float32)
        v = jax.tree.map(lambda t, p: t.astype(jnp.result_type(p)), v, params)
        hv = _hvp.hvp(loss_fn, params, v, *extra, axis_name=axis_name)
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
    loss_fn: _hvp.LossFn,
    params: Any,
    *extra: Any,
    num_iterations: int = 90,
    num_probes: int = 1,
    grid: jax.Array | None = None,
    grid_len: int = 10000,
    sigma_squared: float = 1e-5,
    key: int | jax.Array = 0,
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
      key: an int or a ``jax.random`` key for the probes.
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
    _common.check_positive_int("num_iterations", num_iterations)
    _common.check_positive_int("num_probes", num_probes)
    _common.check_positive_int("grid_len", grid_len)
    _common.check_positive("sigma_squared", sigma_squared)
    if preconditioner is not None:
        _hvp.check_like_params("preconditioner", preconditioner, params)
    m = min(optax.tree.size(params), num_iterations)
    return _density(loss_fn, m, num_probes, grid_len, float(sigma_squared), axis_name, params,
                    extra, grid, _common.typed_key(key), preconditioner)


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3, 4, 5))
def _density(loss_fn, m, num_probes, grid_len, sigma_squared, axis_name, params, extra, grid,
             key, preconditioner):
    op = _krylov.flat_operator(loss_fn, params, extra, axis_name, preconditioner)
    keys = jax.random.split(key, num_probes)

    def one(_, key):
        kv, kl = jax.random.split(key)
        v = jax.random.rademacher(kv, (op.size,), op.dtype)
        alphas, betas, _ = _krylov.lanczos(op.matvec, v, m, kl)
        theta, y = jnp.linalg.eigh(_krylov.tridiagonal(alphas, betas))
        return None, (theta, jnp.square(y[0]))

    _, (nodes, weights) = jax.lax.scan(one, None, keys)
    grid, density, var = density_from_nodes(nodes, weights, grid, grid_len=grid_len,
                                            sigma_squared=sigma_squared)
    return SpectralDensity(grid, density, nodes, weights, var)
