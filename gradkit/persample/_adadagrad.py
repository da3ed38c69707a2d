# SPDX-License-Identifier: Apache-2.0
"""AdAdaGrad: adaptive batch sizes from per-sample-gradient tests.

Lau, Liu, Kolar, *AdAdaGrad: Adaptive Batch Size Schemes for Adaptive Gradient Methods*,
2024, arXiv 2402.11215 (§3, the norm test Eq. (3.2), the augmented inner-product test
Eqs. (3.4)-(3.5), Algorithm 1). Reference code ``timlautk/AdAdaGrad`` (MIT), ``tests.py``:
checked against hand-computed values and a float64 NumPy transcription
(``tests/test_persample_adadagrad.py``).

Every test needs only five numbers of the per-sample gradients ∇f_i (i = 1..B) of the
current batch: B, ‖ḡ‖² (ḡ their mean), Σ‖∇f_i‖², Σ⟨∇f_i, ḡ⟩ and Σ⟨∇f_i, ḡ⟩²
(:class:`PerSampleStatistics`), because with unbiased variances

* Σ_j Var̂_i[∇_j f_i] = (Σ_i‖∇f_i‖² − B‖ḡ‖²)/(B−1)                    (norm test),
* Var̂_i⟨∇f_i, ḡ⟩      = (Σ_i a_i² − (Σ_i a_i)²/B)/(B−1), a_i = ⟨∇f_i, ḡ⟩  (inner product),
* Σ_j Var̂_i[(∇f_i − a_i ḡ/‖ḡ‖²)_j] = (Σ_i‖∇f_i‖² − Σ_i a_i²/‖ḡ‖² − B‖ō‖²)/(B−1),
  ō = ḡ(1 − ā/‖ḡ‖²)                                                      (orthogonality).

Across devices (``axis_name``) the five numbers are summed, which gives exactly the
one-device result.
"""

from __future__ import annotations

import functools
import math
from typing import Any
from typing import Literal

import jax
import jax.numpy as jnp

from gradkit import _common
from gradkit.persample._statistics import PerSampleStatistics
from gradkit.persample._statistics import check_batch
from gradkit.persample._statistics import per_sample_statistics

TestName = Literal["norm", "inner_product", "orthogonality", "augmented"]
# The `test` names :func:`adadagrad_batch_size` accepts.
ADADAGRAD_TESTS: tuple[str, ...] = ("norm", "inner_product", "orthogonality", "augmented")
_INT32_MAX = 2**31 - 1


def adadagrad_variances(stats: PerSampleStatistics) -> dict[str, jax.Array]:
    """Unbiased variance sums of the three tests (see the module docstring).

    Returns a dict with ``"norm"`` (Σ_j Var̂[∇_j f_i]), ``"inner_product"``
    (Var̂⟨∇f_i, ḡ⟩) and ``"orthogonality"`` (Σ_j Var̂ of the components orthogonal to ḡ).
    """
    n, g2 = stats.batch_size, stats.grad_sq_norm
    safe_g2 = jnp.where(g2 > 0, g2, 1.0)
    mean_inner = stats.sum_inner / n
    ortho_mean_sq = g2 * (1.0 - mean_inner / safe_g2) ** 2
    return {
        "norm": (stats.sum_sq_norms - n * g2) / (n - 1),
        "inner_product": (stats.sum_inner_sq - stats.sum_inner**2 / n) / (n - 1),
        "orthogonality": (stats.sum_sq_norms - stats.sum_inner_sq / safe_g2
                          - n * ortho_mean_sq) / (n - 1),
    }


def _proposals(variances, g2, eta, theta, nu):
    return {
        "norm": variances["norm"] / (eta**2 * g2),
        "inner_product": variances["inner_product"] / (theta**2 * g2**2),
        "orthogonality": variances["orthogonality"] / (nu**2 * g2),
    }


def _check_test_args(test, eta, theta, nu):
    _common.check_choice("test", test, ADADAGRAD_TESTS)
    _common.check_positive("eta", eta)
    _common.check_positive("theta", theta)
    _common.check_positive("nu", nu)


def _to_batch_size(current, proposal, max_batch_size):
    """max(current, ⌈proposal⌉) as int32, capped; a NaN proposal keeps `current`.

    The ceiling forgives a relative float32 round-off of 1e-6, so a ratio that is an
    integer in exact arithmetic (e.g. 2 / (0.1²·5) = 40) is not bumped to the next one.
    """
    cap = float(_INT32_MAX if max_batch_size is None else max_batch_size)
    proposal = jnp.where(jnp.isnan(proposal), 0.0, proposal) * (1.0 - 1e-6)
    new = jnp.minimum(jnp.ceil(jnp.maximum(proposal, current)), cap)
    return new.astype(jnp.int32)


