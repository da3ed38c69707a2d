# SPDX-License-Identifier: Apache-2.0
"""Pieces shared by the subspace optimizers FRUGAL and Fira.

Which leaves a matrix method takes (2-D leaves, a user mask) and where the others go
(AdamW), and the GaLore-style projector (top singular vectors) of a gradient matrix.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax

from gradkit import _common


def check_matrices(params: Any, what: str) -> None:
    """Raises `ValueError` naming the first leaf of `params` that is not 2-D."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(params):
        if jnp.ndim(leaf) != 2:
            raise ValueError(
                f"`params`: {what} projects 2-D (matrix) leaves only; "
                f"{jax.tree_util.keystr(path)} has shape {jnp.shape(leaf)}. Route other "
                f"leaves elsewhere (the aliases send them to AdamW)."
            )


def top_singular_vectors(g: jax.Array, rank: int, right: bool) -> jax.Array:
    """float32 [n, rank] leading right (``right``) or [m, rank] left singular vectors of g.

    The GaLore/FRUGAL/Fira projector of an m×n gradient: it reduces the smaller side
    (right vectors when m ≥ n), the official 'std' rule. Computed as the leading
    eigenvectors of the small Gram matrix (GᵀG, n×n, for right vectors; GGᵀ, m×m, for
    left ones), which are the singular vectors of G: the same subspace as an SVD's, up
    to float32 rounding (a direction whose σ² is within ~1e-6·σ₁² of the next one's is
    not resolved; ``tests/test_fira.py`` bounds the projector difference), at a fraction
    of a full SVD's cost. Each vector's sign is whatever the eigensolver returns.
    """
    gf = g.astype(jnp.float32)
    gram = gf.T @ gf if right else gf @ gf.T
    _, vectors = jnp.linalg.eigh(gram)  # ascending eigenvalues σ²
    return vectors[:, ::-1][:, :rank]


def matrix_labels(selected_mask: Any, name: str):
    """Labels for ``optax.partition``: ``name`` for selected 2-D leaves, "adam" otherwise."""

    def labels(params):
        if selected_mask is None:
            chosen = jax.tree.map(lambda _: True, params)
        else:
            chosen = selected_mask(params) if callable(selected_mask) else selected_mask
        return jax.tree.map(lambda x, c: name if (jnp.ndim(x) == 2 and c) else "adam",
                            params, chosen)

    return labels


def adamw_weak_hparams(learning_rate, b1, b2, eps, weight_decay, mask=None, *,
                       mu_dtype=None):
    """``optax.adamw`` whose Python-float b1, b2, eps become weakly typed arrays at update
    time, so it rounds exactly as under ``optax.inject_hyperparams``."""

    def make(weak):
        args = tuple(_common.weak(x) for x in (b1, b2, eps)) if weak else (b1, b2, eps)
        return optax.adamw(learning_rate, b1=args[0], b2=args[1], eps=args[2],
                           mu_dtype=mu_dtype, weight_decay=weight_decay, mask=mask)

    def init_fn(params):
        return make(False).init(params)

    def update_fn(updates, state, params=None):
        return make(True).update(updates, state, params)

    return optax.GradientTransformation(init_fn, update_fn)
