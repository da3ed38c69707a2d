# SPDX-License-Identifier: Apache-2.0
"""Flax reference models for modular arithmetic (grokking).

As in Prieto et al., "Grokking at the Edge of Numerical Stability" (2025, arXiv
2501.04697, §2 and App. B) and their official ``models.py``:

- :class:`GrokkingMLP`: the operands as two concatenated one-hot vectors (2p inputs), or a
  learned embedding of each operand, then ReLU layers 200 → 200 → p, no biases
  (p = 113: 226·200 + 200·200 + 200·113 = 107,800 parameters).
- :class:`GrokkingTransformer`: token embedding (p → 128), one post-norm encoder layer
  (4 heads, feed-forward 2048, ReLU, dropout 0.1, as ``torch.nn.TransformerEncoderLayer``
  defaults), a linear head; the logits are read at the last position. Like the
  official model it has no positional encoding.

Initialisation follows PyTorch's defaults (the official code's): Linear weights and
biases ``U(−1/√fan_in, 1/√fan_in)``, embeddings ``N(0, 1)``; the grokking dynamics
depend on the initial weight norm, so this is deliberate.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gradkit.models.mlp import dense_layers
from gradkit.models.mlp import torch_bias_init
from gradkit.models.mlp import torch_linear_init


class _OneHotDense(nn.Module):
    """``Dense`` on concatenated one-hot operands, computed as a row gather.

    Same parameters, values and gradients as ``nn.Dense`` applied to
    ``concat(one_hot(a), one_hot(b))`` (each output is w[a] + w[p + b] either way),
    without the 2p-wide matmul.
    """

    num_tokens: int
    features: int
    use_bias: bool
    dtype: jnp.dtype

    @nn.compact
    def __call__(self, pairs: jax.Array) -> jax.Array:
        fan_in = pairs.shape[-1] * self.num_tokens
        kernel = self.param("kernel", torch_linear_init, (fan_in, self.features), self.dtype)
        offsets = self.num_tokens * jnp.arange(pairs.shape[-1])
        x = jnp.take(kernel, pairs + offsets, axis=0).sum(axis=-2)
        if self.use_bias:
            x = x + self.param("bias", torch_bias_init(fan_in), (self.features,), self.dtype)
        return x


class GrokkingMLP(nn.Module):
    """The paper's MLP on (a, b) operand pairs: a one-hot (or embedding) input layer, then
    :func:`~gradkit.models.mlp.dense_layers` with ReLU and PyTorch's default initialisation.

    Parameters: ``layers_0`` (the first layer, on one-hot inputs) or ``Embed_0`` (with
    ``use_embedding``), then ``layers_1``, ``layers_2``, … (the official model's names).

    Attributes:
      num_tokens: p, the number of operand values (one-hot size per operand).
      num_classes: number of outputs (p).
      hidden_sizes: hidden widths (paper: (200, 200)).
      use_embedding: learn an embedding of width ``num_tokens`` per operand instead
        of one-hot inputs (official ``--use_embedding``).
      use_bias: biases in the Dense layers (paper: none).
      dtype: parameter and computation dtype.
    """

    num_tokens: int = 113
    num_classes: int = 113
    hidden_sizes: Sequence[int] = (200, 200)
    use_embedding: bool = False
    use_bias: bool = False
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, pairs: jax.Array) -> jax.Array:
        """``pairs``: int ``[batch, 2]`` operands → ``[batch, num_classes]`` logits."""
        sizes = (*self.hidden_sizes, self.num_classes)
        first = 0
        if self.use_embedding:
            x = nn.Embed(self.num_tokens, self.num_tokens, dtype=self.dtype,
                         param_dtype=self.dtype,
                         embedding_init=nn.initializers.normal(1.0))(pairs)
            x = x.reshape(x.shape[0], -1)
        else:
            # One-hot inputs: the first layer is a gather of two kernel rows.
            x = _OneHotDense(self.num_tokens, sizes[0], self.use_bias, self.dtype,
                             name="layers_0")(pairs)
            if len(sizes) == 1:
                return x
            x, first = nn.relu(x), 1
        return dense_layers(x, sizes[first:], nn.relu, use_bias=self.use_bias,
                            weight_init="torch", dtype=self.dtype, param_dtype=self.dtype,
                            names=[f"layers_{i}" for i in range(first, len(sizes))])


class GrokkingTransformer(nn.Module):
    """One-layer post-norm transformer encoder on the two operand tokens.

    Attributes:
      num_tokens: vocabulary size (p).
      num_classes: number of outputs (p).
      d_model, num_heads, dim_feedforward, num_layers: paper: 128, 4, 2048, 1.
      dropout_rate: dropout in attention and feed-forward (torch default 0.1).
      dtype: parameter and computation dtype.
    """

    num_tokens: int = 113
    num_classes: int = 113
    d_model: int = 128
    num_heads: int = 4
    dim_feedforward: int = 2048
    num_layers: int = 1
    dropout_rate: float = 0.1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, pairs: jax.Array, *, deterministic: bool = True) -> jax.Array:
        """``pairs``: int ``[batch, 2]`` → ``[batch, num_classes]`` logits (last position).

        Pass ``deterministic=False`` and a ``"dropout"`` rng to train with dropout.
        """
        dense = lambda n, fan_in, name: nn.Dense(  # noqa: E731
            n, dtype=self.dtype, param_dtype=self.dtype, kernel_init=torch_linear_init,
            bias_init=torch_bias_init(fan_in), name=name)
        x = nn.Embed(self.num_tokens, self.d_model, dtype=self.dtype,
                     param_dtype=self.dtype, embedding_init=nn.initializers.normal(1.0))(pairs)
        for i in range(self.num_layers):
            attn = nn.MultiHeadDotProductAttention(
                num_heads=self.num_heads, dtype=self.dtype, param_dtype=self.dtype,
                dropout_rate=self.dropout_rate, deterministic=deterministic,
                kernel_init=nn.initializers.xavier_uniform(),
                bias_init=nn.initializers.zeros, name=f"attn_{i}")(x, x)
            x = nn.LayerNorm(epsilon=1e-5, dtype=self.dtype, param_dtype=self.dtype,
                             name=f"norm1_{i}")(
                x + nn.Dropout(self.dropout_rate)(attn, deterministic=deterministic))
            h = nn.relu(dense(self.dim_feedforward, self.d_model, f"ff1_{i}")(x))
            h = nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
            h = dense(self.d_model, self.dim_feedforward, f"ff2_{i}")(h)
            x = nn.LayerNorm(epsilon=1e-5, dtype=self.dtype, param_dtype=self.dtype,
                             name=f"norm2_{i}")(
                x + nn.Dropout(self.dropout_rate)(h, deterministic=deterministic))
        return dense(self.num_classes, self.d_model, "head")(x[:, -1])