def _next_batch_size(current, variances, grad_sq_norm, test, eta, theta, nu, max_batch_size):
    """The chosen test's proposal (augmented = max of inner-product and orthogonality)
    turned into the next batch size."""
    proposals = _proposals(variances, grad_sq_norm, eta, theta, nu)
    if test == "augmented":
        proposal = jnp.maximum(proposals["inner_product"], proposals["orthogonality"])
    else:
        proposal = proposals[test]
    return _to_batch_size(current, proposal, max_batch_size)


def adadagrad_batch_size_from_statistics(
    stats: PerSampleStatistics,
    test: TestName = "norm",
    *,
    eta: float = 0.1,
    theta: float = 0.5,
    nu: float = 1.0,
    max_batch_size: int | None = None,
) -> jax.Array:
    """The next batch size from :class:`PerSampleStatistics` (see
    :func:`adadagrad_batch_size`)."""
    _check_test_args(test, eta, theta, nu)
    if max_batch_size is not None:
        _common.check_positive_int("max_batch_size", max_batch_size)
    return _next_batch_size(stats.batch_size, adadagrad_variances(stats), stats.grad_sq_norm,
                            test, eta, theta, nu, max_batch_size)


def _per_tensor_batch_size(per_sample_grads, test, eta, theta, nu, max_batch_size):
    """The official code's variant: inner products and projections per parameter tensor
    (each leaf against its own slice of ḡ), variances summed over tensors."""
    var = {"norm": 0.0, "inner_product": 0.0, "orthogonality": 0.0}
    g2 = 0.0
    n = None
    for leaf in jax.tree.leaves(per_sample_grads):
        stats, _ = per_sample_statistics({"x": leaf})
        n = stats.batch_size
        g2 = g2 + stats.grad_sq_norm
        for name, v in adadagrad_variances(stats).items():
            var[name] = var[name] + v
    return _next_batch_size(n, var, g2, test, eta, theta, nu, max_batch_size)


def adadagrad_batch_size(
    per_sample_grads: Any,
    test: TestName = "norm",
    *,
    eta: float = 0.1,
    theta: float = 0.5,
    nu: float = 1.0,
    max_batch_size: int | None = None,
    per_tensor: bool = False,
    axis_name: str | None = None,
) -> jax.Array:
    r"""The batch size AdAdaGrad's test asks for, from the current per-sample gradients.

    With B per-sample gradients ∇f_i, mean ḡ and unbiased variances Var̂ over i:

    .. math::

        b^{\rm norm} &= \Big\lceil \frac{\sum_j \widehat{\rm Var}_i[\nabla_j f_i]}
                         {\eta^2 \|\bar g\|^2} \Big\rceil ,\qquad
        b^{\rm ip} = \Big\lceil \frac{\widehat{\rm Var}_i\langle\nabla f_i,\bar g\rangle}
                         {\theta^2 \|\bar g\|^4} \Big\rceil ,\\
        b^{\rm orth} &= \Big\lceil \frac{\sum_j \widehat{\rm Var}_i\big[\nabla_j f_i -
                         \tfrac{\langle\nabla f_i,\bar g\rangle}{\|\bar g\|^2}\bar g_j\big]}
                         {\nu^2 \|\bar g\|^2} \Big\rceil ,\qquad
        b^{\rm aug} = \max(b^{\rm ip}, b^{\rm orth}),

    and the next batch size is ``max(B, b^test)`` (never shrinks), capped at
    ``max_batch_size``. The norm test is Eq. (3.2) of the paper, the augmented
    inner-product test Eqs. (3.4)-(3.5); θ, ν and η are the tolerances.

    The official code (``tests.py``) computes the inner-product and orthogonality
    variances per parameter tensor (each tensor's per-sample gradients against that
    tensor's part of ḡ) and sums them, which drops the cross-tensor covariances;
    ``per_tensor=True`` reproduces it (the norm test is the same either way). The
    default follows the paper's whole-vector inner product.

    Args:
      per_sample_grads: tree with a leading sample axis (B ≥ 2) on every leaf.
      test: ``"norm"``, ``"inner_product"``, ``"orthogonality"`` or ``"augmented"``.
      eta: norm-test tolerance η > 0 (the paper uses 0.1 on MNIST).
      theta: inner-product tolerance θ > 0 (0.5 in the reference examples).
      nu: orthogonality tolerance ν > 0 (1.0 in the reference examples).
      max_batch_size: optional cap (positive int).
      per_tensor: the official code's per-tensor variances (see above).
      axis_name: mapped axis the batch is sharded over; the test then uses the global
        batch (equal to one device holding all of it; tested on 8 devices).

    Returns:
      The next batch size, an int32 scalar ≥ B. A zero mean gradient asks for
      ``max_batch_size`` (or the int32 maximum); a NaN statistic keeps B (the official
      code's ``if new > b`` does the same).

    Example:
      >>> import gradkit, jax, jax.numpy as jnp
      >>> loss = lambda w, x: jnp.sum((w - x) ** 2)
      >>> xs = jax.random.normal(jax.random.key(0), (16, 3))
      >>> grads = jax.vmap(jax.grad(loss), in_axes=(None, 0))(jnp.ones(3), xs)
      >>> b = gradkit.adadagrad_batch_size({"w": grads}, "norm", eta=0.1)

    References:
      Lau, Liu, Kolar, `AdAdaGrad: Adaptive Batch Size Schemes for Adaptive Gradient
      Methods <https://arxiv.org/abs/2402.11215>`_, 2024 (Eqs. (3.2), (3.4)-(3.5)).
    """
    _check_test_args(test, eta, theta, nu)
    if max_batch_size is not None:
        _common.check_positive_int("max_batch_size", max_batch_size)
    if per_tensor and axis_name is not None:
        raise ValueError("`per_tensor=True` is single-device only (axis_name=None).")
    per_sample_grads = _common.as_stacked(per_sample_grads, None, what="sample")
    check_batch(_common.num_stacked(per_sample_grads), axis_name)
    return _batch_size_jit(per_sample_grads, test, eta, theta, nu, max_batch_size, per_tensor,
                           axis_name)


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4, 5, 6, 7))
def _batch_size_jit(per_sample_grads, test, eta, theta, nu, max_batch_size, per_tensor,
                    axis_name):
    if per_tensor:
        return _per_tensor_batch_size(per_sample_grads, test, eta, theta, nu, max_batch_size)
    stats, _ = per_sample_statistics(per_sample_grads, axis_name=axis_name)
    return adadagrad_batch_size_from_statistics(
        stats, test, eta=eta, theta=theta, nu=nu, max_batch_size=max_batch_size)


