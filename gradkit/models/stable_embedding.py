# SPDX-License-Identifier: Apache-2.0
"""The stable embedding layer of 8-bit optimizers (Dettmers et al. 2022, §2.3).

Dettmers et al., `8-bit Optimizers via Block-wise Quantization
<https://arxiv.org/abs/2110.02861>`_, ICLR 2022, §2.3 "Stable Embedding Layer";
reference bitsandbytes (MIT) ``bnb.nn.StableEmbedding``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class StableEmbedding(nn.Module):
    r"""Token embedding with Xavier-uniform init and a LayerNorm on its output.

    ``y = LayerNorm(E[ids])`` with ``E ~ U(±√(6/(num_embeddings + features)))``: the
    LayerNorm keeps the output variance ≈ 1 at init and during training, which the paper
    found necessary for stable 8-bit training of language models (applied before the
    position embeddings are added). The third part of the recipe, 32-bit optimizer
    state for the embedding, is the optimizer's business: e.g.
    ``gradkit.adamw_8bit(lr, keep_32bit=("tok_embed",))`` (see ``docs/memory.md``).

    Attributes:
      num_embeddings: vocabulary size.
      features: embedding width.
      dtype: computation dtype; param_dtype: parameter dtype.

    Params: ``embedding`` (``[num_embeddings, features]``) and ``norm/{scale,bias}``.

    Example::

      emb = StableEmbedding(256, 64)
      params = emb.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))

    References:
      Dettmers et al., `8-bit Optimizers via Block-wise Quantization
      <https://arxiv.org/abs/2110.02861>`_, 2022 (§2.3; bitsandbytes
      ``StableEmbedding``, which also normalises in float32 and forces 32-bit state).
    """

    num_embeddings: int
    features: int
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, ids: jax.Array) -> jax.Array:
        embedding = self.param("embedding", nn.initializers.xavier_uniform(),
                               (self.num_embeddings, self.features), self.param_dtype)
        x = jnp.take(embedding, ids, axis=0).astype(jnp.float32)
        x = nn.LayerNorm(name="norm", dtype=jnp.float32, param_dtype=self.param_dtype)(x)
        return x.astype(self.dtype)
