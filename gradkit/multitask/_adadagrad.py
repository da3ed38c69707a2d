"""AdAdaGrad: adaptive batch sizes from per-sample-gradient tests, and AdaGrad-Norm.

Lau, Liu, Kolar, *AdAdaGrad: Adaptive Batch Size Schemes for Adaptive Gradient Methods*,
2024, arXiv 2402.11215 (§3, the norm test Eq. (3.2), the augmented inner-product test
Eqs. (3.4)-(3.5), Algorithm 1). Reference code ``timlautk/AdAdaGrad`` (MIT), ``tests.py``:
checked against hand-computed values and a float64 NumPy transcription
(``tests/test_adadagrad.py``).

Every test needs only five numbers of the per-sample gradients ∇f_i (i = 1..B) of the
current batch: B, ‖ḡ‖² (ḡ their mean), Σ‖∇f_i‖², Σ⟨∇f_i, ḡ⟩ and Σ⟨∇f_i, ḡ⟩²
(:class:`PerSampleStatistics`), because with unbiased variances

* Σ_j Var̂_i[∇_j f_i] = (Σ_i‖∇f_i‖² − B‖ḡ‖²)/(B−1)                    (norm test),
* Var̂_i⟨∇f_i, ḡ⟩      = (Σ_i a_i² − (Σ_i a_i)²/B)/(B−1), a_i = ⟨∇f_i, ḡ⟩  (inner product),
* Σ_j Var̂_i[(∇f_i − a_i ḡ/‖ḡ‖²)_j] = (Σ_i‖∇f_i‖² − Σ_i a_i²/‖ḡ‖² − B‖ō‖²)/(B−1),
  ō = ḡ(1 − ā/‖ḡ‖²)                                                      (orthogonality).

So :func:`per_sample_statistics_from_loss` never holds B gradient copies: it streams
per-sample gradients in chunks for their norms and gets the inner products a_i from one
forward-mode pass (a JVP of the per-sample losses along ḡ). Across devices
(``axis_name``) the five numbers are summed, which gives exactly the one-device result.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any
from typing import Literal
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from gradkit import _validation
from gradkit.multitask import _tasks

TestName = Literal["norm", "inner_product", "orthogonality", "augmented"]
TEST_NAMES: tuple[str, ...] = ("norm", "inner_product", "orthogonality", "augmented")
_INT32_MAX = 2**31 - 1


class PerSampleStatistics(NamedTuple):
    """What every AdAdaGrad test needs from the per-sample gradients ∇f_i of a batch."""

    batch_size: chex.Array  # float32 scalar, B (summed over `axis_name`).
    grad_sq_norm: chex.Array  # float32 scalar, ‖ḡ‖² of the mean gradient ḡ.
    sum_sq_norms: chex.Array  # float32 scalar, Σ_i ‖∇f_i‖².
    sum_inner: chex.Array  # float32 scalar, Σ_i ⟨∇f_i, ḡ⟩ (= B‖ḡ‖² up to round-off).
    sum_inner_sq: chex.Array  # float32 scalar, Σ_i ⟨∇f_i, ḡ⟩².


def _f32(x):
    return jnp.asarray(x, jnp.promote_types(jnp.asarray(x).dtype, jnp.float32))


def _tree_vdot(a, b):
    return sum(jnp.vdot(_f32(x), _f32(y)) for x, y in
               zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def _psum(x, axis_name):
    return x if axis_name is None else jax.lax.psum(x, axis_name)


def _check_batch(b: int, axis_name: str | None) -> None:
    if axis_name is None and b < 2:
        raise ValueError(
            f"the AdAdaGrad tests need unbiased variances over at least 2 per-sample "
            f"gradients; got a batch of {b}.")


def per_sample_statistics(
    per_sample_grads: Any, *, axis_name: str | None = None
) -> tuple[PerSampleStatistics, Any]:
    """The five statistics of :class:`PerSampleStatistics` and the mean gradient ḡ.

    Args:
      per_sample_grads: a tree whose leaves have a leading sample axis B (e.g.
        ``jax.vmap(jax.grad(loss), in_axes=(None, 0))(params, batch)``).
      axis_name: mapped axis over which the batch is sharded; the statistics and ḡ are
        then those of the whole (global) batch, identical on every device.

    Returns:
      ``(statistics, mean_grad)``, ``mean_grad`` without the sample axis.
    """
    per_sample_grads = _tasks.as_stacked(per_sample_grads, None, what="sample")
    b = _tasks.num_stacked(per_sample_grads)
    _check_batch(b, axis_name)
    n = _psum(jnp.asarray(b, jnp.float32), axis_name)
    total = jax.tree.map(lambda x: jnp.sum(_f32(x), axis=0), per_sample_grads)
    mean = jax.tree.map(lambda x: x / n, _psum(total, axis_name))
    flat = jnp.concatenate([_f32(x).reshape(b, -1) for x in jax.tree.leaves(per_sample_grads)],
                           axis=1)
    flat_mean = jnp.concatenate([x.reshape(-1) for x in jax.tree.leaves(mean)])
    inner = jnp.dot(flat, flat_mean, precision=jax.lax.Precision.HIGHEST)
    stats = PerSampleStatistics(
        batch_size=n,
        grad_sq_norm=jnp.vdot(flat_mean, flat_mean),
        sum_sq_norms=_psum(jnp.sum(flat * flat), axis_name),
        sum_inner=_psum(jnp.sum(inner), axis_name),
        sum_inner_sq=_psum(jnp.sum(inner * inner), axis_name),
    )
    mean = jax.tree.map(lambda m, x: m.astype(x.dtype), mean,
                        jax.tree.map(lambda x: x[0], per_sample_grads))
    return stats, mean


def per_sample_statistics_from_loss(
    loss_fn: Callable[..., jax.Array],
    params: Any,
    batch: Any,
    *,
    chunk_size: int | None = None,
    axis_name: str | None = None,
) -> tuple[PerSampleStatistics, Any]:
    """:func:`per_sample_statistics` without materialising B per-sample gradients.

    Pass 1 scans the batch in chunks of ``chunk_size`` samples, computing each chunk's
    per-sample gradients (``jax.vmap(jax.grad)``), their squared norms and their running
    sum, so at most ``chunk_size`` gradient copies exist at once. Pass 2 gets every
    a_i = ⟨∇f_i, ḡ⟩ as a forward-mode directional derivative of the per-sample losses
    along ḡ (one JVP, no gradient copies).

    Args:
      loss_fn: ``loss_fn(params, example) -> scalar`` for ONE example (a slice of
        ``batch`` without its leading axis).
      params: parameters.
      batch: tree of arrays with a leading sample axis B.
      chunk_size: samples per chunk in pass 1 (must divide B); ``None`` = B.
      axis_name: as in :func:`per_sample_statistics`.

    Returns:
      ``(statistics, mean_grad)``.
    """
    b = _tasks.num_stacked(_tasks.as_stacked(batch, None, what="sample"))
    _check_batch(b, axis_name)
    chunk = b if chunk_size is None else chunk_size
    _validation.check_positive_int("chunk_size", chunk)
    if b % chunk:
        raise ValueError(f"`chunk_size` ({chunk}) must divide the batch size ({b}).")
    grad_one = jax.grad(loss_fn)

    def scan_chunk(carry, xs):
        total, sq = carry
        g = jax.vmap(grad_one, in_axes=(None, 0))(params, xs)
        total = jax.tree.map(lambda t, x: t + jnp.sum(_f32(x), axis=0), total, g)
        sq = sq + sum(jnp.sum(_f32(x) ** 2) for x in jax.tree.leaves(g))
        return (total, sq), None

    chunks = jax.tree.map(lambda x: x.reshape(b // chunk, chunk, *x.shape[1:]), batch)
    zeros = jax.tree.map(lambda p: jnp.zeros(jnp.shape(p), jnp.promote_types(
        jnp.result_type(p), jnp.float32)), params)
    (total, sq), _ = jax.lax.scan(scan_chunk, (zeros, jnp.zeros([], jnp.float32)), chunks)
    n = _psum(jnp.asarray(b, jnp.float32), axis_name)
    mean = jax.tree.map(lambda x: x / n, _psum(total, axis_name))
    mean_p = jax.tree.map(lambda m, p: m.astype(jnp.result_type(p)), mean, params)

    def directional(example):
        return jax.jvp(lambda p: loss_fn(p, example), (params,), (mean_p,))[1]

    inner = _f32(jax.vmap(directional)(batch))
    stats = PerSampleStatistics(
        batch_size=n,
        grad_sq_norm=_tree_vdot(mean, mean),
        sum_sq_norms=_psum(sq, axis_name),
        sum_inner=_psum(jnp.sum(inner), axis_name),
        sum_inner_sq=_psum(jnp.sum(inner * inner), axis_name),
    )
    return stats, mean_p


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
    _validation.check_choice("test", test, TEST_NAMES)
    _validation.check_positive("eta", eta)
    _validation.check_positive("theta", theta)
    _validation.check_positive("nu", nu)


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
        _validation.check_positive_int("max_batch_size", max_batch_size)
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
        _validation.check_positive_int("max_batch_size", max_batch_size)
    if per_tensor and axis_name is not None:
        raise ValueError("`per_tensor=True` is single-device only (axis_name=None).")
    per_sample_grads = _tasks.as_stacked(per_sample_grads, None, what="sample")
    _check_batch(_tasks.num_stacked(per_sample_grads), axis_name)
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
    _validation.check_positive_int("minimum", minimum)
    _validation.check_positive_int("maximum", maximum)
    if maximum < minimum:
        raise ValueError(f"`maximum` ({maximum}) must be >= `minimum` ({minimum}).")
    _validation.check_interval("growth", growth, 1.0, math.inf, low_closed=False)
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
        _validation.check_positive_int("initial", initial)
        _validation.check_positive_int("maximum", maximum)
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


class ScaleByAdaGradNormState(NamedTuple):
    """State for :func:`scale_by_adagrad_norm`."""

    count: chex.Array  # int32 scalar, number of updates so far.
    sum_of_squares: chex.Array  # float32 scalar, b_k² = b_0² + Σ_t ‖g_t‖².


def scale_by_adagrad_norm(
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    *,
    axis_name: str | None = None,
) -> optax.GradientTransformation:
    r"""AdaGrad-Norm: one adaptive step size for all parameters, g_k / b_k.

    .. math::

        b_k^2 = b_{k-1}^2 + \|g_k\|^2,\qquad u_k = g_k / (b_k + \epsilon),

    with ‖g_k‖ the norm over the whole update tree. The AdAdaGrad paper's AdaGrad-Norm
    (§2, after Ward, Wu, Bottou 2019), with ``b_0² = initial_accumulator_value`` and
    ``eps`` added to b_k as in ``torch.optim.Adagrad`` (which the reference code runs for
    "adagrad"). The reference repository's ``adagradnorm.py`` is a different, row-wise
    variant (one accumulator per output row); we follow the paper's scalar form.

    Args:
      initial_accumulator_value: b_0² ≥ 0.
      eps: added to b_k, ≥ 0.
      axis_name: if the gradients are still per-device (not yet averaged), ‖g_k‖² is
        summed over this axis of the *averaged* gradient: the updates are ``pmean``-ed
        first, so every device takes the one-device step.

    Returns:
      An ``optax.GradientTransformation``; zero gradients give zero updates; NaN/Inf
      make b_k and every later update NaN (use ``optax.apply_if_finite``).

    References:
      Lau, Liu, Kolar, `AdAdaGrad: Adaptive Batch Size Schemes for Adaptive Gradient
      Methods <https://arxiv.org/abs/2402.11215>`_, 2024 (AdaGrad-Norm, §2);
      Ward, Wu, Bottou, `AdaGrad stepsizes <https://arxiv.org/abs/1806.01811>`_, 2019.
    """
    _validation.check_nonnegative("initial_accumulator_value", initial_accumulator_value)
    _validation.check_nonnegative("eps", eps)

    def init_fn(params):
        del params
        return ScaleByAdaGradNormState(
            count=jnp.zeros([], jnp.int32),
            sum_of_squares=jnp.full([], initial_accumulator_value, jnp.float32))

    def update_fn(updates, state, params=None):
        del params
        if axis_name is not None:
            updates = jax.lax.pmean(updates, axis_name)
        sq = sum((jnp.sum(jnp.square(_f32(u))) for u in jax.tree.leaves(updates)),
                 jnp.zeros([], jnp.float32))
        total = state.sum_of_squares + sq.astype(jnp.float32)
        denom = jnp.sqrt(total) + eps
        safe = jnp.where(denom > 0, denom, 1.0)
        new = jax.tree.map(lambda u: jnp.where(denom > 0, _f32(u) / safe, 0.0).astype(u.dtype),
                           updates)
        return new, ScaleByAdaGradNormState(count=optax.safe_increment(state.count),
                                            sum_of_squares=total)

    return optax.GradientTransformation(init_fn, update_fn)


def adagrad_norm(
    learning_rate: optax.ScalarOrSchedule,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    weight_decay: optax.ScalarOrSchedule = 0.0,
    mask: Any | Callable[[optax.Params], Any] | None = None,
) -> optax.GradientTransformationExtraArgs:
    r"""AdaGrad-Norm: x_{k+1} = x_k − α (g_k / b_k + λ x_k), b_k² = b_{k−1}² + ‖g_k‖².

    ``optax.chain(scale_by_adagrad_norm(...), add_decayed_weights(weight_decay, mask),
    scale_by_learning_rate(learning_rate))``; see :func:`scale_by_adagrad_norm`.

    Args:
      learning_rate: α, a scalar > 0 or a schedule.
      initial_accumulator_value: b_0² ≥ 0.
      eps: added to b_k.
      weight_decay: decoupled weight decay λ ≥ 0 (multiplied by α).
      mask: pytree or callable selecting the leaves that get weight decay.

    Returns:
      An ``optax.GradientTransformationExtraArgs``.

    Example:
      >>> import gradkit, jax.numpy as jnp
      >>> opt = gradkit.adagrad_norm(learning_rate=0.1)
      >>> state = opt.init({"w": jnp.ones(3)})

    References:
      Lau, Liu, Kolar, `AdAdaGrad: Adaptive Batch Size Schemes for Adaptive Gradient
      Methods <https://arxiv.org/abs/2402.11215>`_, 2024 (AdaGrad-Norm, §2).
    """
    _validation.check_learning_rate(learning_rate)
    _validation.check_nonnegative("weight_decay", weight_decay)
    return optax.chain(
        scale_by_adagrad_norm(initial_accumulator_value, eps),
        optax.add_decayed_weights(weight_decay, mask),
        optax.scale_by_learning_rate(learning_rate),
    )