def bucket_batch_size(batch_size: int, *, minimum: int, maximum: int,
                      growth: float = 2.0) -> int:
    """The smallest bucket ``minimum·growth^m`` (rounded up) ≥ ``batch_size``, ≤ ``maximum``.

    A jitted train step compiles once per distinct batch shape; rounding the size the
    test asks for up to geometric buckets bounds the number of compilations by
    ``log_growth(maximum/minimum) + 1`` while never training on fewer samples than the
    test asked for (until ``maximum``). Host-side (Python ints): call it between steps.
    """
    _common.check_positive_int("minimum", minimum)
    _common.check_positive_int("maximum", maximum)
    if maximum < minimum:
        raise ValueError(f"`maximum` ({maximum}) must be >= `minimum` ({minimum}).")
    _common.check_interval("growth", growth, 1.0, math.inf, low_closed=False)
    size = minimum
    while size < batch_size and size < maximum:
        size = max(size + 1, math.ceil(size * growth))
    return min(size, maximum)


class AdaptiveBatchSize:
    """Host-side batch-size controller for a training loop (AdAdaGrad, Algorithm 1).

    Holds the current batch size b_k; :meth:`update` takes the size a test asked for
    (e.g. from :func:`adadagrad_batch_size`, computed inside the jitted step), keeps it
    monotone (b_{k+1} ≥ b_k), optionally rounds it up to a bucket
    (:func:`bucket_batch_size`) and caps it at ``maximum``. Only the int crosses to the
    host, once per step (or every ``test_interval`` steps, as the reference code allows).

    Example::

        controller = gradkit.AdaptiveBatchSize(initial=16, maximum=4096)
        for step in range(num_steps):
            batch = sample(controller.batch_size)
            params, opt_state, proposal = train_step(params, opt_state, batch)  # jitted
            controller.update(int(proposal))
    """

    def __init__(self, initial: int, maximum: int, *, bucket: bool = True,
                 growth: float = 2.0):
        _common.check_positive_int("initial", initial)
        _common.check_positive_int("maximum", maximum)
        if maximum < initial:
            raise ValueError(f"`maximum` ({maximum}) must be >= `initial` ({initial}).")
        self.initial, self.maximum, self.bucket, self.growth = initial, maximum, bucket, growth
        self.batch_size = initial
        self.history = [initial]

    def update(self, proposal: int) -> int:
        new = max(self.batch_size, min(int(proposal), self.maximum))
        if self.bucket:
            new = bucket_batch_size(new, minimum=self.initial, maximum=self.maximum,
                                    growth=self.growth)
        self.batch_size = max(self.batch_size, new)
        self.history.append(self.batch_size)
        return self.batch_size

