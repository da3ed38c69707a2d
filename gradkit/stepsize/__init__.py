# SPDX-License-Identifier: Apache-2.0
"""Step-size rules: diffGrad's friction on the gradient change and AdaGrad-Norm.

* :func:`diffgrad` / :func:`scale_by_diffgrad`: Adam times ξ = sigmoid(|g_{t−1} − g_t|)
  (Dubey et al., 2020, arXiv 1909.11015; reference ``shivram1987/diffGrad``).
* :func:`adagrad_norm` / :func:`scale_by_adagrad_norm`: one adaptive step size
  g_k / b_k, b_k² = b_{k−1}² + ‖g_k‖² (Ward, Wu, Bottou, 2019, arXiv 1806.01811; the
  form of Lau, Liu, Kolar, 2024, arXiv 2402.11215).

See ``docs/stepsize.md``.
"""

from gradkit.stepsize._adagrad_norm import ScaleByAdaGradNormState
from gradkit.stepsize._adagrad_norm import adagrad_norm
from gradkit.stepsize._adagrad_norm import scale_by_adagrad_norm
from gradkit.stepsize._diffgrad import ScaleByDiffGradState
from gradkit.stepsize._diffgrad import diffgrad
from gradkit.stepsize._diffgrad import scale_by_diffgrad

__all__ = (
    "ScaleByAdaGradNormState",
    "ScaleByDiffGradState",
    "adagrad_norm",
    "diffgrad",
    "scale_by_adagrad_norm",
    "scale_by_diffgrad",
)
